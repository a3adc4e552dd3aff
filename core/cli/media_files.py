"""Where ``generate`` and ``apply`` put their files: an output file or folder, the names of
several results, folders of inputs, and nothing left behind by a command that failed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..engine.effect import IMAGE_INPUT_FORMATS

# What an -o name ending in one of these means: a file of that format, not a folder. The media
# museforge only reads (mp3, mkv, webm) are here too, so that generate refuses them as outputs
# rather than making a folder of that name. A .usd may hold either USD encoding: usda is written.
SUFFIX_FORMATS = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".exr": "exr",
    ".wav": "wav", ".flac": "flac", ".ogg": "ogg", ".mid": "mid", ".midi": "mid", ".mp3": "mp3",
    ".glb": "glb", ".gltf": "gltf", ".obj": "obj", ".ply": "ply", ".stl": "stl", ".usda": "usda",
    ".usdz": "usdz", ".usd": "usda", ".json": "json", ".edl": "edl", ".otio": "otio", ".fcpxml": "fcpxml",
    ".mp4": "mp4", ".mov": "mov", ".mkv": "mkv", ".webm": "webm", ".m4v": "m4v",
}
# Files no generator here writes (other pictures, sound, video, 3D scenes, documents): -o seven.tif
# is still a file, which generate refuses naming the formats it writes, never a folder seven.tif/.
SUFFIX_FORMATS.update({".tif": "tiff", ".tiff": "tiff"})
SUFFIX_FORMATS.update((f".{name}", name) for name in (
    "gif", "bmp", "tga", "dds", "hdr", "psd", "heic", "heif", "avif", "jxl", "jp2", "ico", "svg", "dpx",
    "ppm", "pgm", "pbm", "ktx", "ktx2", "aif", "aiff", "m4a", "aac", "opus", "wma", "caf", "avi", "mxf",
    "wmv", "flv", "mpg", "mpeg", "m2ts", "mts", "3gp", "fbx", "usdc", "dae", "3ds", "blend", "abc", "x3d",
    "3mf", "vrm", "c4d", "txt", "csv", "xml", "html", "pdf", "zip", "tar", "gz", "yaml", "yml", "toml"))
FORMAT_ALIASES = {"jpg": "jpeg", "midi": "mid", "usd": "usda", "tif": "tiff"}
# Formats whose files carry another format's extension: a 16-bit PNG is a .png.
WRITTEN_AS = {"png16": "png"}
# What a folder given to apply is read for: the extensions of the pictures effects take.
PICTURE_SUFFIXES = tuple(s for s, f in SUFFIX_FORMATS.items() if f in IMAGE_INPUT_FORMATS)


def format_name(text: str) -> str:
    """A --format as the server names it (jpg is jpeg)."""
    lowered = text.strip().lower()
    return FORMAT_ALIASES.get(lowered, lowered)


def names_a_file(output: Path, any_extension: bool = False) -> bool:
    """-o out.png is a file; -o renders or an existing folder a folder. An extension museforge
    does not know (renders.v2) is a folder for generate, and a file for apply, whose server
    names the format it cannot write."""
    known = output.suffix.lower() in SUFFIX_FORMATS or (any_extension and bool(output.suffix))
    return known and not output.is_dir()


def extension_clash(output: Path, fmt: str) -> str:
    """Why -o's extension and --format disagree (-o prop.obj -f glb would write GLB into prop.obj);
    '' when they agree, when either is not given, or -o is a folder or has an extension museforge
    does not know."""
    named = SUFFIX_FORMATS.get(output.suffix.lower())
    fmt = format_name(fmt)
    if not fmt or named is None or output.is_dir() or WRITTEN_AS.get(fmt, fmt) == named:
        return ""
    extension = next((s for s, f in SUFFIX_FORMATS.items() if f == WRITTEN_AS.get(fmt, fmt)), "")
    instead = f" (-o {output.with_suffix(extension)})" if extension else ""
    return (f"-o {output} and --format {fmt} disagree: the file would be named {output.suffix} but hold "
            f"{fmt}; give one of them, or make them agree{instead}")


def file_result(output: Path, part: str, index: int, several: bool) -> Path:
    """Where a result goes when -o names a file: that file, or numbered beside it when there are
    several (out-0000.png ...); a named part (a stem) keeps its name (song-bass.wav)."""
    numbered = f"-{index:04d}" if several else ""
    part = f"-{part}" if part else ""
    if not numbered and not part:
        return output
    return output.with_name(f"{output.stem}{numbered}{part}{output.suffix}")


def picture_files(paths: Sequence[Path]) -> list[Path]:
    """The inputs, with each folder given as the pictures in it (sorted); OSError naming a folder
    that has none."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)
        if not inside:
            kinds = ", ".join(PICTURE_SUFFIXES)
            raise FileNotFoundError(2, f"no pictures ({kinds}) in the folder", str(path))
        found.extend(inside)
    return found


