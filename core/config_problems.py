"""What is wrong with a setting, said the way a person fixes it: the key as TOML writes it, the
problem (with the known key an unknown one is likely a typo of), and where the value came from."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .near_names import did_you_mean


def problem(error: Any, sources: Mapping[str, str], settings: Sequence[str],
            model_settings: Sequence[str]) -> str:
    """One bad value: its key as TOML writes it, what is wrong, and where it came from."""
    loc = error["loc"]
    source = sources.get(str(loc[0])) if loc else None
    return f"{_key_path(loc)}: {_said(error, settings, model_settings)}" + (f" ({source})" if source else "")


def _key_path(loc: tuple[Any, ...]) -> str:
    """``models."image.digits".max_batch``: a key with a dot (a model name) quoted, as in TOML,
    so that the path reads one way only; a list's item as ``[i]``."""
    path = ""
    for part in loc:
        text = str(part)
        bare = re.fullmatch(r"[A-Za-z0-9_-]+", text)
        path += f"[{part}]" if isinstance(part, int) else (
            ("." if path else "") + (text if bare else json.dumps(text, ensure_ascii=False)))
    return path


def _said(error: Any, settings: Sequence[str], model_settings: Sequence[str]) -> str:
    """pydantic's message, and for an unknown key the known one it is likely a typo of."""
    loc = error["loc"]
    if error["type"] != "extra_forbidden":
        return str(error["msg"])
    if len(loc) == 1:
        known = list(settings)
    elif len(loc) == 3 and loc[0] == "models":  # [models."NAME"] tables
        known = list(model_settings)
    else:
        return str(error["msg"])
    return "unknown setting" + did_you_mean(str(loc[-1]), known)
