"""Adaptation (LoRA, full, last-layer, head, auto), lineage and warm start; every evaluation metric on a
hand-computed example; the LoRA-adapted model beats the baselines end to end."""

import dataclasses
import html as html_lib
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from components.adapt.classifier import LINEAGE, Classifier
from components.adapt.finetune import (
    AdaptConfig,
    adapt,
    backward_batch,
    find_adapted_model,
    length_groups,
    next_tokens,
    predict,
)
from components.adapt.lineage import adapt_and_record, lineage_tree
from components.adapt.lora import LoraConfig, LoraEmbedding, LoraLinear, apply_lora, lora_state_dict, merge_lora
from components.adapt.methods import SMALL_DATA, auto_lora_rank, choose_method
from components.adapt.scratch import adapt_from_scratch
from components.adapt.task import TaskData, check_splits, data_fingerprint, load_default_task, overlap_with
from components.carbon.tracking import Location
from components.common.contracts import TOKENS_DIR, read_split
from components.common.default_data import default_corpus_records, text_key
from components.evaluate.baselines import BagOfWords, _label_log_likelihood
from components.evaluate.metrics import (
    accuracy,
    calibration_bins,
    expected_calibration_error,
    length_bucket,
    majority_label,
    ngram_overlap,
    perplexity,
    slice_accuracies,
    word_ngrams,
    worst_slice_gap,
)
from components.evaluate.perturb import casing, perturb, typos, whitespace
from components.evaluate.report import EvalConfig, evaluate, window_losses
from components.pretrain.checkpoint import load_model, save_model
from components.pretrain.loss import linear_cross_entropy
from components.pretrain.model import Transformer, model_config
from pipelines.cli import app

FAST_EVAL = EvalConfig(energy_seconds=0.2, latency_examples=4, max_batches=4)


@pytest.fixture(scope="module")
def task():
    return load_default_task()


def test_accuracy_majority_perplexity_by_hand():
    assert accuracy(["a", "b", "c", "a"], ["a", "b", "a", "a"]) == 0.75
    assert majority_label(["x", "y", "y", "x", "z"]) == "x"  # tie broken by sort order
    assert perplexity(math.log(7.0)) == pytest.approx(7.0)
    with pytest.raises(ValueError):
        accuracy([1], [1, 2])


def test_expected_calibration_error_by_hand():
    # Two bins hold examples: (0.2, 0.3] has 0.25 and 0.3, one right -> |0.5 - 0.275| = 0.225, weight 2/4;
    # (0.9, 1.0] has 0.95 and 1.0, both right -> |1 - 0.975| = 0.025, weight 2/4.  ECE = 0.1125 + 0.0125.
    confidences, correct = [0.25, 0.3, 0.95, 1.0], [True, False, True, True]
    assert expected_calibration_error(confidences, correct, n_bins=10) == pytest.approx(0.125)
    bins = calibration_bins(confidences, correct, n_bins=10)
    assert [len(b) for b in bins] == [0, 0, 2, 0, 0, 0, 0, 0, 0, 2]
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    with pytest.raises(ValueError, match="outside"):
        expected_calibration_error([1.5], [True])


def test_slices_and_worst_slice_gap_by_hand():
    slices = slice_accuracies([1, 1, 0, 0, 1], [1, 0, 0, 1, 1], ["a", "a", "b", "b", "b"])
    assert slices == {"a": {"accuracy": 0.5, "n": 2}, "b": {"accuracy": pytest.approx(2 / 3), "n": 3}}
    worst, gap = worst_slice_gap(0.6, slices)
    assert worst == "a" and gap == pytest.approx(0.1)
    assert length_bucket(3) == "short (<16 tokens)" and length_bucket(64).startswith("long")


def test_ngram_overlap_by_hand():
    assert word_ngrams("A b a B c", 2) == {("a", "b"), ("b", "a"), ("b", "c")}
    reference = word_ngrams("the quick brown fox", 3)  # {the quick brown, quick brown fox}
    report = ngram_overlap(["The quick brown cat", "a b", "jumps over the quick brown fox"], reference, 3)
    # text 1: 2 trigrams, 1 shared; text 2: none; text 3: 4 trigrams, 2 shared
    assert report["texts_with_overlap"] == 2 and report["text_overlap_rate"] == pytest.approx(2 / 3)
    assert report["ngram_overlap_rate"] == pytest.approx(3 / 6)


