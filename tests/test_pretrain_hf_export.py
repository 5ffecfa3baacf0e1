"""The exported Hugging Face checkpoint loads as LlamaForCausalLM and gives our model's logits."""

from __future__ import annotations

import pytest
import torch

from components.pretrain.hf_export import export_llama, hf_name
from components.pretrain.model import Transformer, model_config

transformers = pytest.importorskip("transformers")


@pytest.fixture
def tokenizer_file(tmp_path):
    from components.curate.shards import train_tokenizer

    path = tmp_path / "tokenizer.json"
    texts = ["the quick brown fox jumps over the lazy dog", "pack my box with five dozen liquor jugs"] * 20
    train_tokenizer(texts, 300).save(str(path))
    return path


# Multi-head and grouped-query attention; untied: an adapted model whose input table moved (components/adapt).
@pytest.mark.parametrize("kv_heads,tied", [(4, True), (2, True), (4, False)])
def test_logits_match_llama_for_causal_lm(tmp_path, tokenizer_file, kv_heads, tied):
    torch.manual_seed(0)
    model = Transformer(
        model_config("tiny", n_heads=4, n_kv_heads=kv_heads, vocab_size=300, seq_len=32, tie_embeddings=tied)
    ).eval()
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


def test_every_weight_has_a_name():
    model = Transformer(model_config("tiny", vocab_size=64, seq_len=8))
    names = {hf_name(n) for n in model.state_dict()} - {None}
    assert len(names) == len(model.state_dict()) - 1  # all but the tied output projection
    assert hf_name("output.weight", tied=False) == "lm_head.weight"
    with pytest.raises(ValueError, match="no Hugging Face Llama name"):
        hf_name("layers.0.attention.bias")
