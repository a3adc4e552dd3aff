"""The serving process holds numpy's BLAS to the configured threads (its idle workers spin)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

PROBE = """
import json, os, sys
import numpy
from threadpoolctl import threadpool_info
from museforge.server.blas_threads import limit_blas_threads
before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
limit_blas_threads(int(sys.argv[1]))
after = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
print(json.dumps({"before": before, "after": after, "env": os.environ.get("OPENBLAS_NUM_THREADS")}))
"""


def probe(threads: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", PROBE, str(threads)], capture_output=True, text=True,
                            timeout=120, check=True, env=env)
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_blas_is_held_to_one_thread_and_libraries_loaded_later_are_told_so() -> None:
    found = probe(1, {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "2", **_python_env()})
    assert found["after"] and set(found["after"]) == {1}
    assert found["env"] == "1"


def test_zero_leaves_blas_as_the_environment_set_it() -> None:
    found = probe(0, {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "2", **_python_env()})
    assert found["after"] == found["before"] and found["env"] == "2"


def test_the_setting_is_checked() -> None:
    from pydantic import ValidationError

    from museforge.config import Settings

    assert Settings().blas_threads == 1
    with pytest.raises(ValidationError, match="blas_threads"):
        Settings(blas_threads=-1)


def _python_env() -> dict[str, str]:
    kept = ("PYTHON", "VIRTUAL_ENV", "HOME")
    return {key: value for key, value in os.environ.items() if key.startswith(kept)}