def test_perturbations_are_deterministic_and_change_the_text():
    text = "Return the logging handler attached to this logger\nwhen possible, otherwise raise errors"
    for kind in ("typo", "casing", "whitespace"):
        first, second = perturb([text, "other text"], kind, 3), perturb(["other text", text], kind, 3)
        assert first[0] == second[1]  # a pure function of (text, seed), whatever the order
    assert typos(text, 1, rate=1.0) != text and sorted(typos(text, 1, rate=1.0)) == sorted(text)
    assert casing(text, 1).lower() == text.lower()
    assert whitespace(text, 1).split() == text.split() and "\n" not in whitespace(text, 1)
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb([text], "emoji", 1)


def test_bag_of_words_baseline_by_hand():
    bow = BagOfWords(["red apple", "green apple", "blue sky"], ["fruit", "fruit", "sky"], ["fruit", "sky"])
    assert bow.predict_proba(["apple", "sky blue"]).argmax(-1).tolist() == [0, 1]


def test_zero_shot_label_likelihood_is_the_whole_forward_pass_read_at_the_label():
    """Batched by length and with the output layer only where a label token is predicted, the zero-shot score
    must be log P(label | context) of the plain forward pass over each row alone, a context longer than the
    model's window keeping its last tokens."""
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=64, seq_len=16)).eval()
    contexts = [torch.randint(0, 64, (n,)).tolist() for n in (1, 3, 9, 13, 14, 20, 5, 40)]
    label = [7, 11]
    expected = []
    for context in contexts:
        row = torch.tensor(context[-14:] + label)
        logprobs = torch.log_softmax(model(row[None])[0].double(), dim=-1)
        expected.append(sum(logprobs[len(row) - 3 + k, label[k]] for k in range(2)))
    scores = _label_log_likelihood(model, contexts, label)
    assert torch.allclose(scores.double(), torch.stack(expected), atol=1e-4)


def test_predictions_batched_by_length_are_each_text_classified_alone_in_its_order():
    torch.manual_seed(0)
    model = Classifier(Transformer(model_config("tiny", vocab_size=64, seq_len=16)), n_labels=3)
    lengths = torch.tensor([16, 2, 9, 1, 16, 5, 12, 3, 7])
    tokens = torch.randint(1, 64, (len(lengths), 16))
    tokens[torch.arange(16)[None, :] >= lengths[:, None]] = 0  # right padding
    alone = torch.cat(
        [torch.softmax(model(t[None, :n], n[None]), dim=-1) for t, n in zip(tokens, lengths, strict=True)]
    )
    assert torch.allclose(predict(model, tokens, lengths, batch_size=4), alone, atol=1e-5)


def test_lora_starts_at_the_base_model_and_merges_exactly():
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=64, seq_len=16))
    tokens = torch.randint(0, 64, (2, 16))
    before = model(tokens)
    wrapped = apply_lora(model, LoraConfig(rank=4, targets=("wq", "wv")))
    assert wrapped == [
        "layers.0.attention.wq",
        "layers.0.attention.wv",
        "layers.1.attention.wq",
        "layers.1.attention.wv",
    ]
    assert torch.equal(model(tokens), before)  # B = 0: training starts exactly at the pretrained model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 4 * 4 * (64 + 64) == sum(t.numel() for t in lora_state_dict(model).values())
    for module in model.modules():
        if isinstance(module, LoraLinear):
            nn.init.normal_(module.lora_b)
    adapted = model(tokens)
    assert merge_lora(model) == 4 and not any(isinstance(m, LoraLinear) for m in model.modules())
    assert torch.allclose(model(tokens), adapted, atol=1e-5)
    with pytest.raises(ValueError, match=r"no nn\.Linear or nn\.Embedding named"):
        apply_lora(model, LoraConfig(targets=("nope",)))


