"""What museforge knows about an artifact before anyone rated it, as a feature vector.

Tokens: the generator (or effect), its model version, and each parameter as
``generator:name=value`` (fractions rounded to two significant digits, so 0.61 and 0.62 meet;
whole numbers as they are, so a size of 128 reads 128;
lists and objects by their JSON). A brand-new artifact of a liked generator with liked
parameters shares tokens with what the user liked: that is what cold start ranks by.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse

from .interactions import Item


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        number = float(value)  # a Struct gives 128 back as 128.0: the same token either way
        return f"{number:g}" if number.is_integer() else f"{number:.2g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def tokens(item: Item) -> list[str]:
    maker = item.maker or "?"
    found = [f"maker={maker}", f"version={maker}@{item.model_version}"]
    found += [f"{maker}:{name}={_value(value)}" for name, value in sorted(item.preset.items())]
    return found


class Vocabulary:
    """Token -> column, fixed when a model is fitted; unknown tokens of new artifacts are dropped."""

    def __init__(self, items: Iterable[Item],
                 defaults: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """``defaults``: each maker's parameters as a request that sets none gets them (JSON)."""
        self.columns: dict[str, int] = {}
        self.defaults = {maker: {name: _value(value) for name, value in found.items()}
                         for maker, found in (defaults or {}).items()}
        seen: dict[tuple[str, str], set[str]] = {}
        for item in items:
            for token in tokens(item):
                self.columns.setdefault(token, len(self.columns))
            for name, value in item.preset.items():
                seen.setdefault((item.maker or "?", name), set()).add(_value(value))
        # A reason names what tells a maker's artifacts apart: provenance holds every
        # parameter, defaults too, and "frames=8" says nothing that "look=green" does.
        self.varying = {key for key, values in seen.items() if len(values) > 1}

    def matrix(self, items: Sequence[Item]) -> scipy.sparse.csr_matrix:
        """(len(items), len(vocabulary)) sparse 0/1: which artifact has which token.

        Sparse because a key may name hundreds of thousands of artifacts and, with float
        parameters, thousands of tokens: dense, that would be gigabytes.
        """
        import scipy.sparse  # here: the server starts without scipy (museforge.defer_import)

        rows, columns = [], []
        for row, item in enumerate(items):
            for token in tokens(item):
                column = self.columns.get(token)
                if column is not None:
                    rows.append(row)
                    columns.append(column)
        return scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)),
                                       (len(items), max(1, len(self.columns))), dtype=np.float32)

    def describe(self, item: Item, limit: int = 2) -> str:
        """'image.tiles, kind=wall, look=green': the maker and ``limit`` parameters that say what
        the artifact is, in name order. First those that vary among the maker's artifacts or differ
        from its defaults (both counts more), then text before numbers (a kind or a look names what
        it is; columns=1 or frames=8 are knobs every request carries); never one left null."""
        maker = item.maker or "?"
        defaults = self.defaults.get(maker, {})

        def telling(pair: tuple[str, Any]) -> tuple[int, bool, str]:
            name, value = pair
            told = ((maker, name) in self.varying) + (name in defaults and defaults[name] != _value(value))
            return -told, not isinstance(value, str), name

        named = sorted(((n, v) for n, v in item.preset.items() if v is not None), key=telling)[:limit]
        named.sort(key=lambda pair: pair[0])
        return ", ".join([maker, *(f"{name}={_value(value)}" for name, value in named)])
