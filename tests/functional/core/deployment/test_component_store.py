"""The component store (gdk build output) and artifact installation: copy, digest, unzip, permissions."""

from __future__ import annotations

import base64
import hashlib
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from fanwatch.core.deployment import artifacts
from fanwatch.core.deployment.artifacts import ArtifactError, file_mode, install_artifacts
from fanwatch.core.deployment.recipe import Artifact, Permission, RecipeError, Unarchive
from fanwatch.core.deployment.store import ComponentStore
from fanwatch.core.deployment.versions import Requirement
from fanwatch.core.layout import CoreLayout

RECIPE = """\
RecipeFormatVersion: '2020-01-25'
ComponentName: com.example.App
ComponentVersion: {version}
Manifests:
  - Platform: {{os: linux}}
    Lifecycle:
      Run: python3 {{artifacts:decompressedPath}}/app/main.py
    Artifacts:
      - URI: s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/app.zip
        Unarchive: ZIP
"""


def build(folder: Path, version: str, code: str = "print('hi')") -> Path:
    """What ``gdk component build`` leaves: greengrass-build/{recipes,artifacts}."""
    (folder / "recipes").mkdir(parents=True, exist_ok=True)
    (folder / "recipes" / f"app-{version}.yaml").write_text(RECIPE.format(version=version))
    artifacts = folder / "artifacts" / "com.example.App" / version
    artifacts.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(artifacts / "app.zip", "w") as zipped:
        zipped.writestr("app/main.py", code)
        zipped.writestr("app/pkg/__init__.py", "")
    return folder


def test_store_indexes_versions_and_resolves_requirements(tmp_path: Path) -> None:
    store = ComponentStore()
    build(tmp_path / "b", "1.0.0")
    build(tmp_path / "b", "1.4.2")
    build(tmp_path / "b", "2.0.0")
    store.add_build(tmp_path / "b")
    assert [c.version for c in store] == ["1.0.0", "1.4.2", "2.0.0"]
    best = store.best("com.example.App", Requirement("^1.0.0"))
    assert best is not None and best.version == "1.4.2"
    assert store.best("com.example.App", Requirement(">=3")) is None
    with pytest.raises(LookupError, match=r"1\.9\.9 is not in the component store \(versions here: 1\.0\.0"):
        store.get("com.example.App", "1.9.9")
    with pytest.raises(LookupError, match="no version of it is in the store"):
        store.get("com.example.Other", "1.0.0")


def test_a_rebuild_under_the_same_version_changes_the_fingerprint(tmp_path: Path) -> None:
    store = ComponentStore()
    store.add_build(build(tmp_path / "b", "1.0.0"))
    before = store.get("com.example.App", "1.0.0").fingerprint
    build(tmp_path / "b", "1.0.0", code="print('changed')")
    store.refresh()
    assert store.get("com.example.App", "1.0.0").fingerprint != before


def test_next_patch_builds_get_versions_as_publish_gives_them(tmp_path: Path) -> None:
    store = ComponentStore()
    build(tmp_path / "b", "NEXT_PATCH")
    (first,) = store.add_build(tmp_path / "b")
    assert first.version == "1.0.0"
    assert first.artifacts == tmp_path / "b" / "artifacts" / "com.example.App" / "NEXT_PATCH"
    assert first.document["ComponentVersion"] == "1.0.0"
    (same,) = store.refresh()
    assert same.version == "1.0.0"  # unchanged content keeps its version
    build(tmp_path / "b", "NEXT_PATCH", code="print('v2')")
    (changed,) = store.refresh()
    assert changed.version == "1.0.1"
    # 1.0.0's artifacts were overwritten by this build: deploying 1.0.0 would install 1.0.1's files
    assert [c.version for c in store] == ["1.0.1"]
    with pytest.raises(LookupError, match=r"1\.0\.0 is not in the component store"):
        store.get("com.example.App", "1.0.0")


