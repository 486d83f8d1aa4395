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

from fanwatch.core.deployment.recipe import Artifact, Permission, Unarchive
from fanwatch.core.layout import CoreLayout
from fanwatch.errors import FanwatchError

__all__ = ["ArtifactError", "file_mode", "install_artifacts"]

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


def _unzip(archive: Path, into: Path) -> None:
    target = into.resolve()
    try:
        with zipfile.ZipFile(archive) as zipped:
            for entry in zipped.infolist():
                destination = (target / entry.filename).resolve()
                if destination != target and target not in destination.parents:
                    raise ArtifactError(f"{archive.name}: entry {entry.filename!r} would land outside {into}")
                if stat.S_ISLNK(entry.external_attr >> 16):
                    raise ArtifactError(f"{archive.name}: entry {entry.filename!r} is a symbolic link")
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


def install_artifacts(
    component: str, version: str, artifacts: tuple[Artifact, ...], source: Path | None, layout: CoreLayout
) -> None:
    """Copy, verify and unpack a component version's artifacts from ``source`` into the core."""
    if not artifacts:
        return
    if source is None or not source.is_dir():
        raise ArtifactError(f"{component} {version}: no artifact folder (expected {source})")
    destination = layout.artifact_path(component, version)
    destination.mkdir(parents=True, exist_ok=True)
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
        copied = destination / artifact.file_name
        if copied.resolve() != origin.resolve():  # the core's own store is a source too (a restart)
            if copied.exists():
                copied.chmod(stat.S_IRUSR | stat.S_IWUSR)
            shutil.copyfile(origin, copied)
        mode = file_mode(artifact)
        copied.chmod(mode)
        if artifact.unarchive == Unarchive.ZIP:
            stem = (
                artifact.file_name[:-4] if artifact.file_name.lower().endswith(".zip") else artifact.file_name
            )
            unpacked = layout.unarchived_path(component, version) / stem
            _unzip(copied, unpacked)
            _set_modes(unpacked, mode)
