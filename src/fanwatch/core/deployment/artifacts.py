"""Putting a component version's artifacts where the nucleus would: copied, checked, unpacked, with
the permissions the recipe asks for.

The nucleus downloads each artifact into ``packages/artifacts/<component>/<version>/``, verifies its
``Digest`` when the recipe has one, unpacks ``Unarchive: ZIP`` into
``packages/artifacts-unarchived/<component>/<version>/<zip name without .zip>/`` (refusing entries that
would land outside it), and sets ``Permission`` on the files: the owner can always read; ``OWNER`` and
``ALL`` open reading or executing to the group and everyone, as ``Permission.toFileSystemPermission``
maps them. Here "download" is a copy from the folder ``gdk component build`` wrote.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import stat
import zipfile
from pathlib import Path
from typing import Final

from fanwatch.core.deployment.recipe import Artifact, Permission, Unarchive
from fanwatch.core.layout import CoreLayout
from fanwatch.errors import FanwatchError

__all__ = [
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIP_ENTRIES",
    "ArtifactError",
    "check_artifacts",
    "file_mode",
    "install_artifacts",
]

#: Most a ZIP artifact may expand to, and its most entries: a 2 MB archive once expanded to 2 GB
#: while the core's IPC stood still. Python's ZipFile never writes more than an entry's declared size.
MAX_UNZIPPED_BYTES: Final = 512 * 1024 * 1024
MAX_ZIP_ENTRIES: Final = 10_000

_HASHES = {"SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512", "SHA-1": "sha1", "MD5": "md5"}


class ArtifactError(FanwatchError):
    """An artifact is missing, corrupt or unsafe; the deployment that needs it fails."""


def file_mode(artifact: Artifact) -> int:
    """The mode bits an artifact file gets (owner write too, so the core can replace it later)."""
    read, execute = artifact.read, artifact.execute
    mode = stat.S_IRUSR | stat.S_IWUSR
    if execute != Permission.NONE:
        mode |= stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP
    if read != Permission.NONE:
        mode |= stat.S_IRGRP
    if Permission.ALL in (read, execute):
        mode |= stat.S_IROTH
    if execute == Permission.ALL:
        mode |= stat.S_IXOTH
    return mode


def _digest(path: Path, algorithm: str) -> str:
    name = _HASHES.get(algorithm)
    if name is None:
        raise ArtifactError(f"{path.name}: unsupported digest algorithm {algorithm!r}")
    hasher = hashlib.new(name)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return base64.b64encode(hasher.digest()).decode()


def _check_zip(zipped: zipfile.ZipFile, name: str, into: Path) -> None:
    """Refuse an archive before a byte of it is written: too many entries, too large expanded, an
    entry that would land outside ``into``, or a symbolic link. Each entry's output is bounded by
    its declared size (Python's ZipFile never writes more), so the declared total is a real bound."""
    entries = zipped.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise ArtifactError(f"{name}: {len(entries):,} entries; at most {MAX_ZIP_ENTRIES:,}")
    expanded = sum(entry.file_size for entry in entries)
    if expanded > MAX_UNZIPPED_BYTES:
        raise ArtifactError(f"{name}: expands to {expanded:,} bytes; at most {MAX_UNZIPPED_BYTES:,}")
    target = into.resolve()
    for entry in entries:
        destination = (target / entry.filename).resolve()
        if destination != target and target not in destination.parents:
            raise ArtifactError(f"{name}: entry {entry.filename!r} would land outside {into}")
        if stat.S_ISLNK(entry.external_attr >> 16):
            raise ArtifactError(f"{name}: entry {entry.filename!r} is a symbolic link")


def _unzip(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            _check_zip(zipped, archive.name, into)
            shutil.rmtree(into, ignore_errors=True)
            into.mkdir(parents=True)
            zipped.extractall(into)
    except zipfile.BadZipFile as exc:
        shutil.rmtree(into, ignore_errors=True)
        raise ArtifactError(f"{archive.name}: not a valid ZIP file ({exc})") from None


def _set_modes(path: Path, mode: int) -> None:
    if path.is_dir():
        path.chmod(0o755)
        for child in path.iterdir():
            _set_modes(child, mode)
    else:
        path.chmod(mode)


def _unpacked(artifact: Artifact, component: str, version: str, layout: CoreLayout) -> Path:
    """Where a ZIP artifact is unpacked: its name without ``.zip``, as the nucleus does."""
    name = artifact.file_name
    stem = name[:-4] if name.lower().endswith(".zip") else name
    return layout.unarchived_path(component, version) / stem


def check_artifacts(
    component: str, version: str, artifacts: tuple[Artifact, ...], source: Path | None, layout: CoreLayout
) -> None:
    """Everything :func:`install_artifacts` would refuse, found without changing anything: present,
    matching its Digest, a ZIP within bounds. A deployment checks every component this way before it
    stops any running one."""
    if not artifacts:
        return
    if source is None or not source.is_dir():
        raise ArtifactError(f"{component} {version}: no artifact folder (expected {source})")
    for artifact in artifacts:
        origin = source / artifact.file_name
        if not origin.is_file():
            raise ArtifactError(
                f"{component} {version}: artifact {artifact.file_name!r} ({artifact.uri}) is not in {source}"
            )
        if artifact.digest is not None and _digest(origin, artifact.algorithm) != artifact.digest:
            raise ArtifactError(
                f"{component} {version}: {artifact.file_name} does not match its recipe Digest"
            )
        if artifact.unarchive == Unarchive.ZIP:
            try:
                with zipfile.ZipFile(origin) as zipped:
                    _check_zip(zipped, artifact.file_name, _unpacked(artifact, component, version, layout))
            except zipfile.BadZipFile as exc:
                raise ArtifactError(f"{artifact.file_name}: not a valid ZIP file ({exc})") from None


def install_artifacts(
    component: str, version: str, artifacts: tuple[Artifact, ...], source: Path | None, layout: CoreLayout
) -> None:
    """Copy, verify and unpack a component version's artifacts from ``source`` into the core."""
    check_artifacts(component, version, artifacts, source, layout)
    if not artifacts or source is None:
        return
    destination = layout.artifact_path(component, version)
    destination.mkdir(parents=True, exist_ok=True)
    for artifact in artifacts:
        origin = source / artifact.file_name
        copied = destination / artifact.file_name
        if copied.resolve() != origin.resolve():  # the core's own store is a source too (a restart)
            if copied.exists():
                copied.chmod(stat.S_IRUSR | stat.S_IWUSR)
            shutil.copyfile(origin, copied)
        mode = file_mode(artifact)
        copied.chmod(mode)
        if artifact.unarchive == Unarchive.ZIP:
            unpacked = _unpacked(artifact, component, version, layout)
            _unzip(copied, unpacked)
            _set_modes(unpacked, mode)