def test_embedding_adapter_merges_into_the_input_table_only(tmp_path):
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=300, seq_len=16))
    base_head = model.output.weight.detach().clone()
    tokens = torch.randint(0, 300, (2, 16))
    apply_lora(model, LoraConfig(rank=4, targets=("wq", "tok_embeddings")))
    for module in model.modules():
        if isinstance(module, LoraEmbedding):
            nn.init.normal_(module.lora_a)
    adapted = model(tokens)  # the language-model head reads the frozen table while the adapter trains
    assert merge_lora(model) == 3 and not model.cfg.tie_embeddings
    assert torch.equal(model.output.weight, base_head) and not torch.equal(model.tok_embeddings.weight, base_head)
    assert torch.allclose(model(tokens), adapted, atol=1e-5)
    (tmp_path / "tokenizer.json").write_text("{}")  # copied beside the weights, not read by load_model
    save_model(model, tmp_path / "m", tmp_path / "tokenizer.json")
    reloaded = load_model(tmp_path / "m")
    assert not reloaded.cfg.tie_embeddings and torch.allclose(reloaded(tokens), adapted, atol=1e-5)


def test_auto_rule():
    assert choose_method(SMALL_DATA - 1, 10**6, 10**9).method == "head"
    assert choose_method(500, 10**6, 2 * 10**6).method == "full"  # tokens >= parameters, no budget
    assert choose_method(500, 10**6, 10**5).method == "lora"  # too little data to move every weight
    assert choose_method(500, 10**6, 2 * 10**6, budget_flops=9e12).method == "lora"  # full costs 1.2e13
    assert choose_method(500, 10**6, 2 * 10**6, budget_flops=1e9).method == "head"
    assert auto_lora_rank(10) == 4 and auto_lora_rank(512) == 8 and auto_lora_rank(10**6) == 16


