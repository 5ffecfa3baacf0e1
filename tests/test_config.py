"""RunConfig is the single source of the run's parameters: every value in the README's table is checked at load
(type, choice, bound, unknown key; one line naming the file and key), the DAG and the README are generated from
it, and the stage commands build their stage's configuration from it as the pipeline does."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields

import pytest
import yaml

from components.common.errors import GreenfmError
from pipelines.config import DEFAULTS, RunConfig, base_type, choices, load_config
from pipelines.config_table import README, with_table

NAMES = [spec.name for spec in fields(RunConfig)]
SPECS = {spec.name: spec for spec in fields(RunConfig)}


def _readme_keys() -> list[str]:
    return re.findall(r"^\| `([a-z_0-9]+)` \|", README.read_text(encoding="utf-8"), flags=re.MULTILINE)


def _load_error(tmp_path, values: dict) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(GreenfmError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def test_readme_table_is_generated_from_run_config():
    text = README.read_text(encoding="utf-8")
    assert with_table(text) == text, "run `python -m pipelines.config_table --write`"
    assert _readme_keys() == NAMES


def test_every_parameter_has_a_description():
    assert all(SPECS[name].metadata.get("description") for name in NAMES)


def _wrong_type(name: str):
    if SPECS[name].metadata.get("number_text"):
        return ["1"]
    kind = base_type(name)
    return {str: 12, int: 64.9, float: "fast", bool: "yes", list: "nvidia.com/gpu"}[kind]


@pytest.mark.parametrize("name", _readme_keys())
def test_wrong_type_is_rejected(tmp_path, name):
    value = _wrong_type(name)
    message = _load_error(tmp_path, {name: value})
    assert f" {name} must be " in message and repr(value) in message


@pytest.mark.parametrize("name", [n for n in _readme_keys() if base_type(n) in (int, float)])
def test_true_is_not_a_number(tmp_path, name):
    assert f"{name} must be" in _load_error(tmp_path, {name: True})


@pytest.mark.parametrize("name", [n for n in _readme_keys() if choices(n)])
def test_value_outside_the_choices_is_rejected(tmp_path, name):
    message = _load_error(tmp_path, {name: choices(name)[0] + "x"})
    assert f"{name} must be one of {', '.join(choices(name))}; got '{choices(name)[0]}x'" in message


def _out_of_bounds(name: str):
    metadata = SPECS[name].metadata
    step = 1 if base_type(name) is int else 0.5
    if metadata["ge"] is not None:
        return metadata["ge"] - step
    if metadata["gt"] is not None:
        return metadata["gt"]
    return metadata["le"] + step


BOUNDED = [n for n in _readme_keys() if any(SPECS[n].metadata.get(k) is not None for k in ("ge", "gt", "le"))]


@pytest.mark.parametrize("name", BOUNDED)
def test_value_outside_the_bounds_is_rejected(tmp_path, name):
    value = _out_of_bounds(name)
    assert f"{name} must be " in _load_error(tmp_path, {name: value})


@pytest.mark.parametrize("name", [n for n in BOUNDED if SPECS[n].metadata.get("le") is not None])
def test_value_above_the_upper_bound_is_rejected(tmp_path, name):
    value = SPECS[name].metadata["le"] + 0.5
    assert f"{name} must be between 0 and 1, got {value}" in _load_error(tmp_path, {name: value})


@pytest.mark.parametrize("name", _readme_keys())
def test_misspelt_key_is_rejected_with_a_suggestion(tmp_path, name):
    message = _load_error(tmp_path, {name[:-1]: getattr(DEFAULTS, name)})
    assert f"unknown parameter '{name[:-1]}'" in message


def test_the_issue_examples(tmp_path):
    for values, expected in [
        ({"train_steps": True}, "train_steps must be an integer, got True"),
        ({"seq_len": 64.9}, "seq_len must be an integer, got 64.9"),
        ({"parallelism": "fssdp"}, "parallelism must be one of ddp, fsdp; got 'fssdp'"),
        ({"adapt_method": "loraa"}, "adapt_method must be one of lora, full, last-layer, head, auto; got 'loraa'"),
        ({"drift_mode": "warnn"}, "drift_mode must be one of fail, warn, off; got 'warnn'"),
        ({"vocab_size": -5}, "vocab_size must be ≥ 258, got -5"),
        ({"train_step": 3}, "unknown parameter 'train_step' (did you mean train_steps?)"),
        ({"job_estimates": '{"curate": {"kwh": 1}}'}, 'job_estimates needs "curate"'),
    ]:
        assert expected in _load_error(tmp_path, values)


def test_good_values_load_with_their_types(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train_steps: 50\nlearning_rate: 1e-3\nsocial_cost_usd_per_t: 100\nsocial_benefit_usd: 1000\n")
    config = load_config(path, seq_len="64")  # command-line text that spells a number
    assert (config.train_steps, config.learning_rate, config.seq_len) == (50, 1e-3, 64)
    assert isinstance(config.social_cost_usd_per_t, float) and config.social_benefit_usd == "1000"


def test_replace_and_direct_construction_are_checked_too():
    from dataclasses import replace

    with pytest.raises(GreenfmError, match="parallelism must be one of"):
        replace(RunConfig(), parallelism="fssdp")


def test_dag_signature_and_ui_descriptions_come_from_run_config(tmp_path):
    from pipelines.compile import compile_pipeline
    from pipelines.dag import greenfm_dag

    signature = inspect.signature(greenfm_dag)
    assert set(signature.parameters) == set(DEFAULTS.pipeline_arguments())  # all but the compile-time settings
    for name, parameter in signature.parameters.items():
        assert parameter.default == getattr(DEFAULTS, name), name
        assert parameter.annotation in (base_type(name), base_type(name).__name__), name
    spec = next(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    for name in DEFAULTS.pipeline_arguments():
        assert inputs[name]["description"] == SPECS[name].metadata["description"], name


def test_choices_are_the_stages_own():
    from components.adapt.methods import METHODS
    from components.carbon.providers import PROVIDER_NAMES
    from components.curate.k8s import BACKENDS as SPARK_BACKENDS
    from components.curate.quality import QUALITY_PRESETS
    from components.pretrain.launch import BACKENDS as LAUNCH_BACKENDS
    from components.pretrain.model import MODEL_SIZES
    from components.validate.config import DRIFT_MODES

    assert set(choices("model_size")) == set(MODEL_SIZES)
    assert set(choices("adapt_method")) == {*METHODS, "auto"}
    assert set(choices("intensity_provider")) == set(PROVIDER_NAMES)
    assert set(choices("spark_backend")) == set(SPARK_BACKENDS)
    assert set(choices("quality_preset")) == {*QUALITY_PRESETS, "auto"}
    assert set(choices("launch_backend")) == set(LAUNCH_BACKENDS)
    assert set(choices("parallelism")) == {"ddp", "fsdp"}
    assert set(choices("drift_mode")) == set(DRIFT_MODES)


def test_stage_configs_built_from_the_defaults_match_the_stages_defaults():
    """A stage used as a library (its own defaults) and the default run agree: nothing drifted."""
    from components.adapt.finetune import AdaptConfig
    from components.carbon.costs import CostAssumptions
    from components.curate.job import CurateConfig
    from components.pretrain.train import TrainConfig
    from components.validate.config import ValidateConfig
    from pipelines.stage_configs import adapt_config, cost_assumptions, curate_config, gate_config, train_config

    run = RunConfig()
    assert train_config(run) == TrainConfig()  # steps, warmup (10%), lr, sizes, seed
    assert adapt_config(run) == AdaptConfig()
    assert cost_assumptions(run) == CostAssumptions()
    assert gate_config(run) == ValidateConfig(allowed_languages=["en"])
    assert curate_config(run, builtin_corpus=False) == CurateConfig()  # FineWeb recipe, en, min_words


def test_stage_commands_without_options_configure_the_stage_as_the_pipeline(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import components.curate.inputs
    import components.curate.k8s
    import components.validate.gate
    from pipelines.cli import app
    from pipelines.stage_configs import curate_config, gate_config

    seen = {}

    def fake_stage(name):
        def run(source, out, config):
            seen[name] = config
            raise GreenfmError("stopped")  # the configuration is what this test checks

        return run

    monkeypatch.setattr(components.curate.k8s, "curate_with_backend", fake_stage("curate"))
    monkeypatch.setattr(components.curate.inputs, "discover_inputs", lambda uri, strict=False: [uri])
    monkeypatch.setattr(components.validate.gate, "validate", fake_stage("validate"))
    runner = CliRunner()
    runner.invoke(app, ["curate", "--input", str(tmp_path), "--output", str(tmp_path / "out")])
    runner.invoke(app, ["validate", "--input", str(tmp_path)])
    assert seen["curate"] == curate_config(RunConfig(), builtin_corpus=False)
    assert seen["validate"] == gate_config(RunConfig())
    config = tmp_path / "run.yaml"
    config.write_text("min_words: 9\nmin_documents: 7\n")
    runner.invoke(app, ["curate", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--config", str(config)])
    runner.invoke(app, ["validate", "--input", str(tmp_path), "--config", str(config), "--min-documents", "8"])
    assert seen["curate"].min_words == 9
    assert (seen["validate"].min_words, seen["validate"].min_documents) == (9, 8)
    bad = runner.invoke(app, ["validate", "--input", str(tmp_path), "--drift-mode", "warnn"])
    assert bad.exit_code == 2 and "drift_mode must be one of fail, warn, off" in bad.output
