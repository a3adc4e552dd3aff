"""The benchmarks run end to end and report every row (figures are not judged).

Each runs with settings smaller than ``--quick``'s (shorter rows, fewer batch sizes, a
smaller frame); every row, server and table of a full run is still produced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import parse_args

ROOT = Path(__file__).resolve().parents[2]

# Every row the benchmark promises for a model with a generator (torch rows only with torch).
EXPECTED = [
    "ort_b1", "ort_best", "ort_same_work",
    "tiny_on_c1", "tiny_on_c8", "tiny_on_c32",
    "tiny_off_c1", "tiny_off_c8", "tiny_off_c32",
    "naive_c32", "generate_c1", "generate_c8", "inproc_pipeline",
]


def test_quick_run_reports_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    # Half of --quick's rows (a Generate row at c=8 still completes several calls) and two
    # batch sizes: starting the servers and children is most of what remains. The timeout
    # only stops a hung run.
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--duration", "0.5", "--warmup", "0.2",
         "--sweep-duration", "0.1", "--batches", "1,8", "--only", "image.digits",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "× limit ²" in result.stdout and ("PASS" in result.stdout or "MISS" in result.stdout)

    figures = json.loads(out.read_text("utf-8"))
    rows = {r["key"]: r for r in figures["rows"] if r["model"] == "image.digits"}
    expected = list(EXPECTED)
    if figures["sweeps"]["image.digits"].get("torch", {}).get("full"):
        expected += ["torch_b1", "torch_best"]
    missing = [k for k in expected if k not in rows]
    assert not missing, f"rows missing: {missing}"
    for key in expected:
        row = rows[key]
        assert row["items_per_s"] > 0, f"{key}: {row}"
        assert row["p50_ms"] > 0 and row["p99_ms"] >= row["p50_ms"], f"{key}: {row}"
        assert row["errors"] == 0, f"{key}: {row['first_error']}"
        assert row["ratio_to_limit"] is not None
    for key in expected:
        if key.startswith(("tiny_", "naive_", "generate_")):
            assert rows[key]["client_cpu"] is not None, key  # the load generator reported its CPU

    servers = figures["servers"]
    assert [s["kind"] for s in servers].count("museforge") == 2
    assert all(s["ready_s"] > 0 and s["rss_warm_mb"] > 0 for s in servers if s["kind"] == "museforge")
    assert {t["key"] for t in figures["targets"]} >= {
        "image.digits/generate_vs_ort", "image.digits/tiny_batching_gain",
        "image.digits/tiny_vs_naive", "image.digits/p50_c1_overhead_ms",
        "server/ready_s", "server/rss_mb",
    }


def test_quick_settings_shorten_every_timing() -> None:
    # The run above passes its own timings, so --quick's are checked here.
    default, quick = parse_args([]), parse_args(["--quick"])
    for name in ("duration", "warmup", "sweep_duration"):
        assert 0 < getattr(quick, name) < getattr(default, name), name


def test_effects_quick_run_reports_every_variant(tmp_path: Path) -> None:
    out = tmp_path / "effects.json"
    # A 320x180 frame (two tiles) instead of --quick's 960x540, where x4 takes seconds per
    # frame; each row still times at least two frames.
    result = subprocess.run(
        [sys.executable, "-m", "bench.effects", "--quick", "--frame", "320x180", "--duration", "0.5",
         "--only", "effect.upscale", "--no-uhd", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "classical frames/s" in result.stdout
    figures = json.loads(out.read_text("utf-8"))
    assert [f["params"] for f in figures] == [{"scale": 2}, {"scale": 4}]
    for row in figures:
        assert row["hd"]["frames_per_s"] > 0 and row["hd"]["runs"] >= 2
        assert row["classical_fps"] > 0 and row["classical"].startswith("Pillow bicubic")
        assert row["hd_shape"] == [180, 320]


def test_the_effects_bench_takes_only_effects_on_frames() -> None:
    from bench.effects import discover_effects

    names = discover_effects(None)
    assert "effect.upscale" in names and "effect.sketch" in names
    assert not [name for name in names if name.startswith("video.")]  # clips have benches of their own


def test_recommend_quick_run_prints_every_row_and_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import recommend

    assert recommend.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for row in ("museforge (ALS + features)", "museforge without looks", "most popular", "item-kNN",
                "ceiling: hidden utility x exposure", "randomised test period", "held-out users",
                "the test period drawn again", "expected (4 runs)"):
        assert row in out
    verdicts = [line for line in out.splitlines() if line.endswith(("PASS", "MISS"))]
    assert len(verdicts) == 11 and any(line.startswith("Recommend p99") for line in verdicts)
    assert sum(line.startswith("NDCG@10 (randomised test period)") for line in verdicts) == 2
    assert sum(line.startswith("NDCG@10 (held-out users, last 3 slates, expected over 4 runs)")
               for line in verdicts) == 2
    assert sum(line.startswith("NDCG@10 (held-out, expected over 4 runs)") for line in verdicts) == 2


def test_steering_quick_run_prints_every_row_and_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import steering

    assert steering.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for row in ("image.faces", "image.tiles", "all"):
        assert any(line.startswith(row) for line in out.splitlines())
    verdicts = [line for line in out.splitlines() if line.endswith(("PASS", "MISS"))]
    assert len(verdicts) == 3 and "steering a request" in out


def test_x264_run_compares_both_encoders(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import x264

    assert x264.main(["--frames", "4", "--size", "48x64", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("museforge (", "x264 chooses"))]
    assert len(rows) == 2, out
    assert rows[0].split()[-1] == "yes"  # museforge's own encodes: the same bytes every run


def test_sketch_run_compares_pinned_versions_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import sketch

    assert sketch.main(["--seconds", "0.3", "--warmup", "0.1", "--artists", "1", "--versions", "4,6"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line[:1].isdigit()]
    assert [(r[0], r[1]) for r in rows] == [("4", "gRPC"), ("4", "HTTP"), ("6", "gRPC"), ("6", "HTTP")]
    assert all(r[8] == "0" and float(r[3]) > 0 for r in rows)  # results came back, none failed
    with pytest.raises(SystemExit):
        sketch.main(["--versions", "five"])
    assert "--versions takes version numbers" in capsys.readouterr().err