def test_task_splits_are_disjoint_from_pretraining_and_each_other(task):
    ids = {name: {x["id"] for x in rows} for name, rows in task.splits.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    corpus = list(default_corpus_records())
    assert overlap_with(task, {r["id"] for r in corpus}, {text_key(r["text"]) for r in corpus}) == []
    assert {x["label"] for x in task.splits["test"]} == set(task.labels)
    leaked = TaskData(
        "t",
        ["a"],
        {
            "train": [{"id": "1", "text": "same  text", "label": "a"}],
            "test": [{"id": "2", "text": "same text", "label": "a"}],
        },
    )
    with pytest.raises(ValueError, match="example 2 is in both train and test"):
        check_splits(leaked)
    assert data_fingerprint(task) == data_fingerprint(load_default_task())


def test_the_task_parsed_from_its_packages_alone_is_the_task_of_the_whole_library():
    """Steps that only read the task parse only its packages' files; that must give the task the corpus was cut
    against (same examples, same order), or decontamination and the splits would drift apart."""
    from components.common import default_data
    from components.common.stdlib_text import iter_stdlib_docstrings

    alone = list(iter_stdlib_docstrings(default_data.MIN_WORDS, packages=default_data.TASK_LABELS))
    assert {doc.package for doc in alone} == set(default_data.TASK_LABELS)
    assert tuple(default_data._task_docs(alone)) == default_data._stdlib_and_task_docs()[1]


def test_the_docstrings_cache_is_read_back_as_parsed_replaces_older_files_and_a_broken_one_is_parsed_anew(
    tmp_path, monkeypatch
):
    from components.common import default_data

    monkeypatch.setenv("GREENFM_CACHE_DIR", str(tmp_path))
    load = default_data._stdlib_and_task_docs
    try:
        interpreter, _ = default_data._docstrings_keys()
        older = tmp_path / f"stdlib-docstrings-{interpreter}-0123456789abcdef.json"  # what older code wrote
        other_python = tmp_path / "stdlib-docstrings-fedcba9876543210-0123456789abcdef.json"
        for stale in (older, other_python):
            stale.write_text("{}")
        load.cache_clear()
        parsed = load()  # no file yet: parsed, then written
        path = default_data.docstrings_cache_file()
        assert path.parent == tmp_path and path.is_file()
        assert not older.exists() and other_python.exists()  # replaced; another interpreter's file is its own
        load.cache_clear()
        assert load() == parsed
        one = parsed[1][0]  # a file with one docstring, the task's: what is read is what the file says
        path.write_text(json.dumps({"docs": [list(dataclasses.astuple(one))], "task": [0]}))
        load.cache_clear()
        assert load() == ((one,), (one,))
        path.write_text(path.read_text()[:-5])  # cut short, as by a full disk
        load.cache_clear()
        assert load() == parsed
        assert len(json.loads(path.read_text())["docs"]) == len(parsed[0])  # written whole again
    finally:
        load.cache_clear()


@pytest.fixture(scope="module")
def evaluated(pretrained, curated, tmp_path_factory, task):
    """LoRA and its from-scratch arm adapted once, and the evaluation of both."""
    runs, scratch_dir, eval_dir = (tmp_path_factory.mktemp(name) for name in ("runs", "scratch", "eval"))
    config = AdaptConfig(method="lora", steps=60, seed=7)
    adapted = adapt_and_record(pretrained.model_dir, runs / "lora", config, Location("FIN"), task)
    scratch = adapt_from_scratch(pretrained.model_dir, scratch_dir, config, Location("FIN"), task)
    report = evaluate(
        pretrained.model_dir,
        runs / "lora",
        curated.output_dir,
        eval_dir,
        task,
        FAST_EVAL,
        scratch_model_dir=scratch_dir,
        scratch_energy=scratch[1],
    )
    return {
        "runs": runs,
        "adapted": adapted,
        "scratch": scratch,
        "scratch_dir": scratch_dir,
        "report": report,
        "report_dir": eval_dir,
    }


def test_from_scratch_arm_is_the_same_adaptation_from_a_random_init(evaluated, pretrained):
    (adapted, _), (scratch, energy) = evaluated["adapted"], evaluated["scratch"]
    assert energy.stage == "adapt-from-scratch" and energy.energy_kwh > 0
    assert scratch.details["init"] == "random" and adapted.details["init"] == "pretrained"
    assert scratch.parent_sha256 != pretrained.checkpoint_sha256  # its parent is the random init
    same = ("method", "lora", "adapted_modules", "config", "tokens_seen", "trainable_parameters", "total_parameters")
    assert {k: scratch.details[k] for k in same} == {k: adapted.details[k] for k in same}
    random_backbone = load_model(evaluated["scratch_dir"]).cfg.to_dict()
    pretrained_backbone = load_model(pretrained.model_dir).cfg.to_dict()
    assert {k: v for k, v in random_backbone.items() if k != "tie_embeddings"} == {
        k: v for k, v in pretrained_backbone.items() if k != "tie_embeddings"
    }


def test_lora_adapted_model_beats_zero_shot_and_majority(evaluated, pretrained, task):
    out, tmp_path = evaluated["runs"] / "lora", evaluated["runs"]
    result, energy = evaluated["adapted"]
    assert result.method == "lora" and result.parent_sha256 == pretrained.checkpoint_sha256
    lineage = json.loads((out / LINEAGE).read_text())
    assert lineage["trainable_parameters"] == result.trainable_parameters < result.total_parameters / 10
    assert lineage["energy"]["energy_kwh"] == energy.energy_kwh and lineage["data_fingerprint"] == data_fingerprint(
        task
    )
    assert lineage["device"] == result.details["device"]

    report = evaluated["report"]
    assert report.task_accuracy > report.baseline_accuracy + 0.05
    assert report.task_accuracy > report.zero_shot_accuracy + 0.05
    assert report.task_accuracy_low <= report.task_accuracy <= report.task_accuracy_high
    assert report.base_perplexity < 512  # better than uniform
    assert 0 <= report.expected_calibration_error <= 1 and report.energy_kwh_per_1k_predictions > 0
    accuracy = report.details["accuracy"]
    assert set(accuracy["models"]) == {"adapted", "from_scratch", "majority", "bag_of_words", "zero_shot"}
    assert set(accuracy["comparisons"]) == set(accuracy["models"]) - {"adapted"}
    vs_majority = accuracy["comparisons"]["majority"]
    assert vs_majority["verdict"] == "better" and vs_majority["p_adjusted"] < 0.05
    assert report.p_value_vs_from_scratch == accuracy["comparisons"]["from_scratch"]["p_adjusted"]
    for grouping in report.details["slices"]["groups"].values():
        for piece in grouping["slices"].values():
            assert piece["too_small"] == (piece["n"] < FAST_EVAL.min_slice_examples)
            assert piece["low"] <= piece["value"] <= piece["high"]
    ppl = report.details["perplexity"]["models"]
    assert set(ppl) == {"base", "adapted", "from_scratch"} and ppl["base"]["low"] <= ppl["base"]["value"]
    assert "Why the adapted perplexity rises" in (evaluated["report_dir"] / "eval_report.md").read_text()
    html = (evaluated["report_dir"] / "eval_report.html").read_text()
    assert html.count("<svg") >= 4 and "<h2>Contamination</h2>" in html and "<pre>" not in html

    # Warm start from the adapted model (found inside its run folder); the tree nests it under its parent.
    warm_config = AdaptConfig(method="head", steps=5, init_from=str(tmp_path))
    again, _ = adapt_and_record(pretrained.model_dir, tmp_path / "runs" / "warm", warm_config, Location("FIN"), task)
    assert again.warm_start == f"loaded from {out}" and again.parent_sha256 == result.model_sha256
    tree = lineage_tree(tmp_path)
    (base,) = tree.children
    (lora_node,) = base.children
    assert "lora" in lora_node.label and "head" in lora_node.children[0].label

    shown = CliRunner().invoke(app, ["lineage", str(tmp_path)])
    assert shown.exit_code == 0 and "lora" in shown.output and result.model_sha256[:12] in shown.output
    missing = CliRunner().invoke(app, ["lineage", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such run directory" in missing.output


def test_next_token_targets_stay_inside_each_text():
    tokens = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0]])  # right-padded with 0, lengths 3 and 2
    assert next_tokens(tokens, torch.tensor([3, 2])).tolist() == [[6, 7, -100, -100], [9, -100, -100, -100]]


