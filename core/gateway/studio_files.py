"""The studio's files (``museforge/studio/``), served by the gateway at ``/`` and ``/studio/...``.

The page is public (it holds no secret: every call it makes carries the key the artist types
in), built only on the gateway's public routes, and loads nothing from anywhere else: the
Content-Security-Policy allows this origin alone, and inline script none.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

FOLDER = Path(__file__).resolve().parent.parent / "studio"
TYPES = {".html": b"text/html; charset=utf-8", ".js": b"text/javascript; charset=utf-8",
         ".css": b"text/css; charset=utf-8", ".svg": b"image/svg+xml"}
POLICY = (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
          b"media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
          b"form-action 'none'; frame-ancestors 'none'")
HEADERS = ((b"Content-Security-Policy", POLICY), (b"X-Content-Type-Options", b"nosniff"),
           (b"Referrer-Policy", b"no-referrer"), (b"Cache-Control", b"no-cache"))


@cache
def _listing() -> dict[str, Path]:
    """URL path -> file: the folder's files of the served types, named as they are (no other path)."""
    files = {f"/studio/{p.name}": p for p in FOLDER.iterdir() if p.is_file() and p.suffix in TYPES} \
        if FOLDER.is_dir() else {}
    if "/studio/index.html" in files:
        files["/"] = files["/studio/index.html"]
    return files


def is_studio_path(path: str) -> bool:
    return path == "/" or path.startswith("/studio/")


def studio_file(path: str) -> tuple[bytes, bytes] | None:
    """(content type, bytes) of the studio file at URL ``path``, or None."""
    found = _listing().get(path)
    if found is None:
        return None
    return TYPES[found.suffix], found.read_bytes()
