"""Export a trained model as a Hugging Face Llama checkpoint: `LlamaForCausalLM.from_pretrained(dir)` and
`AutoTokenizer.from_pretrained(dir)` load it.

The architectures agree term by term: RMSNorm (weight × normalized x), SwiGLU with gate/up/down projections,
grouped-query attention without biases, SDPA's 1/√head_dim scaling, tied embeddings. RoPE needs no
permutation: `model.apply_rope` rotates the pairs (x[i], x[i + d/2]) (the two halves of each head) by
θ_i = base^(−2i/d), which is exactly HF Llama's `rotate_half` with cos/sin repeated over both halves. (Meta's
original checkpoints rotate interleaved pairs (x[2i], x[2i+1]); only those need the q/k permutation.)
Fused projections (`wqkv`, `w13`) are split into HF's separate q/k/v and gate/up weights; a padded vocabulary
is exported padded (HF's embedding may have more rows than the tokenizer has tokens).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

from components.common.contracts import EOS, PAD
from components.pretrain.model import Transformer

LAYER_NAMES = {
    "attention_norm.weight": "input_layernorm.weight",
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
}


def hf_name(name: str, tied: bool = True) -> str | None:
    """The HF Llama name of one of our weights; None for the output projection when it is tied to the embedding."""
    if name == "tok_embeddings.weight":
        return "model.embed_tokens.weight"
    if name == "norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        return None if tied else "lm_head.weight"
    _, index, rest = name.split(".", 2)  # layers.<i>.<rest>
    if rest not in LAYER_NAMES:
        raise ValueError(f"no Hugging Face Llama name for weight {name!r}")
    return f"model.layers.{index}.{LAYER_NAMES[rest]}"


def unfused_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """`model`'s weights under the unfused names: wqkv → wq, wk, wv and w13 → w1, w3 (views, no copies)."""
    cfg, unfused = model.cfg, {}
    q_dim, kv_dim = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    for name, tensor in model.state_dict().items():
        if name.endswith("attention.wqkv.weight"):
            prefix = name.removesuffix("wqkv.weight")
            for part, value in zip(("wq", "wk", "wv"), tensor.split([q_dim, kv_dim, kv_dim]), strict=True):
                unfused[f"{prefix}{part}.weight"] = value
        elif name.endswith("feed_forward.w13.weight"):
            prefix = name.removesuffix("w13.weight")
            for part, value in zip(("w1", "w3"), tensor.chunk(2), strict=True):
                unfused[f"{prefix}{part}.weight"] = value
        else:
            unfused[name] = tensor
    return unfused


def hf_config(model: Transformer, tokenizer: Tokenizer) -> dict:
    cfg = model.cfg
    eos, pad = tokenizer.token_to_id(EOS), tokenizer.token_to_id(PAD)
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.padded_vocab,
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,  # transformers < 5
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},  # transformers ≥ 5
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": cfg.tie_embeddings,
        "initializer_range": 0.02,
        "bos_token_id": eos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "torch_dtype": "float32",
        "use_cache": True,
    }


def export_llama(model: Transformer, tokenizer_path: str | Path, out_dir: str | Path) -> Path:
    """Write model.safetensors (HF names), config.json, tokenizer.json and tokenizer_config.json to `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, tensor in unfused_state_dict(model).items():
        target = hf_name(name, model.cfg.tie_embeddings)
        if target is not None:
            tensors[target] = tensor.detach().to("cpu", torch.float32).contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    (out / "config.json").write_text(json.dumps(hf_config(model, tokenizer), indent=2))
    shutil.copyfile(tokenizer_path, out / "tokenizer.json")
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": EOS,
                "bos_token": EOS,
                "pad_token": PAD,
                "model_max_length": model.cfg.seq_len,
            },
            indent=2,
        )
    )
    return out
