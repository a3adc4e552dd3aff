"""One view over protobuf's default descriptor pool and the OIP messages' own (see museforge.inference),
for gRPC server reflection, which looks every name up in a single pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import descriptor_pool

from ..inference import POOL as OIP_POOL

T = TypeVar("T")


class ReflectionPools:
    """The lookups grpc_reflection makes, answered by the first pool that knows the name."""

    def __init__(self) -> None:
        self.pools = (OIP_POOL, descriptor_pool.Default())

    def _first(self, find: Callable[[Any], T]) -> T:
        for pool in self.pools[:-1]:
            try:
                return find(pool)
            except KeyError:
                continue
        return find(self.pools[-1])  # its KeyError is the answer: not found

    def FindFileByName(self, name: str) -> Any:  # the descriptor pool's names
        return self._first(lambda pool: pool.FindFileByName(name))

    def FindFileContainingSymbol(self, symbol: str) -> Any:
        return self._first(lambda pool: pool.FindFileContainingSymbol(symbol))

    def FindMessageTypeByName(self, name: str) -> Any:
        return self._first(lambda pool: pool.FindMessageTypeByName(name))

    def FindExtensionByNumber(self, message: Any, number: int) -> Any:
        return self._first(lambda pool: pool.FindExtensionByNumber(message, number))

    def FindAllExtensions(self, message: Any) -> Any:
        return self._first(lambda pool: pool.FindAllExtensions(message))
