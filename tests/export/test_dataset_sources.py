"""Registry-backed data sets: hash check, atomic cache, licences kept, clear failures (no network)."""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from museforge.export.dataset_sources import (
    DatasetIntegrityError,
    DatasetUnavailable,
    Registry,
    RegistrySource,
    default_cache,
    download_with_client,
    fetch,
)

LICENCE = "dots-1.0.dist-info/licenses/LICENSE.txt"


def _wheel(path: Path) -> str:
    """A small wheel (a zip) holding a data file and a licence; returns its sha256."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dots/data/points.csv", "0,1\n2,3\n")
        zf.writestr(LICENCE, "BSD licence text\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source(sha256: str, registry: Registry = "pypi",
            licence_files: tuple[str, ...] = (LICENCE,)) -> RegistrySource:
    return RegistrySource(registry, "dots", "1.0", sha256, "CC-BY-SA-3.0", "Dots by A. Author", licence_files)


class Handing:
    """A downloader that hands over a local archive, counting its calls."""

    def __init__(self, archive: Path) -> None:
        self.archive, self.calls = archive, 0

    def __call__(self, source: RegistrySource, directory: Path) -> Path:
        self.calls += 1
        return Path(shutil.copy(self.archive, directory))


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_verified_wheel_is_unpacked_with_its_licence_and_provenance(tmp_path: Path) -> None:
    sha = _wheel(tmp_path / "dots-1.0-py3-none-any.whl")
    got = fetch(_source(sha), tmp_path / "cache", Handing(tmp_path / "dots-1.0-py3-none-any.whl"))
    assert got.directory == tmp_path / "cache" / "pypi" / "dots-1.0" / "content"
    assert (got.directory / "dots/data/points.csv").read_text() == "0,1\n2,3\n"
    [kept] = got.licences
    assert kept.parent != got.directory and kept.read_text() == "BSD licence text\n"
    assert got.provenance() == {"registry": "pypi", "package": "dots", "version": "1.0", "sha256": sha,
                                "licence": "CC-BY-SA-3.0", "attribution": "Dots by A. Author",
                                "commercial_use": True}
    recorded = got.source.training_data("dots")
    assert (recorded.registry, recorded.package, recorded.version, recorded.sha256, recorded.licence) == (
        "pypi", "dots", "1.0", sha, "CC-BY-SA-3.0")
    # Only the unpacked data, the licences and the marker stay: no archive, no staging folder.
    assert sorted(p.name for p in (tmp_path / "cache" / "pypi").iterdir()) == ["dots-1.0"]
    assert sorted(p.name for p in (tmp_path / "cache" / "pypi" / "dots-1.0").iterdir()) == [
        "content", "licences", "sha256"]


def test_a_hash_mismatch_is_refused_naming_both_digests_and_nothing_is_cached(tmp_path: Path) -> None:
    actual = _wheel(tmp_path / "dots.whl")
    pinned = "0" * 64
    with pytest.raises(DatasetIntegrityError) as caught:
        fetch(_source(pinned), tmp_path / "cache", Handing(tmp_path / "dots.whl"))
    assert actual in str(caught.value) and pinned in str(caught.value)
    assert _files(tmp_path / "cache") == []
    assert not (tmp_path / "cache" / "pypi" / "dots-1.0").exists()


def test_the_cache_is_reused_and_refreshed_when_the_pin_changes(tmp_path: Path) -> None:
    first = _wheel(tmp_path / "a.whl")
    handing = Handing(tmp_path / "a.whl")
    one = fetch(_source(first), tmp_path / "cache", handing)
    two = fetch(_source(first), tmp_path / "cache", handing)
    assert handing.calls == 1 and one == two
    # A new pin (same name and version, another archive) does not trust the old marker.
    with zipfile.ZipFile(tmp_path / "b.whl", "w") as zf:
        zf.writestr("dots/data/points.csv", "9,9\n")
        zf.writestr(LICENCE, "BSD licence text\n")
    second = hashlib.sha256((tmp_path / "b.whl").read_bytes()).hexdigest()
    three = fetch(_source(second), tmp_path / "cache", Handing(tmp_path / "b.whl"))
    assert (three.directory / "dots/data/points.csv").read_text() == "9,9\n"


def test_an_npm_tarball_is_unpacked_and_a_missing_licence_is_refused(tmp_path: Path) -> None:
    tgz = tmp_path / "dots-1.0.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        for name, text in (("package/LICENSE", b"Apache text\n"), ("package/img/a.png", b"png")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tf.addfile(info, io.BytesIO(text))
    sha = hashlib.sha256(tgz.read_bytes()).hexdigest()
    got = fetch(_source(sha, "npm", ("package/LICENSE",)), tmp_path / "cache", Handing(tgz))
    assert (got.directory / "package/img/a.png").read_bytes() == b"png"
    assert got.licences[0].read_text() == "Apache text\n"
    with pytest.raises(DatasetIntegrityError, match="NOTICE"):
        fetch(_source(sha, "npm", ("package/NOTICE",)), tmp_path / "other", Handing(tgz))
    assert _files(tmp_path / "other") == []


class FailingClient(RegistrySource):
    """A source whose client fails as pip does offline (the real command is not run in tests)."""

    def command(self) -> list[str]:
        script = ("import sys; sys.stderr.write('WARNING: Retrying after connection broken\\n"
                  "ERROR: No matching distribution found for dots==1.0\\n'); sys.exit(1)")
        return [sys.executable, "-c", script]


def test_a_failing_client_names_the_command_its_error_and_the_quick_fixture(tmp_path: Path) -> None:
    source = FailingClient("pypi", "dots", "1.0", "0" * 64, "MIT", "Dots")
    with pytest.raises(DatasetUnavailable) as caught:
        fetch(source, tmp_path / "cache", download_with_client)
    message = str(caught.value)
    assert "`python -c" in message and "failed (exit 1)" in message
    # The last stderr line, not the earlier ones.
    assert message.split("failed (exit 1): ")[1].startswith("ERROR: No matching distribution found")
    assert "--quick" in message and "committed fixture" in message
    assert _files(tmp_path / "cache") == []


def test_the_clients_are_the_ordinary_ones_and_the_cache_follows_xdg(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    sha = "a" * 64
    assert _source(sha).command()[1:] == ["-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                                          "dots==1.0", "-d", "."]
    assert _source(sha, "npm").command() == ["npm", "pack", "dots@1.0"]
    assert _source(sha, "debian").command() == ["apt-get", "download", "dots=1.0"]
    assert RegistrySource("npm", "@iconify-json/game-icons", "1.2", sha, "CC-BY-3.0", "x").key == \
        "iconify-json_game-icons-1.2"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache() == tmp_path / "museforge" / "datasets"
    for bad in ({"sha256": "ABC"}, {"registry": "conda"}, {"licence_files": ("../etc/passwd",)}):
        with pytest.raises(ValueError):
            RegistrySource(**{"registry": "pypi", "package": "dots", "version": "1", "sha256": sha,
                              "licence": "MIT", "attribution": "x", **bad})