def test_a_superseded_next_patch_version_stays_deployable_from_the_cores_copy(tmp_path: Path) -> None:
    store = ComponentStore()
    store.add_build(build(tmp_path / "b", "NEXT_PATCH", code="print('v1')"))
    core = build(tmp_path / "core", "1.0.0", code="print('v1')")  # the core installed 1.0.0
    (installed,) = store.add_installed(core / "recipes", core / "artifacts")
    build(tmp_path / "b", "NEXT_PATCH", code="print('v2')")
    (changed,) = store.refresh()
    assert changed.version == "1.0.1"
    assert store.get("com.example.App", "1.0.0") == installed  # its own files, not the new build's


def test_a_cores_installed_copy_is_below_every_build_and_counts_for_next_patch(tmp_path: Path) -> None:
    store = ComponentStore()
    (numbered,) = store.add_build(build(tmp_path / "n", "NEXT_PATCH", code="print('next')"))
    assert numbered.version == "1.0.0"  # nothing else known yet
    store.add_build(build(tmp_path / "b", "1.2.0", code="print('rebuilt')"))
    core = build(tmp_path / "core", "1.0.0", code="print('installed')")
    build(core, "1.2.0", code="print('installed before the rebuild')")
    installed = store.add_installed(core / "recipes", core / "artifacts")
    assert [c.version for c in installed] == ["1.0.0", "1.2.0"]
    assert store.get_installed("com.example.App", "1.2.0") == installed[1]
    rebuilt = store.get("com.example.App", "1.2.0")
    assert rebuilt.artifacts == tmp_path / "b" / "artifacts" / "com.example.App" / "1.2.0"  # the build wins
    assert store.get("com.example.App", "1.0.0") == installed[0]  # and the installed copy fills in
    assert [c.version for c in store] == ["1.0.0", "1.2.0", "1.2.1"]  # NEXT_PATCH moved past 1.0.0 and 1.2.0
    assert store.latest("com.example.App") == store.get("com.example.App", "1.2.1")
    with pytest.raises(LookupError, match=r"1\.2\.1 is not in this core's installed packages"):
        store.get_installed("com.example.App", "1.2.1")


def test_broken_recipes_and_missing_folders_are_reported(tmp_path: Path) -> None:
    store = ComponentStore()
    with pytest.raises(FileNotFoundError):
        store.add(tmp_path / "nowhere")
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "bad.yaml").write_text("ComponentName: x\n")
    with pytest.raises(RecipeError):
        store.add(tmp_path / "recipes")


def test_install_copies_unzips_and_sets_permissions(tmp_path: Path) -> None:
    store = ComponentStore()
    store.add_build(build(tmp_path / "b", "1.0.0"))
    stored = store.get("com.example.App", "1.0.0")
    layout = CoreLayout(tmp_path / "core")
    layout.create()
    manifest = stored.recipe.manifest_for({"os": "linux", "architecture": "amd64"})
    install_artifacts(stored.name, stored.version, manifest.artifacts, stored.artifacts, layout)
    copied = layout.artifact_path("com.example.App", "1.0.0") / "app.zip"
    main = layout.unarchived_path("com.example.App", "1.0.0") / "app" / "app" / "main.py"
    assert copied.is_file() and main.read_text() == "print('hi')"
    assert stat.S_IMODE(main.stat().st_mode) == 0o640  # Read OWNER (the default): owner and group
    assert stat.S_IMODE(main.parent.stat().st_mode) == 0o755
    # installing again (a redeploy) replaces files it had made read-only
    install_artifacts(stored.name, stored.version, manifest.artifacts, stored.artifacts, layout)
    # and the core's own copy can be its source (a restarted core reinstalling from itself)
    own = layout.artifact_path("com.example.App", "1.0.0")
    install_artifacts(stored.name, stored.version, manifest.artifacts, own, layout)
    assert main.read_text() == "print('hi')"


@pytest.mark.parametrize(
    ("read", "execute", "mode"),
    [
        ("NONE", "NONE", 0o600),
        ("OWNER", "NONE", 0o640),
        ("ALL", "NONE", 0o644),
        ("OWNER", "OWNER", 0o750),
        ("ALL", "ALL", 0o755),
    ],
)
def test_permission_modes(read: str, execute: str, mode: int) -> None:
    assert file_mode(Artifact("s3://b/x", read=Permission(read), execute=Permission(execute))) == mode


