"""Stage boundaries: a stage reads another's artifacts through components.common.contracts, so importing it does
not load the other stage's implementation (Spark for curation); and no project module imports its importer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("components", "pipelines")

# Modules of the stages that run after curation: none may pull in pyspark (or GX, for those outside the gate).
NOT_SPARK = [
    "components.common.contracts",
    "components.evaluate.model_card",
    "components.evaluate.report",
    "components.evaluate.contamination",
    "components.pretrain.train",
    "components.pretrain.hf_export",
    "components.adapt.lineage",
    "components.adapt.finetune",
    "components.validate.frames",
    "components.validate.datasheet",
    "components.carbon.statement",
    "pipelines.config",
]


def _imported(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return set(out.stdout.split())


def test_contracts_module_uses_the_standard_library_only():
    loaded = _imported("components.common.contracts")
    project = {m for m in loaded if m.split(".")[0] in PACKAGES}
    assert project == {"components", "components.common", "components.common.contracts"}
    assert not {m for m in loaded if m.split(".")[0] in {"numpy", "pyspark", "torch", "great_expectations"}}


@pytest.mark.parametrize("module", NOT_SPARK)
def test_later_stages_do_not_load_spark_or_curation(module):
    loaded = _imported(module)
    assert "pyspark" not in loaded
    assert not {m for m in loaded if m.startswith("components.curate.") and m != "components.curate.shards"}


def test_run_config_loads_without_the_stages():
    loaded = _imported("pipelines.config")
    assert not {m for m in loaded if m.split(".")[0] in {"torch", "pyspark", "great_expectations", "kfp"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Project module -> project modules it imports anywhere in its source (module level or inside functions)."""
    files = [p for package in PACKAGES for p in (REPO / package).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {  # `if TYPE_CHECKING:` imports never run
            id(inner)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}
            for statement in block.body
            for inner in ast.walk(statement)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(t for t in targets if t in modules and t != name)
        # A package's __init__ is imported with its modules; it is not an edge to follow here.
        graph[name] = {t for t in found if t not in {"components", "pipelines"} and not name.startswith(t + ".")}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_cycle_finder_finds_a_cycle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_its_importer():
    cycles = import_cycles(import_graph())
    assert cycles == []


def test_typing_only_imports_are_not_edges(tmp_path):
    assert "components.evaluate.report" not in import_graph()["components.evaluate.render"]
