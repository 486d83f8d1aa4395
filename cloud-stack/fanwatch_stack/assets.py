"""Lambda assets built without Docker: the handler code and a dependency layer from PyPI wheels.

``pip install --platform manylinux_2_28_aarch64 --only-binary=:all: --python-version 3.12`` fetches
exactly the wheels Lambda's python3.12 runtime on Graviton (Amazon Linux 2023, glibc 2.34) loads.
The layer pins the versions installed where the stack is synthesized, so the functions run the numpy
and Powertools the tests ran. Builds are cached under ``cloud-stack/build/``, keyed by what goes in,
so tests and ``make synth`` fetch nothing after the first time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

import fanwatch

__all__ = ["LAMBDA_PLATFORM", "LAYER_PACKAGES", "code_dir", "layer_dir", "layer_requirements"]

BUILD: Final = Path(__file__).resolve().parent.parent / "build"
LAMBDA_PLATFORM: Final = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
LAMBDA_PYTHON: Final = "3.12"
#: What the handlers import besides the standard library and boto3 (which the runtime provides).
LAYER_PACKAGES: Final = ("numpy", "aws-lambda-powertools")
#: The parts of the fanwatch package the handlers import.
CODE_PARTS: Final = (
    "__init__.py",
    "py.typed",
    "environment.py",
    "errors.py",
    "limits.py",
    "telemetry.py",
    "cloud",
    "rcf",
    "rcf.py",
)


def layer_requirements() -> list[str]:
    """The layer's packages pinned to the versions installed here."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in LAYER_PACKAGES]


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def layer_dir(requirements: list[str] | None = None, *, build: Path = BUILD) -> Path:
    """A folder holding ``python/`` with the layer's packages for Lambda's platform (cached)."""
    requirements = requirements if requirements is not None else layer_requirements()
    target = build / f"layer-{_key(requirements, LAMBDA_PLATFORM, LAMBDA_PYTHON)}"
    if (target / ".complete").exists():
        return target
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    platforms = [arg for p in LAMBDA_PLATFORM for arg in ("--platform", p)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            *platforms,
            "--implementation",
            "cp",
            "--python-version",
            LAMBDA_PYTHON,
            "--only-binary=:all:",
            "--target",
            str(staging / "python"),
            *requirements,
        ],
        check=True,
    )
    (staging / ".complete").write_text("\n".join(requirements) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def code_dir(*, build: Path = BUILD) -> Path:
    """A folder holding the ``fanwatch`` modules the handlers import (cached by content)."""
    package = Path(fanwatch.__file__).parent
    files = sorted(
        path
        for part in CODE_PARTS
        if (package / part).exists()
        for path in ([package / part] if (package / part).is_file() else (package / part).rglob("*.py"))
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    target = build / f"code-{digest.hexdigest()[:16]}"
    if target.exists():
        return target
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for path in files:
        out = staging / "fanwatch" / path.relative_to(package)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
    staging.rename(target)
    return target