def test_language_model_loss_keeps_the_adapted_perplexity_down(pretrained, curated, tmp_path, task):
    """Full fine-tuning for classification alone moves the backbone away from next-token prediction; the same run
    with the next-token loss on the task's texts ends with a lower held-out perplexity."""
    held_out = read_split(Path(curated.output_dir) / TOKENS_DIR, "val")
    losses = {}
    for weight in (0.0, 1.0):
        config = AdaptConfig(method="full", steps=30, lr=3e-3, lm_loss_weight=weight, seed=3)
        result = adapt(pretrained.model_dir, tmp_path / str(weight), config, task)
        assert result.details["config"]["lm_loss_weight"] == weight
        windows = window_losses(load_model(tmp_path / str(weight)), held_out, 8, 4)
        losses[weight] = sum(windows) / len(windows)
    assert losses[1.0] < losses[0.0]


@pytest.mark.parametrize("method,expected", [("head", lambda dim, n: dim * n + n), ("last-layer", None)])
def test_cheap_methods_train_only_their_part(pretrained, tmp_path, task, method, expected):
    result = adapt(pretrained.model_dir, tmp_path / method, AdaptConfig(method=method, steps=3), task)
    dim, n = 64, len(task.labels)  # tiny model width
    if expected:
        assert result.trainable_parameters == expected(dim, n)
    else:
        assert dim * n + n < result.trainable_parameters < result.total_parameters / 2