def test_missing_artifact_is_an_error(tmp_path: Path) -> None:
    layout = CoreLayout(tmp_path / "core")
    with pytest.raises(ArtifactError, match=r"artifact 'gone\.py' \(s3://b/gone\.py\) is not in"):
        install_artifacts("c", "1.0.0", (Artifact("s3://b/gone.py"),), tmp_path, layout)
    with pytest.raises(ArtifactError, match="no artifact folder"):
        install_artifacts("c", "1.0.0", (Artifact("s3://b/gone.py"),), None, layout)


def test_digest_is_verified(tmp_path: Path) -> None:
    layout = CoreLayout(tmp_path / "core")
    (tmp_path / "tool.py").write_text("print(1)")
    good = base64.b64encode(hashlib.sha256(b"print(1)").digest()).decode()
    install_artifacts("c", "1.0.0", (Artifact("s3://b/tool.py", digest=good),), tmp_path, layout)
    with pytest.raises(ArtifactError, match="does not match its recipe Digest"):
        install_artifacts("c", "1.0.0", (Artifact("s3://b/tool.py", digest="AAAA"),), tmp_path, layout)


def test_zip_slip_and_corrupt_zips_are_refused(tmp_path: Path) -> None:
    layout = CoreLayout(tmp_path / "core")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zipped:
        zipped.writestr("../../escaped.txt", "gotcha")
    with pytest.raises(ArtifactError, match="would land outside"):
        install_artifacts(
            "c", "1.0.0", (Artifact("s3://b/evil.zip", unarchive=Unarchive.ZIP),), tmp_path, layout
        )
    assert not (tmp_path / "core" / "escaped.txt").exists()
    (tmp_path / "junk.zip").write_bytes(b"not a zip at all")
    with pytest.raises(ArtifactError, match="not a valid ZIP file"):
        install_artifacts(
            "c", "1.0.0", (Artifact("s3://b/junk.zip", unarchive=Unarchive.ZIP),), tmp_path, layout
        )


def test_a_recipe_version_that_is_a_path_is_refused_before_any_file_there_is_read(tmp_path: Path) -> None:
    """Issue 14: ComponentVersion "/..." made the core hash a folder outside the build (3 GB) first."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"not yours")
    folder = build(tmp_path / "b", "1.0.0")
    (folder / "recipes" / "app-1.0.0.yaml").write_text(RECIPE.format(version=str(outside)))
    opened: list[str] = []

    def watch(event: str, args: tuple[object, ...]) -> None:
        if event == "open" and str(args[0]).startswith(str(outside)):
            opened.append(str(args[0]))

    sys.addaudithook(watch)
    with pytest.raises(RecipeError, match="is not a semantic version"):
        ComponentStore().add_build(folder)
    assert opened == []


@pytest.mark.parametrize(("entries", "size"), [(101, 10), (1, 2_000_000)], ids=["entries", "expanded size"])
def test_a_zip_that_expands_past_the_caps_is_refused_before_unpacking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: int, size: int
) -> None:
    """Issue 14: a 2 MB ZIP expanded to 2 GB while the core's IPC stood still (caps made small here)."""
    monkeypatch.setattr(artifacts, "MAX_ZIP_ENTRIES", 100, raising=False)
    monkeypatch.setattr(artifacts, "MAX_UNZIPPED_BYTES", 1_000_000, raising=False)
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zipped:
        for i in range(entries):
            zipped.writestr(f"f{i}", b"\0" * size)
    assert (tmp_path / "bomb.zip").stat().st_size < 20_000
    layout = CoreLayout(tmp_path / "core")
    with pytest.raises(
        ArtifactError, match=r"entries; at most 100|expands to 2,000,000 bytes; at most 1,000,000"
    ):
        install_artifacts(
            "c", "1.0.0", (Artifact("s3://b/bomb.zip", unarchive=Unarchive.ZIP),), tmp_path, layout
        )
    assert not layout.unarchived_path("c", "1.0.0").exists()
