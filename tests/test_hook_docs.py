"""Every hook is documented in docs/plugins.md with its exact signature, and implemented by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from museforge.engine import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if inspect.isfunction(fn) and hasattr(fn, "museforge_spec"))


def test_the_hooks_are_found() -> None:
    assert HOOKS == ["register_effects", "register_encoders", "register_generators", "register_recipes"]


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_has_a_section_with_its_exact_signature(hook: str) -> None:
    signature = str(inspect.signature(getattr(hookspecs, hook))).replace("'", "")
    heading = f"### `{hook}{signature}`"
    assert heading in (ROOT / "docs" / "plugins.md").read_text("utf-8"), heading


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_is_implemented_by_a_throwaway_plugin_in_the_tests(hook: str) -> None:
    pattern = re.compile(rf"def {hook}\(")
    users = [p for p in (ROOT / "tests").rglob("test_*.py")
             if p.name != Path(__file__).name and pattern.search(p.read_text("utf-8"))]
    assert users, f"no test implements {hook}"