def test_bad_method_and_warm_start_paths_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown adaptation method 'prefix'"):
        adapt(tmp_path, tmp_path / "x", AdaptConfig(method="prefix"))
    with pytest.raises(ValueError, match="empty: expected one adapted model inside, found 0"):
        (tmp_path / "empty").mkdir()
        find_adapted_model(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing: no such adapted model"):
        find_adapted_model(tmp_path / "missing")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Appended to a copy of the page only: reports what the browser laid out (the report itself has no scripts).
TABLE_PROBE = """<script>
const report = document.getElementById('report');
const tables = Array.from(report.querySelectorAll('table')).map(t => {
  const r = t.getBoundingClientRect();
  return {w: r.width, h: r.height, header: Array.from(t.querySelectorAll('th')).map(th => th.textContent),
          rows: Array.from(t.querySelectorAll('tbody tr')).map(tr => Array.from(tr.cells).map(td => td.textContent))};
});
const out = {tables, headings: Array.from(report.querySelectorAll('h1,h2')).map(h => h.textContent),
             pre: document.querySelectorAll('pre').length, bold: Array.from(report.querySelectorAll('strong')).map(b => b.textContent),
             svgs: Array.from(document.querySelectorAll('svg')).filter(s => s.getBoundingClientRect().width > 0).length};
const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (apt-get install chromium; .ci/run installs it)")
def test_report_html_renders_tables_and_text_in_headless_chromium(evaluated, tmp_path):
    report = evaluated["report"]
    page = tmp_path / "probe.html"
    html = (evaluated["report_dir"] / "eval_report.html").read_text()
    page.write_text(html.replace("</body>", TABLE_PROBE + "</body>"))
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert match, f"chromium did not render the page (rc {result.returncode}): {result.stderr[-2000:]}"
    seen = json.loads(html_lib.unescape(match.group(1)))
    assert seen["pre"] == 0  # no Markdown source shown as preformatted text (the probe's own <pre> comes later)
    assert seen["headings"][:3] == ["Evaluation report", "Intrinsic", "Task accuracy"]
    assert all(t["w"] > 0 and t["h"] > 0 for t in seen["tables"]) and seen["svgs"] >= 4
    accuracy = next(t for t in seen["tables"] if t["header"][:2] == ["model", "test accuracy"])
    models = report.details["accuracy"]["models"]
    assert len(accuracy["rows"]) == len(models)
    adapted = models["adapted"]
    assert accuracy["rows"][0][1] == f"{adapted['value']:.3f} [{adapted['low']:.3f}, {adapted['high']:.3f}]"
    verdicts = {c["verdict"] for c in report.details["accuracy"]["comparisons"].values()}
    assert verdicts <= set(seen["bold"])  # each verdict shown in bold, as words


def test_length_groups_partition_the_batch_by_length_at_least_cost():
    lengths = torch.tensor([128, 10, 12, 127, 11, 9])
    groups = length_groups(lengths, group_cost=50)
    assert sorted(torch.cat(groups).tolist()) == list(range(6))
    assert [sorted(lengths[g].tolist()) for g in groups] == [[9, 10, 11, 12], [127, 128]]
    # one more pass costs more than the padding it saves: one group
    assert len(length_groups(lengths, group_cost=10_000)) == 1
    assert len(length_groups(torch.tensor([5, 5, 5]), group_cost=1)) == 1  # equal lengths save nothing


@pytest.mark.parametrize("lm_loss_weight", [0.0, 0.5])
def test_backward_batch_in_groups_matches_the_padded_batch(lm_loss_weight):
    torch.manual_seed(0)
    model = Classifier(Transformer(model_config("tiny", vocab_size=64, seq_len=16)), 3)
    lengths = torch.tensor([16, 3, 4, 15, 2, 5])
    tokens = torch.randint(0, 64, (6, 16))
    tokens[torch.arange(16)[None, :] >= lengths[:, None]] = 0  # padding
    labels = torch.tensor([0, 1, 2, 1, 0, 2])
    assert len(length_groups(lengths, group_cost=1)) > 1

    hidden = model.backbone.hidden_states(tokens)  # reference: the whole padded batch at once
    expected = F.cross_entropy(model.classify(hidden, lengths), labels)
    if lm_loss_weight:
        lm = linear_cross_entropy(hidden[:, :-1], model.backbone.output.weight, next_tokens(tokens, lengths))
        expected = expected + lm_loss_weight * lm
    expected.backward()
    reference = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)

    # group_cost 1: several groups even on this tiny batch
    loss = backward_batch(model, tokens, lengths, labels, lm_loss_weight, torch.device("cpu"), group_cost=1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, reference[name], atol=1e-6, rtol=1e-4), name
