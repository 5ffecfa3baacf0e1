"""The trainer's speed paths compute the same model: fused loss, fused projections, padded tables, a bf16
residual stream, one batch block per step, DDP's flags, background checkpoints, an eager evaluation, the
attention backend record, and FLOPs per token against an independent count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from components.pretrain import loss as fused_loss
from components.pretrain import resume
from components.pretrain.attention import PRIORITY, attention_backend
from components.pretrain.checkpoint import load_model, save_model
from components.pretrain.data import GlobalBatches
from components.pretrain.distributed import Dist, wrap
from components.pretrain.model import ModelConfig, Transformer, flops_per_token, model_config
from components.pretrain.train import TrainConfig, build_optimizer, mean_loss

CPU = Dist(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))


def _reference_loss(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss as the model computed it before: whole logits, then cross-entropy."""
    return F.cross_entropy((hidden @ weight.T).float().flatten(0, 1), targets.reshape(-1), ignore_index=-100)


@pytest.mark.parametrize("chunk_elements", [1 << 26, 7 * 50])  # one chunk; many, the last one ragged
def test_linear_cross_entropy_matches_cross_entropy_and_its_gradients(monkeypatch, chunk_elements):
    for name in ("CHUNK_ELEMENTS", "CPU_CHUNK_ELEMENTS"):  # whichever this device uses
        monkeypatch.setattr(fused_loss, name, chunk_elements)
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 11, 16, generator=generator, requires_grad=True)
    weight = torch.randn(50, 16, generator=generator, requires_grad=True)
    targets = torch.randint(0, 50, (3, 11), generator=generator)
    targets[0, :3] = fused_loss.IGNORE_INDEX  # padding positions count nowhere
    ours = fused_loss.linear_cross_entropy(hidden, weight, targets)
    ours.backward(torch.tensor(2.0))
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    reference = _reference_loss(hidden, weight, targets)
    (2 * reference).backward()
    assert ours.item() == pytest.approx(reference.item(), abs=1e-5)
    assert torch.allclose(grads[0], hidden.grad, atol=1e-6) and torch.allclose(grads[1], weight.grad, atol=1e-6)
    with torch.no_grad():  # evaluation: the loss alone, the same value
        assert fused_loss.linear_cross_entropy(hidden, weight, targets).item() == pytest.approx(ours.item(), abs=1e-6)


