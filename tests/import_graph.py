"""The import graph of museforge's source, read statically, and the layer rules it must keep.

Every ``import`` and ``from ... import`` is found (module level and inside functions, except
under ``if TYPE_CHECKING:``), relative imports resolved. docs/architecture.md states the
rules in words; ``tests/test_layers.py`` checks them on the real tree and on broken ones.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where each package's source lives (pyproject.toml's package-dir).
SOURCES = {"museforge": ROOT / "core", "museforge.plugins": ROOT / "plugins",
           "museforge.export": ROOT / "export"}
GENERATED = ("museforge.v1.", "museforge.inference.")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (or module.name for ``from m import name``)
    line: int


@dataclass
class ImportGraph:
    imports: dict[str, list[Import]] = field(default_factory=dict)
    packages: set[str] = field(default_factory=set)

    @classmethod
    def scan(cls, sources: Mapping[str, Path]) -> ImportGraph:
        graph = cls()
        files: dict[str, Path] = {}
        for package, folder in sources.items():
            for path in sorted(folder.rglob("*.py")):
                module = _module_name(package, folder, path, sources)
                if module is None or module.startswith(GENERATED):
                    continue
                files[module] = path
                if path.name == "__init__.py":
                    graph.packages.add(module)
        for module, path in files.items():
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            graph.imports[module] = list(_imports(module, module in graph.packages, tree))
        return graph

    def known(self, name: str) -> str | None:
        """The scanned module ``name`` is, or is inside (``pkg.mod.Class`` → ``pkg.mod``)."""
        while name:
            if name in self.imports:
                return name
            name = name.rpartition(".")[0]
        return None

    def reachable(self, roots: Iterable[str]) -> dict[str, list[str]]:
        """Every module the roots import, directly or not, with one chain of imports to it."""
        chains: dict[str, list[str]] = {}
        todo = [(root, [root]) for root in roots]
        while todo:
            module, chain = todo.pop()
            if module in chains:
                continue
            chains[module] = chain
            for found in self.imports.get(module, []):
                inner = self.known(found.target)
                for step in _with_parents(inner) if inner else []:
                    todo.append((step, [*chain, step]))
        return chains


def _with_parents(module: str) -> Iterator[str]:
    """Importing ``a.b.c`` runs ``a/__init__``, ``a.b/__init__`` and ``a.b.c``."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def _module_name(package: str, folder: Path, path: Path, sources: Mapping[str, Path]) -> str | None:
    for other, other_folder in sources.items():  # a nested package's files belong to it
        if other != package and other.startswith(package + ".") and other_folder in path.parents:
            return None
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if any(not p.isidentifier() for p in parts):
        return None  # templates, node_modules and the like
    return ".".join([package, *parts])


def _imports(module: str, is_package: bool, tree: ast.Module) -> Iterator[Import]:
    skipped = {id(n) for node in ast.walk(tree) if _is_type_checking_block(node)
               for n in ast.walk(node)}
    here = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (Import(module, alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(here, node.level, node.module)
            for alias in node.names:
                yield Import(module, f"{base}.{alias.name}" if alias.name != "*" else base, node.lineno)


def _resolve(here: str, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    parts = here.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


# --- the rules -------------------------------------------------------------------------

WIRE = ("grpc", "grpc_status", "grpc_health", "grpc_reflection", "museforge.v1", "museforge.inference")
UPPER = ("museforge.server", "museforge.gateway", "museforge.jobs", "museforge.feedback", "museforge.cli",
         "museforge.client", "museforge.client_errors", "museforge.testing")
TRAINING = ("torch", "museforge.export")
# The composition root: the one place the server wires in the gateway and the job executor.
COMPOSITION = ("museforge.server.app", "museforge.server.workers")
PUBLIC_API = ("museforge", "museforge.testing")
# What a running server imports: the roots the serving path starts from.
SERVING_ROOTS = ("museforge", "museforge.server.app", "museforge.server.workers", "museforge.gateway.server",
                 "museforge.client", "museforge.client_errors", "museforge.testing")


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _bad(graph: ImportGraph, sources: Iterable[str], forbidden: Iterable[str], why: str) -> list[str]:
    forbidden = tuple(forbidden)
    return [f"{i.source}:{i.line} imports {i.target}: {why}"
            for module in sources for i in graph.imports[module] if _under(i.target, forbidden)]


def layer_violations(graph: ImportGraph) -> list[str]:
    """What breaks the rules of docs/architecture.md ("The map"), one line per import."""
    modules = sorted(graph.imports)
    found: list[str] = []
    lower = [m for m in modules if _under(m, ("museforge.engine",))]
    runtime = [m for m in modules if _under(m, ("museforge.runtime",))]
    found += _bad(graph, lower, (*WIRE, *UPPER, *TRAINING), "the engine stays below gRPC, servers and jobs")
    found += _bad(graph, runtime, (*WIRE, *UPPER, *TRAINING, "museforge.engine"),
                  "the runtime is the bottom layer")
    found += _bad(graph, [m for m in modules if _under(m, ("museforge.jobs",))],
                  ("museforge.gateway", "museforge.cli", "museforge.testing"),
                  "jobs sit below the front ends")
    found += _bad(graph, [m for m in modules if _under(m, ("museforge.feedback",))],
                  (*WIRE, "museforge.server", "museforge.gateway", "museforge.cli", "museforge.testing"),
                  "the feedback store sits below the services that speak for it")
    found += _bad(graph, [m for m in modules if _under(m, ("museforge.gateway",))],
                  ("museforge.jobs", "museforge.feedback", "museforge.cli", "museforge.testing"),
                  "the gateway calls the services")
    found += _bad(graph, [m for m in modules if _under(m, ("museforge.server",)) and m not in COMPOSITION],
                  ("museforge.gateway", "museforge.cli", "museforge.testing"),
                  "only the composition root (server.app, server.workers) wires in the gateway")
    found += _plugin_violations(graph, [m for m in modules if _under(m, ("museforge.plugins",))])
    found += _serving_violations(graph)
    return found


def _plugin_violations(graph: ImportGraph, plugin_modules: list[str]) -> list[str]:
    found = []
    for module in plugin_modules:
        own = ".".join(module.split(".")[:3])  # museforge.plugins.<name>
        for i in graph.imports[module]:
            if not _under(i.target, ("museforge",)) or _under(i.target, (own, "museforge.export")):
                continue
            inner = graph.known(i.target) or i.target
            if inner not in PUBLIC_API:
                found.append(f"{module}:{i.line} imports {i.target}: plugins use only the public API "
                             f"({', '.join(PUBLIC_API)}), their own package and museforge.export")
    return found


def _serving_violations(graph: ImportGraph) -> list[str]:
    plugins = sorted(p for p in graph.packages if p.count(".") == 2 and p.startswith("museforge.plugins."))
    chains = graph.reachable([r for r in (*SERVING_ROOTS, *plugins) if r in graph.imports])
    found = []
    for module, chain in sorted(chains.items()):
        for i in graph.imports[module]:
            if _under(i.target, TRAINING):
                found.append(f"{module}:{i.line} imports {i.target}, on the serving path "
                             f"({' → '.join(chain)}): serving never imports torch or museforge.export")
    return found
