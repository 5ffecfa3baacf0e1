"""The exported Hugging Face checkpoint loads as LlamaForCausalLM and gives our model's logits."""

from __future__ import annotations

import pytest
import torch

from components.pretrain.hf_export import export_llama, hf_name, unfused_state_dict
from components.pretrain.model import Transformer, model_config

transformers = pytest.importorskip("transformers")


@pytest.fixture
def tokenizer_file(tmp_path):
    from components.curate.shards import train_tokenizer

    path = tmp_path / "tokenizer.json"
    texts = ["the quick brown fox jumps over the lazy dog", "pack my box with five dozen liquor jugs"] * 20
    train_tokenizer(texts, 300).save(str(path))
    return path


# Multi-head and grouped-query attention; untied: an adapted model whose input table moved (components/adapt);
# fused: the GPU sizes' single q/k/v and gate/up projections. The vocabulary (300) is padded to 384 rows.
@pytest.mark.parametrize(
    "kv_heads,tied,fused", [(4, True, False), (2, True, False), (4, False, False), (2, True, True)]
)
def test_logits_match_llama_for_causal_lm(tmp_path, tokenizer_file, kv_heads, tied, fused):
    torch.manual_seed(0)
    cfg = model_config(
        "tiny", n_heads=4, n_kv_heads=kv_heads, vocab_size=300, seq_len=32, tie_embeddings=tied, fused_projections=fused
    )
    model = Transformer(cfg).eval()
    with torch.no_grad():  # non-trivial norm weights, so a swapped norm would show
        for module in model.modules():
            if hasattr(module, "eps"):
                module.weight.uniform_(0.5, 1.5)
    out = export_llama(model, tokenizer_file, tmp_path / "hf")
    hf = transformers.LlamaForCausalLM.from_pretrained(out).eval()
    tokens = torch.randint(0, 300, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(tokens), hf(tokens).logits
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()
    assert (hf.lm_head.weight.data_ptr() == hf.model.embed_tokens.weight.data_ptr()) == tied  # as ours
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer("the fox")["input_ids"]


@pytest.mark.parametrize("fused", [False, True])
def test_every_weight_has_a_name(fused):
    model = Transformer(model_config("tiny", vocab_size=64, seq_len=8, fused_projections=fused))
    unfused = unfused_state_dict(model)
    names = {hf_name(n) for n in unfused} - {None}
    assert len(names) == len(unfused) - 1  # all but the tied output projection
    assert hf_name("output.weight", tied=False) == "lm_head.weight"
    with pytest.raises(ValueError, match="no Hugging Face Llama name"):
        hf_name("layers.0.attention.bias")
