"""The H.264 encoder's settings: AVX-512 left out where the processor has it (its kernels made
the same frames different bytes from run to run), and what it writes then is a real video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from museforge.engine.codecs import x264_settings
from museforge.engine.codecs.video import VideoWriter, probe, read_frames
from museforge.engine.codecs.x264_settings import QUALITY, cpu_flags, x264_options
from tests.core.test_video import make_video, moving

ZEN4 = frozenset({"sse4_2", "avx", "avx2", "fma", "bmi2", "avx512f", "avx512bw", "avx512vl"})
HASWELL = frozenset({"sse4_2", "avx", "avx2", "fma", "bmi2"})


def test_avx512_is_left_out_only_where_the_processor_has_it() -> None:
    assert x264_options(ZEN4) == {**QUALITY, "x264-params": "asm=AVX2"}
    assert x264_options(HASWELL) == QUALITY
    assert x264_options(frozenset()) == QUALITY  # no flags known: x264 chooses itself


def test_arm_features_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes crc32\n")
    monkeypatch.setattr(x264_settings, "CPU_INFO", info)
    cpu_flags.cache_clear()
    try:
        assert {"fp", "asimd"} <= cpu_flags()
        assert x264_options() == QUALITY
    finally:
        cpu_flags.cache_clear()


def test_the_running_processor_is_read() -> None:
    flags = cpu_flags()
    assert x264_options() == x264_options(flags)
    if Path("/proc/cpuinfo").is_file():
        assert "sse2" in flags or "asimd" in flags or "fp" in flags, sorted(flags)[:20]


def test_the_same_frames_encode_to_the_same_bytes(tmp_path: Path) -> None:
    source = probe(make_video(tmp_path / "source.mov", frames=8, audio=False, codec="prores_ks"))
    rng = np.random.default_rng(3)  # grain over the gradient gives the rate control work to do
    frames = [np.clip(moving(n) + rng.normal(0, 6, (48, 64, 3)), 0, 255).astype(np.uint8) for n in range(7)]
    made = []
    for attempt in range(4):
        path = tmp_path / f"take{attempt}.mp4"
        with VideoWriter(path, source) as writer:
            for frame in frames:
                writer.write(frame)
        made.append(path.read_bytes())
    assert all(each == made[0] for each in made)
    decoded = list(read_frames(probe(tmp_path / "take0.mp4")))
    assert len(decoded) == 7
    assert np.abs(decoded[3].astype(int) - frames[3].astype(int)).mean() < 8