def overwritten_input(target: Path, inputs: Sequence[Path]) -> Path | None:
    """The input ``target`` would overwrite, if any."""
    resolved = target.resolve()
    return next((path for path in inputs if path.resolve() == resolved), None)


def input_refusal(output: Path, inputs: Sequence[Path]) -> str:
    """Why -o may not be written: it is one of the inputs ('' if not)."""
    if overwritten_input(output, inputs) is None:
        return ""
    return f"-o {output} is an input: the result would overwrite it; choose another name"


class UnwritableOutput(Exception):
    """-o names a place files cannot go (a file where a folder must be, a folder that cannot be made
    or written): said before any work, as a usage error."""


def blocking_file(folder: Path) -> Path | None:
    """The first of ``folder`` and the folders above it that exists but is not a folder."""
    return next((p for p in (*reversed(folder.parents), folder) if p.exists() and not p.is_dir()), None)


def check_writable(folder: Path, given: Path) -> None:
    """Raise UnwritableOutput unless a file can be made in ``folder`` (which exists): a real one is
    made and removed, since permission bits say nothing of read-only mounts, /proc, or root."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".museforge-", dir=folder)
    except OSError as exc:
        raise UnwritableOutput(f"-o {given}: files cannot be written into {folder} ({exc.strerror}); give a "
                               "folder you can write to") from None
    os.close(handle)
    Path(probe).unlink(missing_ok=True)


def check_target_file(output: Path, instead: str = "give a file name or a folder (-o - writes the result "
                      "to stdout)") -> None:
    """-o out.png may replace a file, never a device or a socket of that name."""
    if output.exists() and not output.is_file():
        raise UnwritableOutput(f"-o {output} exists and is not a regular file; {instead}")


@contextmanager
def output_folder(folder: Path, given: Path) -> Iterator[list[Path]]:
    """The folder made now, and checked to take files (one that cannot is said before any work, as
    UnwritableOutput naming -o ``given``); the caller adds what it writes to the list it gets. If
    nothing was written by the end (the command failed or was stopped), the folders made here are
    taken away again."""
    blocker = blocking_file(folder)
    if blocker == given:
        raise UnwritableOutput(f"-o {given} is a file, not a folder: give a folder for the results (made if "
                               "missing), or a file name whose extension names the format (out.png)")
    if blocker is not None:
        raise UnwritableOutput(f"-o {given}: {blocker} is a file, not a folder, so nothing can be written "
                               "inside it; give a path under a folder")
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    written: list[Path] = []
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UnwritableOutput(f"-o {given}: the folder {exc.filename or folder} cannot be made "
                                   f"({exc.strerror}); give a folder you can write to") from None
        check_writable(folder, given)
        yield written
    finally:
        if not written:
            for made in missing:  # deepest first
                try:
                    made.rmdir()
                except OSError:  # something else put a file there meanwhile (or it was never made)
                    if made.exists():
                        break


def distinct(paths: Sequence[Path]) -> list[Path]:
    """Each file once, where first given (frames/ and frames/a.png name a.png twice)."""
    first: dict[Path, Path] = {}
    for path in paths:
        first.setdefault(path.resolve(), path)
    return list(first.values())


def clashing_results(paths: Sequence[Path], fmt: str) -> list[list[Path]]:
    """Inputs (each file once) whose results would get one name <stem>-<effect>.<ext> (x.png and x.jpg
    with --format png, or a/x.png and b/x.png), each group in input order."""
    groups: dict[tuple[str, str], list[Path]] = {}
    for path in paths:
        written = format_name(fmt) or SUFFIX_FORMATS.get(path.suffix.lower(), path.suffix.lower())
        groups.setdefault((path.stem, WRITTEN_AS.get(written, written)), []).append(path)
    return [group for group in groups.values() if len(group) > 1]


def clash_refusal(clashes: Sequence[Sequence[Path]], effect: str, fmt: str) -> str:
    """What to tell a user whose inputs' results would overwrite each other, with what to do instead."""
    short = effect.rpartition(".")[2]
    said = [f"{', '.join(map(str, group))} would all be written as {group[0].stem}-{short}.*"
            for group in clashes[:5]]
    more = f" (and {len(clashes) - 5} more such groups)" if len(clashes) > 5 else ""
    mixed = fmt and any(len({p.suffix.lower() for p in group}) > 1 for group in clashes)
    instead = (f"drop --format {fmt} so that each keeps its own format and extension, or apply them" if mixed
               else "apply them")
    return (f"results would overwrite each other: {'; '.join(said)}{more}; {instead} into -o folders of "
            "their own, one run each, or rename them")
