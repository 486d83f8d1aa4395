"""constraints.txt, the versions every install uses, covers and satisfies what pyproject.toml asks for."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exact versions only: {line!r}"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {}).values()
    listed = [*project.get("dependencies", []), *(r for extra in extras for r in extra)]
    return [r for r in map(Requirement, listed) if canonicalize_name(r.name) != "fanwatch"]


def test_every_dependency_is_pinned_at_a_version_pyproject_allows() -> None:
    pins = _pins()
    unpinned, outside = [], []
    for requirement in _requirements():
        if requirement.marker is not None and not requirement.marker.evaluate({"platform_machine": "x86_64"}):
            continue  # a Raspberry Pi's own (RPi.GPIO): resolved on the device
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            unpinned.append(requirement.name)
        elif not requirement.specifier.contains(pin, prereleases=True):
            outside.append(f"{requirement.name} {pin} (pyproject: {requirement.specifier})")
    assert not unpinned, f"not in constraints.txt (run make lock): {', '.join(unpinned)}"
    assert not outside, f"pinned outside pyproject's range (run make lock): {', '.join(outside)}"


def test_every_install_of_the_makefile_uses_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "-m pip install" in line and "-e '." in line]
    assert installs and all("-c constraints.txt" in line or "LOCK_VENV" in line for line in installs)
