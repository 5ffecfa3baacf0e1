"""Real English text every machine with this Python has: the docstrings of the standard library.

greenfm's default corpus and its default downstream task both come from here, so the default job needs no
network and no shipped data. The text is the Python Software Foundation's (PSF-2.0 license).
"""

from __future__ import annotations

import ast
import inspect
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STDLIB_LICENSE = "PSF-2.0"
# Test suites and vendored or generated code are not prose.
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "lib2to3", "__pycache__", "ensurepip", "turtledemo"}


@dataclass(frozen=True)
class Docstring:
    id: str  # "module:qualified.name", unique within one Python version
    module: str
    package: str  # top-level package or module name, the label of the default task
    kind: str  # module | class | function
    text: str


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _docstrings_of(module: str, tree: ast.Module) -> Iterator[tuple[str, str, str]]:
    doc = ast.get_docstring(tree, clean=False)
    if doc:
        yield module, "module", doc
    stack: list[tuple[str, ast.AST]] = [("", tree)]
    while stack:
        prefix, node = stack.pop(0)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                doc = ast.get_docstring(child, clean=False)
                if doc:
                    yield f"{module}:{name}", "class" if isinstance(child, ast.ClassDef) else "function", doc
                stack.append((f"{name}.", child))


def iter_stdlib_docstrings(min_words: int = 1, packages: tuple[str, ...] = ()) -> Iterator[Docstring]:
    """Docstrings of the standard library in a fixed order (sorted paths, source order within a file); with
    `packages`, only those top-level packages' (their files alone are parsed)."""
    root = stdlib_root()
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if _SKIP_DIRS.intersection(parts[:-1]):
            continue
        if packages and parts[0].removesuffix(".py") not in packages:
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError):
            continue  # a few stdlib files are deliberately invalid (bad-syntax fixtures)
        module = _module_name(root, path)
        package = module.split(".")[0]
        for doc_id, kind, raw in _docstrings_of(module, tree):
            text = inspect.cleandoc(raw)
            if len(text.split()) >= min_words:
                yield Docstring(id=doc_id, module=module, package=package, kind=kind, text=text)
