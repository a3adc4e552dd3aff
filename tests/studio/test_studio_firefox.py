"""The studio in a real Firefox (Debian's firefox-esr on an Xvfb display, driven by WebDriver BiDi:
see bidi.py), against a real server with API keys on. The journeys of the Chromium tests that
depend on the browser's own machinery: keys, forms, images, audio and video playback, WebGL,
pointer drawing, file picking, streamed jobs, accessibility; no console error in any of them.
Screenshots go to build/studio-screenshots/firefox-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.studio.bidi import FIREFOX, XVFB, Firefox
from tests.studio.browsers import AXE, SHOTS, need

need(bool(FIREFOX and XVFB), "firefox-esr xvfb")


@pytest.fixture(scope="module")
def firefox() -> Iterator[Firefox]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser = Firefox()
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def studio(firefox: Firefox, served: tuple[str, str]) -> Firefox:
    """The studio opened with a wrong key first (refused in the page), then the right one."""
    url, key = served
    firefox.open(url + "/")
    assert firefox.run("return document.title") == "museforge studio"
    firefox.wait("return document.getElementById('key-dialog').open", what="the key dialog")
    firefox.type("#key-input", "not-a-key")
    firefox.click("#key-save")
    firefox.wait("return document.getElementById('key-error').textContent.includes('unknown API key')",
                 what="the wrong key's error")
    firefox.screenshot(SHOTS / "firefox-wrong-key.png")
    firefox.type("#key-input", key)
    firefox.click("#key-save")
    firefox.wait("return document.getElementById('server-state').textContent.includes('effects ready')",
                 what="the generators listed")
    assert key not in firefox.run("return location.href")
    return firefox


def pick(browser: Firefox, name: str, kind: str = "generator") -> None:
    browser.click(f'nav button[data-{kind}="{name}"]')
    browser.wait("return document.getElementById('generator-title').textContent === args[0]", name)


def no_console_errors(browser: Firefox) -> None:
    errors = browser.console_errors()
    assert not errors, errors


def test_a_texture_is_generated_seen_tiled_and_regenerated_exactly(studio: Firefox) -> None:
    pick(studio, "image.texture")
    studio.select("#field-family", '"brick"')
    for name in ("width", "height"):
        studio.type(f"#field-{name}", "128")
    studio.type("#seed", "7")
    studio.click("#generate-button")
    card = '#gallery .card[data-generator="image.texture"]'
    studio.wait("const i = document.querySelector(args[0]); return i && i.naturalWidth", f"{card} img",
                seconds=120, what="the texture")
    assert studio.run("return document.querySelectorAll(args[0]).length", f"{card} .tiled") == 1
    seed = f'{card} dd[data-name="seed"]'
    assert studio.run("return document.querySelector(args[0]).textContent", seed) == "7"
    studio.screenshot(SHOTS / "firefox-texture.png")
    studio.run("""const button = [...document.querySelector(args[0]).querySelectorAll('button')]
        .find((b) => b.textContent === 'Regenerate'); button.id = 'again-under-test';""", card)
    studio.click("#again-under-test")
    studio.wait("""const images = [...document.querySelectorAll('#gallery .card img')];
        return images.length === 2 && images.every((i) => i.complete && i.naturalWidth > 0);""", seconds=120)
    same = studio.run("""const images = [...document.querySelectorAll('#gallery .card img')];
        const pixels = images.map((image) => {
          const canvas = document.createElement('canvas');
          canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
          const context = canvas.getContext('2d'); context.drawImage(image, 0, 0);
          return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data).join(',');
        });
        return images.every((i) => i.complete) && pixels[0] === pixels[1];""")
    assert same  # the same seed and parameters: the same pixels
    no_console_errors(studio)


def test_a_melody_is_played_and_its_waveform_drawn(studio: Firefox) -> None:
    pick(studio, "music.melody")
    studio.type("#field-bars", "2")
    studio.select("#format", "wav")
    studio.click("#generate-button")
    audio = '#gallery .card[data-generator="music.melody"] audio'
    studio.wait("const a = document.querySelector(args[0]); return a && a.readyState >= 1", audio,
                seconds=180)
    duration = studio.run("return document.querySelector(args[0]).duration", audio)
    assert 3.0 < duration < 12.0
    studio.run("const a = document.querySelector(args[0]); a.muted = true; await a.play();", audio)
    studio.wait("return document.querySelector(args[0]).currentTime > 0.2", audio, what="the melody playing")
    seconds = studio.wait("return document.querySelector(args[0]).dataset.seconds",
                          '#gallery .card[data-generator="music.melody"] canvas')
    assert abs(float(seconds) - duration) < 0.1
    studio.screenshot(SHOTS / "firefox-melody.png")
    no_console_errors(studio)


def test_a_prop_is_drawn_in_webgl_and_turned_by_keyboard(studio: Firefox) -> None:
    pick(studio, "mesh.props")
    studio.type("#field-lods", "2")
    studio.type("#field-resolution", "32")
    studio.select("#format", "glb")
    studio.click("#generate-button")
    canvas = '#gallery .card[data-generator="mesh.props"] canvas'
    studio.wait("const c = document.querySelector(args[0]); return c && c.dataset.triangles", canvas,
                seconds=180, what="the prop drawn")
    lit = """const source = document.querySelector(args[0]);
        const copy = document.createElement('canvas'); copy.width = source.width; copy.height = source.height;
        const context = copy.getContext('2d'); context.drawImage(source, 0, 0);
        const data = context.getImageData(0, 0, copy.width, copy.height).data;
        let lit = 0; for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i] - 33) > 12) lit += 1;
        return lit / (data.length / 4);"""
    assert 0.03 < studio.run(lit, canvas) < 0.9  # a prop in the middle, not an empty or full frame
    studio.click(canvas)
    studio.keys(["\ue012", "\ue012"])  # the left arrow, twice
    studio.wait("return document.querySelector(args[0]).dataset.yaw !== '0.600'", canvas,
                what="the prop turned")
    studio.screenshot(SHOTS / "firefox-prop.png")
    no_console_errors(studio)


def test_a_sketch_drawn_with_the_mouse_is_coloured(studio: Firefox) -> None:
    studio.click("#draw-button")
    box = studio.run("""const c = document.getElementById('draw-canvas'); c.scrollIntoView({block: 'center'});
        const r = c.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2, r.width];""")
    x, y, side = (round(v) for v in box)
    quarter = side // 4
    square = [(x - quarter, y - quarter), (x + quarter, y - quarter), (x + quarter, y + quarter),
              (x - quarter, y + quarter), (x - quarter, y - quarter)]
    studio.pointer([("move", *square[0]), ("down",), *[("move", *p) for p in square[1:]], ("up",)])
    studio.click('#draw-tools button[data-tool="hint"]')
    studio.pointer([("move", x - side // 10, y), ("down",), ("move", x + side // 10, y), ("up",)])
    studio.wait("return document.getElementById('draw-status').textContent.includes('Coloured')", seconds=120)
    red, green = studio.run("""const image = document.getElementById('draw-result');
        const canvas = document.createElement('canvas');
        canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext('2d'); context.drawImage(image, 0, 0);
        const w = canvas.width, d = context.getImageData(w * 3 / 8, w * 3 / 8, w / 4, w / 4).data;
        let r = 0, g = 0; for (let i = 0; i < d.length; i += 4) { r += d[i]; g += d[i + 1]; }
        return [r / (d.length / 4), g / (d.length / 4)];""")
    assert red > green + 40, (red, green)  # the square is filled with the hint's red
    studio.screenshot(SHOTS / "firefox-draw.png")
    no_console_errors(studio)


def test_a_video_picked_for_a_frame_wise_effect_comes_back_and_plays(studio: Firefox, tmp_path: Path) -> None:
    from tests.core.test_video import make_video

    shot = make_video(tmp_path / "shot.mp4", frames=24)
    pick(studio, "effect.denoise", "effect")
    studio.set_files("#files", [shot])
    studio.wait("return [...document.getElementById('format').options].map((o) => o.value).join()"
                " === ',mp4,mov'", what="the video formats offered")
    studio.click("#generate-button")
    video = '#gallery .card[data-generator="effect.denoise"][data-media-type="video/mp4"] video'
    studio.wait("const v = document.querySelector(args[0]); return v && v.readyState >= 1", video,
                seconds=180)
    assert abs(studio.run("return document.querySelector(args[0]).duration", video) - 1.0) < 0.1
    studio.run("const v = document.querySelector(args[0]); v.muted = true; await v.play();", video)
    studio.wait("return document.querySelector(args[0]).currentTime > 0.2", video, what="the video playing")
    studio.screenshot(SHOTS / "firefox-video.png")
    no_console_errors(studio)


def test_a_job_is_submitted_watched_and_another_cancelled(studio: Firefox, root: Path) -> None:
    studio.click("#jobs-button")

    def submit(pattern: str, first: int, last: int, output: str) -> None:
        studio.select("#job-effect", "effect.denoise")
        for field, value in (("#job-input", pattern), ("#job-first", str(first)), ("#job-last", str(last)),
                             ("#job-output", output)):
            studio.type(field, value)
        studio.click("#job-submit")

    submit("sh010.####.png", 1001, 1006, "clean/sh010.####.png")
    studio.wait("const j = document.querySelector('#job-list .job'); return j && j.dataset.state === "
                "'succeeded' && j.querySelectorAll('.cells span.done').length === 6", seconds=120,
                what="the job done, every frame's cell marked")
    assert len(list((root / "out" / "clean").iterdir())) == 6
    submit("long.####.png", 1, 40, "slow/long.####.png")
    studio.wait("const jobs = document.querySelectorAll('#job-list .job'); "
                "return jobs.length === 2 && !!jobs[0].querySelector('.cells span.done')",
                what="the second job running")  # its own cells: the first job's are all done
    studio.run("document.querySelector('#job-list .job .cancel').id = 'cancel-under-test'")
    studio.click("#cancel-under-test")
    studio.wait("const job = document.querySelector('#job-list .job'); "
                "return ['cancelled', 'succeeded', 'failed'].includes(job.dataset.state)",
                seconds=120, what="the second job ended")
    counts = studio.run("return document.querySelector('#job-list .job .counts').textContent")
    assert counts.startswith("cancelled:") and "skipped" in counts, counts
    studio.screenshot(SHOTS / "firefox-job-cancelled.png")
    no_console_errors(studio)


def test_the_page_passes_the_axe_accessibility_rules_in_firefox(studio: Firefox) -> None:
    studio.run(AXE.read_text() + "\nwindow.axe = axe;")
    found = studio.run("""const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help}));""")
    (SHOTS / "firefox-axe.txt").write_text("\n".join(f"{v['impact']} {v['id']}: {v['help']}" for v in found)
                                           or "no violation\n")
    serious = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not serious, serious
