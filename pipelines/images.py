"""Build the container images of images/ with Docker or podman (`greenfm images build`).

Each image is tagged twice: with the name the components run in (components.common.images, e.g.
ghcr.io/greenfm/greenfm-base:0.1.0, so kfp.local's DockerRunner finds it locally) and with a hash of everything
that goes into it (Dockerfile, build arguments, the files of the build context): a rebuild with the same inputs
is skipped. The spark image is built on the base image just built, so the same inputs hash covers it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from components.common import images
from components.common.errors import GreenfmError

REPO_ROOT = Path(__file__).resolve().parent.parent
WHEELS_DIR = "images/wheels"  # inside the build context; *.whl there is ignored by git
CONTEXT_PATHS = (
    "pyproject.toml",
    "README.md",
    "components",
    "pipelines",
    "images/spark-entrypoint.sh",
    WHEELS_DIR,
)  # as .dockerignore admits
INPUTS_LABEL = "org.greenfm.inputs-sha256"  # everything that went into the image
SOURCES_LABEL = "org.greenfm.sources-sha256"  # the greenfm sources in it (sources_digest)
ENGINES = ("podman", "docker")  # podman first: where both exist, docker is often its client


@dataclass(frozen=True)
class ImageSpec:
    name: str  # base | trainer | spark
    dockerfile: str
    ref: str  # the name components run it by


def image_specs() -> list[ImageSpec]:
    """Build order: spark is built on base."""
    return [
        ImageSpec("base", "images/base.Dockerfile", images.BASE_IMAGE),
        ImageSpec("trainer", "images/trainer.Dockerfile", images.TRAINER_IMAGE),
        ImageSpec("spark", "images/spark.Dockerfile", images.SPARK_IMAGE),
    ]


@dataclass
class BuildOptions:
    base_image: str = ""  # BASE_IMAGE build argument; empty: the Dockerfiles' default (python:3.11-slim-bookworm)
    torch_wheel: str = ""  # a local torch wheel to install instead of the index's torch
    torch_index_url: str = ""  # TORCH_INDEX_URL; with a wheel, its dependencies come from here (default PyPI)
    only: tuple[str, ...] = ()  # image names; empty: all
    engine: str = ""  # docker | podman; empty: $GREENFM_CONTAINER_ENGINE, else whichever is installed
    network_host: bool = True  # builds reach the package index through the host's network

    def build_args(self) -> dict[str, str]:
        args: dict[str, str] = {}
        if self.base_image:
            args["BASE_IMAGE"] = self.base_image
        if self.torch_wheel:
            args["TORCH"] = f"/wheels/{Path(self.torch_wheel).name}"
            args["TORCH_INDEX_URL"] = self.torch_index_url or "https://pypi.org/simple"
        elif self.torch_index_url:
            args["TORCH_INDEX_URL"] = self.torch_index_url
        return args


@dataclass
class BuiltImage:
    name: str
    ref: str
    inputs_tag: str
    size_bytes: int
    seconds: float
    skipped: bool  # an image with the same inputs hash existed
    build_args: dict[str, str] = field(default_factory=dict)


def find_engine(preferred: str = "") -> str:
    """The container engine CLI: `preferred`, $GREENFM_CONTAINER_ENGINE, or docker / podman on PATH."""
    wanted = preferred or os.environ.get("GREENFM_CONTAINER_ENGINE", "")
    for candidate in [wanted] if wanted else ENGINES:
        if shutil.which(candidate):
            return candidate
    raise GreenfmError(f"no container engine: {wanted or ' or '.join(ENGINES)} not found on PATH")


def context_files(root: Path = REPO_ROOT) -> list[Path]:
    """The files a build sends (the .dockerignore allowlist), without caches."""
    files: list[Path] = []
    for entry in CONTEXT_PATHS:
        path = root / entry
        candidates = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        files += [p for p in candidates if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return files


def inputs_hash(spec: ImageSpec, build_args: dict[str, str], root: Path = REPO_ROOT, parent: str = "") -> str:
    """sha256 of the Dockerfile, the build arguments, the context files (path and content) and the parent image's hash."""
    digest = hashlib.sha256()
    digest.update((root / spec.dockerfile).read_bytes())
    for key, value in sorted(build_args.items()):
        digest.update(f"\0{key}={value}".encode())
    digest.update(f"\0parent={parent}".encode())
    for path in context_files(root):
        digest.update(f"\0{path.relative_to(root)}\0".encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _engine(engine: str, *args: str, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([engine, *args], capture_output=capture, text=True, check=False)


def image_exists(engine: str, ref: str) -> bool:
    return _engine(engine, "image", "inspect", ref).returncode == 0


def image_size(engine: str, ref: str) -> int:
    result = _engine(engine, "image", "inspect", "--format", "{{.Size}}", ref)
    return int(result.stdout.strip() or 0)


def image_label(engine: str, ref: str, label: str) -> str:
    """One label of an image, or '' when the image or the label is absent."""
    result = _engine(engine, "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', ref)
    value = result.stdout.strip() if result.returncode == 0 else ""
    return "" if value == "<no value>" else value


def build_images(
    options: BuildOptions, root: Path = REPO_ROOT, on_event: Callable[[str], None] | None = None
) -> list[BuiltImage]:
    """Build every image (or `options.only`) in order; skip those whose inputs hash is already tagged."""
    engine = find_engine(options.engine)
    specs = image_specs()
    unknown = set(options.only) - {s.name for s in specs}
    if unknown:
        raise GreenfmError(f"unknown image(s) {', '.join(sorted(unknown))}; known: {', '.join(s.name for s in specs)}")
    if options.torch_wheel:
        wheel = Path(options.torch_wheel)
        if not wheel.is_file():
            raise GreenfmError(f"{wheel}: torch wheel not found")
        target = root / WHEELS_DIR / wheel.name
        if not target.is_file() or target.stat().st_size != wheel.stat().st_size:
            shutil.copyfile(wheel, target)
    args = options.build_args()
    built: list[BuiltImage] = []
    hashes: dict[str, str] = {}
    for spec in specs:
        spec_args = dict(args)
        parent = ""
        if spec.name == "spark":  # executors run the driver's image layers: same Python, greenfm and Spark
            spec_args = {"GREENFM_BASE_IMAGE": images.BASE_IMAGE}
            parent = hashes.get("base") or image_label(engine, images.BASE_IMAGE, INPUTS_LABEL)
        if options.only and spec.name not in options.only:
            continue
        digest = inputs_hash(spec, spec_args, root, parent)
        hashes[spec.name] = digest
        repository = spec.ref.rsplit(":", 1)[0]
        inputs_tag = f"{repository}:inputs-{digest[:16]}"
        started = time.monotonic()
        skipped = image_exists(engine, inputs_tag)
        if skipped:
            if on_event:
                on_event(f"{spec.name}: up to date ({inputs_tag})")
            _engine(engine, "tag", inputs_tag, spec.ref)
        else:
            if on_event:
                on_event(f"{spec.name}: building {spec.ref} from {spec.dockerfile}")
            command = ["build", "-f", spec.dockerfile, "-t", spec.ref, "-t", inputs_tag]
            command += ["--label", f"{INPUTS_LABEL}={digest}", "--label", f"{SOURCES_LABEL}={sources_digest(root)}"]
            command += ["--network", "host"] if options.network_host else []
            for key, value in spec_args.items():
                command += ["--build-arg", f"{key}={value}"]
            # The build's own log goes to stderr: a first build takes minutes and says what it is doing.
            result = subprocess.run([engine, *command, "."], cwd=root, stdout=sys.stderr, check=False)
            if result.returncode != 0:
                raise GreenfmError(f"{spec.dockerfile}: {engine} build failed with exit status {result.returncode}")
        built.append(
            BuiltImage(
                spec.name,
                spec.ref,
                inputs_tag,
                image_size(engine, spec.ref),
                time.monotonic() - started,
                skipped,
                spec_args,
            )
        )
    return built


def check_current(engine: str, refs: list[str], root: Path = REPO_ROOT) -> None:
    """Raise when an image is missing or holds other greenfm sources than this checkout's."""
    local = sources_digest(root)
    for ref in refs:
        if not image_exists(engine, ref):
            raise GreenfmError(f"image {ref} not found in {engine}; build it with `greenfm images build`")
        if image_label(engine, ref, SOURCES_LABEL) != local:
            raise GreenfmError(f"image {ref} holds other sources than {root}; rebuild with `greenfm images build`")


def sources_digest(root: Path = REPO_ROOT) -> str:
    """sha256 of the greenfm Python sources (path and content): what an image's code must equal to run this checkout."""
    digest = hashlib.sha256()
    for package in ("components", "pipelines"):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _default_torch_wheel() -> str:
    """A CPU torch wheel of the pinned version in $PIP_FIND_LINKS (a machine that cannot reach the torch index)."""
    import importlib.metadata

    version = importlib.metadata.version("torch").split("+")[0]
    for folder in filter(None, os.environ.get("PIP_FIND_LINKS", "").split()):
        wheels = sorted(Path(folder).glob(f"torch-{version}+cpu-cp311-*.whl"))
        if wheels:
            return str(wheels[0])
    return ""


def cli():
    """`greenfm images ...` (registered in pipelines.cli)."""
    import typer
    from rich.console import Console
    from rich.table import Table

    app = typer.Typer(no_args_is_help=True, help="Build the container images of images/.")
    console = Console(stderr=True)

    @app.command("build")
    def build(
        base_image: str = typer.Option(
            "", "--base-image", envvar="GREENFM_STANDIN_BASE", help="BASE_IMAGE build argument (a Python 3.11 image)."
        ),
        torch_wheel: str = typer.Option(
            "", "--torch-wheel", help="Local torch wheel to install (copied into images/wheels/); 'auto': find one."
        ),
        torch_index_url: str = typer.Option("", "--torch-index-url", help="TORCH_INDEX_URL build argument."),
        only: str = typer.Option("", "--only", help="Comma-separated: base, trainer, spark. Default: all."),
        engine: str = typer.Option("", "--engine", help="docker or podman (default: whichever is installed)."),
    ) -> None:
        """Build every image (skipped when one with the same inputs hash exists); print sizes and build times."""
        wheel = _default_torch_wheel() if torch_wheel == "auto" else torch_wheel
        options = BuildOptions(
            base_image=base_image,
            torch_wheel=wheel,
            torch_index_url=torch_index_url,
            only=tuple(filter(None, (s.strip() for s in only.split(",")))),
            engine=engine,
        )
        try:
            built = build_images(options, on_event=lambda message: console.print(message, highlight=False))
        except GreenfmError as error:
            console.print(f"[red]error:[/] {error}", soft_wrap=True, highlight=False)
            raise typer.Exit(2) from None
        table = Table(title="images")
        for column in ("image", "ref", "size", "build time", ""):
            table.add_column(column)
        for image in built:
            status = "up to date" if image.skipped else "built"
            table.add_row(image.name, image.ref, f"{image.size_bytes / 1e9:.2f} GB", f"{image.seconds:.0f} s", status)
        Console().print(table)

    return app
