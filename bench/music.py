"""``python -m bench.music``: how soon a 30-second piece starts playing, per style and format.

Against a real ``museforge serve`` subprocess on 127.0.0.1, for each style a piece of
about 30 seconds (bars computed from the style's default metre and tempo), played by the
style's whole band through the default SoundFont, side by side with the melody alone
(``intensity`` 1: one instrument to render) and with stems (each layer rendered apart):

- StreamGenerate: time to the first audio chunk (the number a game cares about: when
  playback can start), to the last chunk, and to the final artifact;
- unary Generate of the same request as OGG, WAV and MIDI (MIDI skips rendering);
- the real-time factor: seconds of music per second of wall time (StreamGenerate, OGG);
- tokens sampled per second when 1, 4 and 16 clients ask at once (MIDI, so the figure
  is the sampling loop: concurrent pieces share step-model runs through the batcher).

Every audio row runs twice, on two servers: SoundFont blocks rendered in the server's own
threads (``MUSEFORGE_RENDER_PROCESSES=0``) and in its render processes (the default), so
the two sit side by side in one run.

Targets: first chunk < 300 ms for a 30 s piece; real-time factor >= 50x.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from museforge.client import Client
from museforge.plugins.music.melody import STYLE_METRES, STYLE_TEMPO
from museforge.plugins.music.sampler import beat_length

from .report import table
from .servers import ServerSettings, museforge_server, wait_serving

TARGET_FIRST_CHUNK_MS = 300.0
TARGET_REAL_TIME = 50.0
CONCURRENCY = (1, 4, 16)
PIECE_SECONDS = 30.0
VARIANTS: dict[str, dict[str, Any]] = {
    "band": {}, "melody only": {"intensity": 1}, "band + stems": {"stems": True}}
RENDERING = {"in-thread": "0", "processes": "2"}  # MUSEFORGE_RENDER_PROCESSES (2: the default here)


def bars_for(style: str, seconds: float = PIECE_SECONDS) -> int:
    numerator, denominator = (int(x) for x in STYLE_METRES[style][0].split("/"))
    bar_beats = numerator * 4 / denominator  # quarter notes
    quarter_bpm = STYLE_TEMPO[style] * beat_length((numerator, denominator)) / 4
    return math.ceil(seconds / (bar_beats * 60 / quarter_bpm))


def stream_once(client: Client, params: dict[str, Any], seed: int) -> dict[str, float]:
    start = time.perf_counter()
    first = last = None
    for event in client.stream_generate("music.melody", params, seed=seed, fmt="ogg"):
        kind = event.WhichOneof("event")
        now = time.perf_counter() - start
        if kind == "chunk":
            first = now if first is None else first
            last = now
    done = time.perf_counter() - start
    assert first is not None and last is not None, "no audio chunk arrived"
    return {"first": first, "last": last, "done": done}


def unary_once(client: Client, params: dict[str, Any], seed: int, fmt: str) -> float:
    start = time.perf_counter()
    client.generate("music.melody", params, seed=seed, fmt=fmt)
    return time.perf_counter() - start


def tokens_per_second(client: Client, clients: int, rounds: int = 2) -> float:
    """Tokens/s over ``clients`` concurrent 16-bar MIDI requests, ``rounds`` each."""
    params = {"style": "celtic", "bars": 16}

    def one(seed: int) -> int:
        reply = client.generate("music.melody", params, seed=seed, fmt="mid")
        return int(reply.artifacts[0].metadata["x.tokens"])

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        tokens = sum(pool.map(one, range(100, 100 + clients * rounds)))
    return tokens / (time.perf_counter() - start)


def measure_row(client: Client, style: str, extra: dict[str, Any], repeats: int
                ) -> tuple[list[str], float, float]:
    """One style and band's row (streamed and unary, median of ``repeats`` seeds), its worst first
    chunk (s) and its real-time factor."""
    bars = bars_for(style)
    params = {"style": style, "bars": bars, **extra}
    streams = [stream_once(client, params, seed) for seed in range(1, repeats + 1)]
    timings = {fmt: statistics.median(unary_once(client, params, seed, fmt) for seed in range(1, repeats + 1))
               for fmt in ("ogg", "wav", "mid")}
    first = statistics.median(s["first"] for s in streams)
    done = statistics.median(s["done"] for s in streams)
    worst = max(s["first"] for s in streams)
    cells = [str(bars), *(f"{v * 1000:.0f}" for v in (first, worst, done, timings["ogg"], timings["wav"],
                                                       timings["mid"])), f"{PIECE_SECONDS / done:.0f}x"]
    return cells, worst, PIECE_SECONDS / done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.music", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="requests per row (median reported)")
    args = parser.parse_args(argv)
    rows: list[list[str]] = []
    worst_first: dict[str, float] = {}
    worst_real_time: dict[str, float] = {}
    throughput: list[list[str]] = []
    measured: dict[tuple[str, str, str], list[str]] = {}
    for rendering, processes in RENDERING.items():
        server = museforge_server(ServerSettings())
        server.env["MUSEFORGE_RENDER_PROCESSES"] = processes
        with server:
            wait_serving(server)
            with Client(server.address, timeout=120) as client:
                for seed in range(3):  # warm-up: models loaded, render processes started
                    client.generate("music.melody", {"bars": 8}, seed=seed, fmt="ogg")
                    time.sleep(1.0)
                for style, (variant, extra) in itertools.product(STYLE_METRES, VARIANTS.items()):
                    measured[(style, variant, rendering)], first_worst, real_time = measure_row(
                        client, style, extra, args.repeats)
                    if variant != "band + stems":  # the targets are the streamed mix's
                        worst_first[rendering] = max(worst_first.get(rendering, 0.0), first_worst)
                        worst_real_time[rendering] = min(worst_real_time.get(rendering, math.inf), real_time)
                if rendering != "processes":
                    continue  # tokens/s is MIDI: no rendering, measured once
                single = tokens_per_second(client, 1)
                for clients in CONCURRENCY:
                    rate = single if clients == 1 else tokens_per_second(client, clients)
                    throughput.append([str(clients), f"{rate:.0f}", f"{rate / single:.2f}x"])
    for style, variant in itertools.product(STYLE_METRES, VARIANTS):
        for rendering in RENDERING:
            rows.append([style, variant, rendering, *measured[(style, variant, rendering)]])
    print(table(rows, ["style", "playing", "renders", "bars", "first chunk ms", "worst", "stream done ms",
                       "ogg ms", "wav ms", "mid ms", "real time"], right=set(range(3, 11))))
    print()
    print(table(throughput, ["concurrent clients", "tokens/s", "vs 1 client"], right={0, 1, 2}))
    for rendering in RENDERING:
        verdict = "PASS" if worst_first[rendering] * 1000 < TARGET_FIRST_CHUNK_MS else "MISS"
        print(f"\n{rendering}: first audio chunk of a ~{PIECE_SECONDS:.0f} s piece (band, melody only) < "
              f"{TARGET_FIRST_CHUNK_MS:.0f} ms, worst of {args.repeats} per style: "
              f"{worst_first[rendering] * 1000:.0f} ms  {verdict}")
        verdict = "PASS" if worst_real_time[rendering] >= TARGET_REAL_TIME else "MISS"
        print(f"{rendering}: real-time factor (streamed OGG) >= {TARGET_REAL_TIME:.0f}x, worst style: "
              f"{worst_real_time[rendering]:.0f}x  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
