"""Container images greenfm runs in on a cluster (built from images/), all named by one setting.

`GREENFM_IMAGE_TEMPLATE` (default `ghcr.io/greenfm/greenfm-{name}:<release>`) names every image: the base
image the light steps run in, the trainer image (pretrain and adapt steps, PyTorchJob / TrainJob replicas) and
the Spark image (executors, SparkApplication drivers). `greenfm compile` bakes the template into the pipeline
as the steps' images and as an environment variable of every step, so the pods a step creates at run time run
the same release as the step itself. Everything greenfm needs is installed in the images: nothing is
pip-installed at run time. A tag (or digest) is required: an untagged image means `:latest`, which differs from
node to node and from one pull to the next.
"""

from __future__ import annotations

import os
import re

from components.common.errors import GreenfmError

VERSION = "0.1.0"
IMAGE_TEMPLATE_ENV = "GREENFM_IMAGE_TEMPLATE"
DEFAULT_TEMPLATE = f"ghcr.io/greenfm/greenfm-{{name}}:{VERSION}"
NAMES = ("base", "trainer", "spark")
IMAGE_UID = 10001  # the base and trainer images' user (images/*.Dockerfile)
SPARK_UID = 10001  # images/spark.Dockerfile's user, the driver's: both write the same output folder


def pinned(image: str) -> str:
    """`image` if it carries a tag other than latest, or a digest; else a one-line error."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if digest:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise GreenfmError(f"image {image!r}: digest must be sha256:<64 hex digits>")
    elif not tag or tag == "latest":
        raise GreenfmError(f"image {image!r}: needs a release tag or a digest (untagged or :latest varies by node)")
    return image


def template(env: dict | None = None) -> str:
    """The image template in effect: $GREENFM_IMAGE_TEMPLATE, else this release's images."""
    value = (os.environ if env is None else env).get(IMAGE_TEMPLATE_ENV) or DEFAULT_TEMPLATE
    if "{name}" not in value:
        raise GreenfmError(f"{IMAGE_TEMPLATE_ENV}={value!r}: must contain {{name}} (one of {', '.join(NAMES)})")
    for name in NAMES:
        pinned(value.format(name=name))
    return value


def image(name: str, env: dict | None = None) -> str:
    """The image called `name` (base, trainer or spark) under the template in effect."""
    if name not in NAMES:
        raise GreenfmError(f"image {name!r}: expected one of {', '.join(NAMES)}")
    return template(env).format(name=name)


BASE_IMAGE = image("base")
TRAINER_IMAGE = image("trainer")
SPARK_IMAGE = image("spark")