def test_fused_projections_compute_the_unfused_model():
    torch.manual_seed(0)
    shape = dict(n_heads=4, n_kv_heads=2, vocab_size=300, seq_len=32)
    unfused = Transformer(model_config("tiny", **shape)).eval()
    fused = Transformer(model_config("tiny", fused_projections=True, **shape)).eval()
    state = unfused.state_dict()
    for name in list(state):
        if name.endswith("attention.wq.weight"):
            prefix = name.removesuffix("wq.weight")
            state[prefix + "wqkv.weight"] = torch.cat([state.pop(prefix + p + ".weight") for p in ("wq", "wk", "wv")])
        elif name.endswith("feed_forward.w1.weight"):
            prefix = name.removesuffix("w1.weight")
            state[prefix + "w13.weight"] = torch.cat([state.pop(prefix + p + ".weight") for p in ("w1", "w3")])
    fused.load_state_dict(state)
    tokens = torch.randint(0, 300, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(fused(tokens), unfused(tokens), atol=1e-5)
        assert fused(tokens, tokens).item() == pytest.approx(unfused(tokens, tokens).item(), abs=1e-5)
    assert fused.num_params() == unfused.num_params()


def test_gpu_sizes_pad_fuse_and_round_the_swiglu_width():
    cfg = model_config("gpt2-124m")
    assert cfg.fused_projections and cfg.ffn_dim % 256 == 0 and cfg.padded_vocab % 128 == 0
    assert model_config("350m").ffn_dim % 256 == 0 and model_config("1b").ffn_dim % 256 == 0
    assert not model_config("small").fused_projections  # the default LoRA targets adapt wq and wv one by one


def test_tables_are_padded_but_the_tokenizer_size_is_recorded(tmp_path):
    cfg = model_config("tiny", vocab_size=300, seq_len=16)
    model = Transformer(cfg)
    assert cfg.vocab_size == 300 and cfg.padded_vocab == 384
    assert model.tok_embeddings.weight.shape[0] == model.output.weight.shape[0] == 384
    old = ModelConfig(**{k: v for k, v in cfg.to_dict().items() if k != "vocab_multiple"})  # saved before padding
    assert Transformer(old).tok_embeddings.weight.shape[0] == 300
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text("{}")
    save_model(model, tmp_path / "m", tokenizer)
    assert load_model(tmp_path / "m").cfg == cfg


def test_residual_stream_is_bf16_under_autocast():
    model = Transformer(model_config("tiny", vocab_size=128, seq_len=16))
    seen: list[torch.dtype] = []
    for layer in model.layers:
        layer.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    tokens = torch.randint(0, 128, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = model.hidden_states(tokens)
    assert hidden.dtype == torch.bfloat16 and seen == [torch.bfloat16] * len(model.layers)
    seen.clear()
    assert model.hidden_states(tokens).dtype == torch.float32 and seen == [torch.float32] * len(model.layers)


def test_a_steps_batch_is_one_block_sliced_into_micro_batches():
    tokens = np.arange(10_000, dtype=np.uint16)
    pairs = GlobalBatches(tokens, 16, batch_size=4, seed=3, grad_accum=3).micro_batches(2)
    storages = {t.untyped_storage().data_ptr() for pair in pairs for t in pair}
    assert len(pairs) == 3 and len(storages) == 1  # views of one block: one host-to-device copy on a GPU
    assert all(torch.equal(x[:, 1:], y[:, :-1]) for x, y in pairs)  # targets are the inputs shifted by one


def test_ddp_wrapper_skips_buffer_broadcasts_and_uses_bucket_views(tmp_path):
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        model = Transformer(model_config("tiny", vocab_size=128, seq_len=16))
        ddp = wrap(model, "ddp", CPU, compile_model=False)  # a process group of one still gets DDP
        assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel)
        assert not ddp.broadcast_buffers and ddp.gradient_as_bucket_view and ddp.static_graph
    finally:
        dist.destroy_process_group()


def test_background_checkpoint_holds_the_state_of_its_step(tmp_path):
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=128, seq_len=16))
    optimizer = build_optimizer(model, TrainConfig(), torch.device("cpu"))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    writer = resume.CheckpointWriter(tmp_path, {"seed": 1}, CPU, keep=1)
    writer.save(5, model, optimizer, scheduler)
    with torch.no_grad():  # training goes on while the files are written
        for p in model.parameters():
            p.add_(1.0)
    writer.wait()
    assert resume.latest(tmp_path).name == "step-00000005"
    fresh = Transformer(model_config("tiny", vocab_size=128, seq_len=16))
    fresh_opt = build_optimizer(fresh, TrainConfig(), torch.device("cpu"))
    fresh_sched = torch.optim.lr_scheduler.LambdaLR(fresh_opt, lambda step: 1.0)
    assert resume.load_latest(tmp_path, fresh, fresh_opt, fresh_sched, {"seed": 1}, CPU) == 5
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in saved.items())
    writer.save(6, model, optimizer, scheduler, background=False)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-00000006"]  # keep=1 pruned step 5


def test_evaluation_does_not_recompile_a_compiled_model():
    compiled_graphs = []

    def counting_backend(graph_module, _inputs):
        compiled_graphs.append(graph_module)
        return graph_module.forward

    torch._dynamo.reset()
    model = Transformer(model_config("tiny", vocab_size=128, seq_len=16))
    model.compile(backend=counting_backend)
    tokens = torch.randint(0, 128, (4, 17))
    model(tokens[:, :-1], tokens[:, 1:]).backward()  # a training step's shapes
    after_training = len(compiled_graphs)
    assert after_training >= 1
    mean_loss(model, np.arange(2_000) % 128, 16, 3, 2, torch.device("cpu"))  # other shapes, no grad
    assert len(compiled_graphs) == after_training
    torch._dynamo.reset()


def test_attention_backend_names_the_kernel_the_priority_picks():
    backend = attention_backend(2, 2, 16, 8, torch.device("cpu"), torch.float32)
    assert backend in {b.name for b in PRIORITY}
    assert backend != "CUDNN_ATTENTION"  # a CUDA-only kernel never runs on a CPU


@pytest.mark.parametrize("fused", [False, True])
def test_flops_per_token_match_an_independent_count(fused):
    """FlopCounterMode counts every matmul of a real forward and backward (attention through the math kernel,
    whose score and weighted-sum matmuls it sees): it must equal 6·N_matmul + 12·L·d·T per token."""
    model = Transformer(
        model_config("tiny", n_heads=4, n_kv_heads=2, vocab_size=300, seq_len=32, fused_projections=fused)
    )
    tokens = torch.randint(0, 300, (2, 33))
    with sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False) as counter:
        model(tokens[:, :-1], tokens[:, 1:]).backward()
    assert counter.get_total_flops() == flops_per_token(model) * 2 * 32
