"""Video in and out: `museforge apply <effect> in.mp4 -o out.mp4` through a real effect (in process
and through a real server), with frame rate, colour description, timecode and audio carried,
and bad files refused by name with nothing written."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from museforge.config import Settings
from museforge.engine.catalogue import EffectInput, Engine
from museforge.engine.codecs.video import VideoError, VideoInfo, VideoWriter, probe, read_frames
from museforge.engine.codecs.video_frames import png_of, rgb_of
from tests.core.test_cli import museforge
from tests.servers import ServeProcess


def moving(number: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A frame of a bar sweeping across a colour gradient (what a frame-wise effect sees)."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 128)], axis=2).astype(np.uint8)
    frame[:, (number * 3) % width:(number * 3) % width + 4] = 255
    return frame


def make_video(path: Path, frames: int = 24, fps: Fraction = Fraction(24), audio: bool = True,
               codec: str = "libx264", timecode: str | None = None, bt709: bool = True,
               pictures: list[np.ndarray] | None = None, rotation: int = 0, pix_fmt: str = "") -> Path:
    with av.open(str(path), "w") as out:
        video: Any = out.add_stream(codec, rate=fps)
        video.height, video.width = pictures[0].shape[:2] if pictures else (48, 64)
        if rotation:  # a phone's portrait video: stored on its side, turned by the player
            video.set_display_rotation(rotation)
        video.pix_fmt = pix_fmt or ("yuv420p" if codec == "libx264" else "yuv422p10le")
        if bt709:
            for name in ("color_primaries", "color_trc", "colorspace"):
                setattr(video.codec_context, name, 1)
            video.codec_context.color_range = 1
        if timecode:
            video.metadata["timecode"] = timecode
        sound: Any = out.add_stream("aac", rate=48000) if audio else None
        for number in range(frames):
            picture = pictures[number] if pictures else moving(number)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame = frame.reformat(format=video.pix_fmt, dst_colorspace=1 if bt709 else None,
                                   dst_color_range=1)
            frame.pts, frame.time_base = number, 1 / fps
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = int(48000 * frames / fps)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                part = tone[None, start:start + 1024]
                chunk = av.AudioFrame.from_ndarray(part, format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, start
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


def decoded(path: Path) -> tuple[VideoInfo, list[np.ndarray], float]:
    info = probe(path)
    frames = list(read_frames(info))
    with av.open(str(path)) as container:
        audio: Any = container.streams.audio
        seconds = float(audio[0].duration * audio[0].time_base) if audio and audio[0].duration else 0.0
    return info, frames, seconds


def test_denoise_over_an_mp4_keeps_rate_colour_audio_and_frame_count(tmp_path: Path) -> None:
    source = make_video(tmp_path / "shot.mp4")
    result = museforge("apply", "effect.denoise", str(source), "-o", str(tmp_path / "out" / "clean.mp4"),
                       "--local", "--plugins", "effect")
    assert result.returncode == 0, result.stderr
    info, frames, seconds = decoded(tmp_path / "out" / "clean.mp4")
    assert (info.width, info.height, info.fps, len(frames), info.codec) == (64, 48, Fraction(24), 24, "h264")
    assert info.colour == {"color_primaries": 1, "color_trc": 1, "colorspace": 1, "color_range": 1}
    assert info.audio == "aac" and seconds == pytest.approx(1.0, abs=0.05)
    # The effect ran on every frame, and the picture is still the one that went in.
    original = [np.asarray(f, np.float64) for f in read_frames(probe(source))]
    for before, after in zip(original, frames, strict=True):
        assert np.abs(before - after).mean() < 12.0
    # And each frame is the effect's output (as near as H.264 keeps it), not the source passed on.
    engine = Engine(Settings(plugins=["effect"])).start()
    try:
        for number in (0, 10):
            frame_in = [EffectInput(png_of(original[number].astype(np.uint8)), "f.png")]
            made = engine.apply_effect("effect.denoise", {}, frame_in, seed=0, fmt="png")
            direct = rgb_of(made[0].data).astype(np.float64)
            assert np.abs(frames[number] - direct).mean() < np.abs(frames[number] - original[number]).mean()
    finally:
        engine.close()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["clean.mp4"]  # no partial files left


def test_a_prores_mov_with_timecode_through_a_server(tmp_path: Path) -> None:
    source = make_video(tmp_path / "plate.mov", frames=12, fps=Fraction(24000, 1001), codec="prores_ks",
                        timecode="01:00:10:00", audio=False)
    with ServeProcess("--plugins", "effect") as server:
        result = museforge("apply", "effect.denoise", str(source), "-o", str(tmp_path / "graded.mov"),
                           "--server", server.address)
    assert result.returncode == 0, result.stderr
    info, frames, _ = decoded(tmp_path / "graded.mov")
    assert (info.codec, info.fps, len(frames), info.timecode, info.audio) == (
        "prores", Fraction(24000, 1001), 12, "01:00:10:00", None)


def test_a_busy_server_is_waited_for_not_a_lost_video(tmp_path: Path) -> None:
    """At 3 calls a second, 12 frames are refused several times (RESOURCE_EXHAUSTED with a retry
    delay); each frame is sent again after the delay the server names, and the video completes."""
    source = make_video(tmp_path / "clip.mp4", frames=12, audio=False)
    with ServeProcess("--plugins", "effect", env={"MUSEFORGE_REQUESTS_PER_SECOND_PER_KEY": "3"}) as server:
        result = museforge("apply", "effect.denoise", str(source), "-o", str(tmp_path / "clean.mp4"),
                           "--server", server.address)
    assert result.returncode == 0, result.stderr
    assert len(decoded(tmp_path / "clean.mp4")[1]) == 12


def test_waiting_follows_the_servers_retry_delay_and_gives_up_past_its_patience(tmp_path: Path) -> None:
    from museforge.cli.video_apply import patiently
    from museforge.client import Client, ResourceExhausted

    frame = png_of(np.full((16, 16, 3), 128, np.uint8))
    slow = {"MUSEFORGE_REQUESTS_PER_SECOND_PER_KEY": "0.01"}
    with ServeProcess("--plugins", "effect", env=slow) as server, Client(server.address) as client:
        def call() -> Any:
            return client.apply_effect("effect.denoise", [("f.png", frame)], fmt="png")
        call()  # the one call the bucket holds; the next waits about 100 s for a token
        pauses: list[float] = []
        with pytest.raises(ResourceExhausted):
            patiently(call, pause=pauses.append, patience=350.0)
    assert len(pauses) == 3 and all(95.0 < p <= 100.0 for p in pauses)  # the server's own delay


def test_writing_and_reading_back_keeps_bt709_colours(tmp_path: Path) -> None:
    source = probe(make_video(tmp_path / "ref.mp4", frames=2, audio=False))
    flat = np.zeros((48, 64, 3), np.uint8)
    flat[:, :32] = (200, 40, 40)
    flat[:, 32:] = (30, 160, 220)
    with VideoWriter(tmp_path / "flat.mov", source) as writer:
        writer.write(flat)
        writer.write(flat)
    back = next(read_frames(probe(tmp_path / "flat.mov")))
    assert np.abs(back[4:-4, 4:28].astype(int) - (200, 40, 40)).max() <= 3
    assert np.abs(back[4:-4, 36:-4].astype(int) - (30, 160, 220)).max() <= 3


@pytest.mark.parametrize(("damage", "words"), [
    ("text", "not a video"),
    ("empty", "not a video"),
    ("truncated", "damaged"),
])
def test_bad_files_are_refused_by_name_with_nothing_written(tmp_path: Path, damage: str, words: str) -> None:
    path = tmp_path / "bad.mp4"
    if damage == "text":
        path.write_text("not a video at all\n" * 50)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        whole = make_video(tmp_path / "whole.mkv", frames=48, audio=False).read_bytes()
        path = tmp_path / "bad.mkv"
        path.write_bytes(whole[:len(whole) // 2])
    result = museforge("apply", "effect.denoise", str(path), "-o", str(tmp_path / "out.mp4"), "--local",
                       "--plugins", "effect")
    assert result.returncode == 1 and path.name in result.stderr and words in result.stderr, result.stderr
    assert not (tmp_path / "out.mp4").exists()
    assert not list(tmp_path.glob(".out.mp4*"))


def test_a_constant_rate_h264_longer_than_the_checked_window_is_not_variable(tmp_path: Path) -> None:
    # B-frames come out of display order: the last packets of the 240 checked are not the last
    # frames, and the gap they leave once sorted is no change of rate.
    texture = np.random.default_rng(0).integers(0, 256, (48, 400, 3), dtype=np.uint8)
    source = tmp_path / "long.mp4"
    with av.open(str(source), "w") as out:
        stream: Any = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for number in range(300):  # a pan over texture: x264 puts B-frames in
            view = np.ascontiguousarray(texture[:, number:number + 64])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(view, format="rgb24")))
        out.mux(stream.encode(None))
    info = probe(source)
    assert info.frames == 300 and info.fps == 24


def test_variable_rate_long_and_unnamed_outputs_are_refused(tmp_path: Path) -> None:
    source = make_video(tmp_path / "short.mp4", frames=6, audio=False)
    with pytest.raises(VideoError, match=r": 0\.25 s long; at most 0\.1 s is taken here"):
        probe(source, max_seconds=0.1)
    result = museforge("apply", "effect.denoise", str(source), "-o", str(tmp_path / "out.avi"), "--local")
    assert result.returncode == 2 and ".mp4 (H.264 in MP4)" in result.stderr
    vfr = tmp_path / "vfr.mkv"
    with av.open(str(vfr), "w") as out:
        stream: Any = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for number, pts in enumerate((0, 40, 80, 200, 210, 220, 400, 900, 905, 1000)):
            frame = av.VideoFrame.from_ndarray(moving(number), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(VideoError, match="variable frame rate") as uneven:
        probe(vfr)
    # Said by what its frames do (5 to 500 ms apart), not a rate it never has.
    assert "5 to 500 ms apart" in str(uneven.value), str(uneven.value)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for data in (None, b""):  # a job reads the file, a call sends its bytes
        with pytest.raises(VideoError, match=r"empty.mp4: the file is empty \(0 bytes\)"):
            probe(empty, data=data)


def test_interpolate_doubles_the_frame_rate_keeping_duration_and_sound(tmp_path: Path) -> None:
    from skimage.data import astronaut

    # A pan over a photograph filmed at 48 fps; the source keeps every other frame (24 fps), so
    # the frames the effect must make are known.
    photo = astronaut()[100:196]
    filmed = [np.ascontiguousarray(photo[:, 2 * n:2 * n + 128]) for n in range(16)]
    source = make_video(tmp_path / "shot.mp4", frames=8, fps=Fraction(24), audio=True,
                        pictures=filmed[0::2])
    output = tmp_path / "smooth.mp4"
    result = museforge("apply", "effect.interpolate", str(source), "-o", str(output), "--local",
                       "--plugins", "effect", "-p", "frames=1")
    assert result.returncode == 0, result.stderr
    assert "16 frames at 48 fps written with audio" in result.stderr
    info, frames, audio_seconds = decoded(output)
    assert info.fps == 48 and len(frames) == 16
    assert abs(audio_seconds - 8 / 24) < 0.05  # the same duration as the source, sound in sync

    def error(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a[8:-8, 8:-8].astype(int) - b[8:-8, 8:-8].astype(int)).mean())

    for n in range(1, 14, 2):  # every made frame is nearer the filmed one than its neighbours are
        assert error(frames[n], filmed[n]) < 0.6 * min(error(frames[n - 1], filmed[n]),
                                                        error(frames[n + 1], filmed[n])), n
    assert np.array_equal(frames[-1], frames[-2])  # the last frame is held for its interval


def test_an_effect_that_is_not_frame_wise_is_refused_with_nothing_written(tmp_path: Path) -> None:
    source = make_video(tmp_path / "shot.mp4", frames=4, audio=False)
    result = museforge("apply", "effect.sketch", str(source), "-o", str(tmp_path / "more.mp4"),
                       "--local", "--plugins", "effect", "-p", "count=2")
    assert result.returncode == 1 and "the effect made 2 images of one frame" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.mp4"]
