"""Model lineage: every adapted model carries lineage.json (its parent's hash, method, data fingerprint,
trainable parameters, energy), and a folder of runs can be drawn as a tree: base models → adapted variants
(→ variants warm-started from those)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.tree import Tree

from components.adapt.classifier import LINEAGE, is_classifier
from components.adapt.finetune import AdaptConfig, AdaptResult, adapt
from components.adapt.task import TaskData
from components.carbon.records import EnergyRecord
from components.carbon.tracking import Location, measure
from components.common.contracts import MODEL_CONFIG as CONFIG
from components.common.contracts import MODEL_FORMAT as FORMAT
from components.common.contracts import MODEL_WEIGHTS as WEIGHTS
from components.common.contracts import PARENT_SHA256, ModelDir
from components.common.fingerprint import file_sha256
from components.common.run_status import SUCCEEDED, finished_ok, run_dirs_under, run_state

_ENERGY_KEYS = ("energy_kwh", "emissions_kg", "wall_seconds", "location", "cpu_power_method")


def lineage_record(result: AdaptResult, energy: EnergyRecord | None) -> dict:
    d = result.details
    return {
        "model_sha256": result.model_sha256,
        "parent_sha256": result.parent_sha256,
        "parent_kind": "pretrained" if result.parent_sha256 == d["base_model_sha256"] else "adapted",
        "base_model_sha256": d["base_model_sha256"],
        "task": d["task"],
        "method": result.method,
        "method_reason": d["method_reason"],
        "lora": d["lora"],
        "data_fingerprint": result.data_fingerprint,
        "trainable_parameters": result.trainable_parameters,
        "total_parameters": result.total_parameters,
        "estimated_flops": result.estimated_flops,
        "warm_start": result.warm_start,
        "device": d["device"],  # the model card's GPU hours read it
        "val_accuracy": round(result.val_accuracy, 4),
        "energy": {k: getattr(energy, k) for k in _ENERGY_KEYS} if energy else None,
    }


def adapt_and_record(
    base_model_dir: str | Path, out_dir: str | Path, cfg: AdaptConfig, location: Location, task: TaskData | None = None
) -> tuple[AdaptResult, EnergyRecord]:
    """Adapt under the energy tracker, then write lineage.json beside the model; return the result and energy.
    `task` defaults to the built-in task (loading it parses the standard library: pass it when adapting often)."""
    result, energy = measure("adapt", location, lambda: adapt(base_model_dir, out_dir, cfg, task))
    (Path(out_dir) / LINEAGE).write_text(json.dumps(lineage_record(result, energy), indent=2))
    return result, energy


@dataclass
class Node:
    sha256: str
    path: Path | None
    label: str
    parent: str | None
    children: list[Node] = field(default_factory=list)


def _base_node(model_dir: Path) -> Node:
    sha = file_sha256(model_dir / WEIGHTS)
    report = ModelDir(model_dir).train_report()
    parent = report.get(PARENT_SHA256)  # the weights pretraining warm-started from
    facts = [
        f"{report['parameters']:,} params" if "parameters" in report else "",
        f"val loss {report['val_loss']}" if "val_loss" in report else "",
    ]
    label = f"[bold]base[/] {sha[:12]}  " + ", ".join(f for f in facts if f)
    return Node(sha, model_dir, label, parent)


def _adapted_node(model_dir: Path) -> Node:
    record = json.loads((model_dir / LINEAGE).read_text())
    energy = record.get("energy") or {}
    facts = [
        f"[green]{record['method']}[/]",
        f"{record['trainable_parameters']:,}/{record['total_parameters']:,} trainable",
        f"val acc {record['val_accuracy']}",
        f"data {record['data_fingerprint'][:12]}",
        f"{energy['energy_kwh'] * 1000:.3f} Wh" if energy.get("energy_kwh") is not None else "energy not measured",
    ]
    return Node(
        record["model_sha256"],
        model_dir,
        f"[bold]{record['task']}[/] {record['model_sha256'][:12]}  " + ", ".join(facts),
        record["parent_sha256"],
    )


def unfinished_runs(root: str | Path) -> dict[Path, str]:
    """Run directories under `root` (itself included) that did not succeed, with their state."""
    return {run: state for run in run_dirs_under(root) if (state := run_state(run)) != SUCCEEDED}


def find_models(root: str | Path) -> list[Node]:
    """Every base model (a greenfm model directory that is not a classifier) and adapted model under root,
    except those of runs that did not succeed (see `unfinished_runs`)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such run directory")
    nodes = []
    for config in sorted(root.rglob(CONFIG)):
        model_dir = config.parent
        if not finished_ok(model_dir):
            continue
        try:
            is_model = json.loads(config.read_text()).get("format") == FORMAT
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not is_model:
            continue
        if is_classifier(model_dir):
            if (model_dir / LINEAGE).is_file():
                nodes.append(_adapted_node(model_dir))
        elif (model_dir / WEIGHTS).is_file():
            nodes.append(_base_node(model_dir))
    return nodes


def lineage_tree(root: str | Path, describe_path: Callable[[Path], str] | None = None) -> Tree:
    """A rich Tree: each base model with its adapted variants beneath it; unknown parents appear by hash."""
    nodes = find_models(root)
    by_sha: dict[str, Node] = {}
    for node in nodes:
        by_sha.setdefault(node.sha256, node)  # the same model copied twice (e.g. a cache) shows once
    roots: list[Node] = []
    for node in list(by_sha.values()):
        if node.parent is None:
            roots.append(node)
            continue
        if node.parent not in by_sha:
            by_sha[node.parent] = Node(node.parent, None, f"[dim]outside {root}[/] {node.parent[:12]}", None)
            roots.append(by_sha[node.parent])
        by_sha[node.parent].children.append(node)
    tree = Tree(f"[bold]lineage[/] {root} ({len(by_sha)} models)")
    describe = describe_path or (lambda p: str(p))

    def add(branch: Tree, node: Node) -> None:
        sub = branch.add(node.label + (f"\n[dim]{describe(node.path)}[/]" if node.path else ""))
        for child in node.children:
            add(sub, child)

    for node in roots:
        add(tree, node)
    if not by_sha:
        tree.add("[dim]no models found[/]")
    for run, state in unfinished_runs(root).items():
        tree.add(f"[yellow]left out[/] {describe(run)}: run {state}")
    return tree
