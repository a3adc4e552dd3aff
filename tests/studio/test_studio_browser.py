"""The studio in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium),
against a real server with API keys on: a wrong key is refused in the page, the right one lists the
generators; a texture is generated and seen (and tiled), a melody generated and played, a bad
parameter shown beside its field; one call at a time, one result of several regenerated exactly,
big seeds sent digit for digit, values the page cannot read refused under their fields; no console
error. Screenshots go to build/studio-screenshots/."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.studio.browsers import AXE, SHOTS, need

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
need(bool(CHROMIUM and DRIVER), "chromium chromium-driver")

from selenium import webdriver  # noqa: E402  (only once a browser is known to be there)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as seen  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 "--autoplay-policy=no-user-gesture-required", "--enable-unsafe-swiftshader"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(DRIVER)))
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: Any, seconds: float = 60) -> Any:
    return WebDriverWait(driver, seconds)


def console_errors(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def use_key(driver: Any, key: str) -> None:
    dialog = wait(driver).until(seen.visibility_of_element_located((By.ID, "key-dialog")))
    field = dialog.find_element(By.ID, "key-input")
    field.clear()
    field.send_keys(key)
    dialog.find_element(By.ID, "key-save").click()


def pick(driver: Any, name: str, kind: str = "generator") -> None:
    wait(driver).until(seen.element_to_be_clickable(
        (By.CSS_SELECTOR, f'nav button[data-{kind}="{name}"]'))).click()
    wait(driver).until(seen.text_to_be_present_in_element((By.ID, "generator-title"), name))


def test_a_wrong_key_is_refused_in_the_page_and_the_right_one_opens_it(browser: Any,
                                                                        served: tuple[str, str]) -> None:
    url, key = served
    browser.get(url + "/")
    assert browser.title == "museforge studio"
    use_key(browser, "not-a-key")
    error = wait(browser).until(seen.visibility_of_element_located((By.ID, "key-error")))
    wait(browser).until(lambda d: "unknown API key" in error.text)
    browser.save_screenshot(str(SHOTS / "wrong-key.png"))
    use_key(browser, key)
    wait(browser).until(seen.text_to_be_present_in_element((By.ID, "server-state"), "effects ready"))
    buttons = browser.find_elements(By.CSS_SELECTOR, "#generators button")
    names = [b.get_attribute("data-generator") for b in buttons]
    assert "image.texture" in names and "music.melody" in names
    assert key not in browser.current_url
    # Only the login attempt failed (401 for the wrong key); nothing else went wrong.
    assert all("401" in message for message in console_errors(browser)), console_errors(browser)


def test_generate_a_texture_see_it_tiled_and_regenerate_it_exactly(browser: Any,
                                                                    served: tuple[str, str]) -> None:
    pick(browser, "image.texture")
    Select(browser.find_element(By.ID, "field-family")).select_by_visible_text("brick")
    for name, value in (("width", "128"), ("height", "128")):
        size = browser.find_element(By.ID, f"field-{name}")
        size.clear()
        size.send_keys(value)
    browser.find_element(By.ID, "seed").send_keys("7")
    browser.find_element(By.ID, "generate-button").click()
    card = wait(browser, 120).until(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#gallery .card[data-generator="image.texture"] img')))
    wait(browser).until(lambda d: d.execute_script("return arguments[0].naturalWidth", card) > 0)
    width = browser.execute_script("return arguments[0].naturalWidth", card)
    assert width >= 64
    assert browser.find_elements(By.CSS_SELECTOR, "#gallery .card .tiled")  # the tiling preview
    seed = browser.find_element(By.CSS_SELECTOR, '#gallery .card dd[data-name="seed"]').text
    assert seed == "7"
    browser.execute_script("arguments[0].scrollIntoView()", card)
    browser.save_screenshot(str(SHOTS / "texture.png"))
    first = browser.execute_script("return arguments[0].src", card)
    browser.find_element(By.XPATH, "//li[contains(@class,'card')][1]//button[text()='Regenerate']").click()
    wait(browser, 120).until(lambda d: d.execute_script("""
        const images = [...document.querySelectorAll('#gallery .card img')];
        return images.length === 2 && images.every((i) => i.complete && i.naturalWidth > 0);"""))
    pixels = browser.execute_script("""
        const images = [...document.querySelectorAll('#gallery .card img')];
        return images.map((image) => {
          const canvas = document.createElement('canvas');
          canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
          const context = canvas.getContext('2d');
          context.drawImage(image, 0, 0);
          return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data).join(',');
        });""")
    assert first and pixels[0] == pixels[1]  # the same seed and parameters: the same pixels
    assert not console_errors(browser), console_errors(browser)


def test_generate_a_melody_and_play_it(browser: Any, served: tuple[str, str]) -> None:
    pick(browser, "music.melody")
    instrument = browser.find_element(By.ID, "field-instrument")
    assert instrument.get_attribute("value") == "auto"  # a name or a number, as text
    bars = browser.find_element(By.ID, "field-bars")
    bars.clear()
    bars.send_keys("2")
    Select(browser.find_element(By.ID, "format")).select_by_value("wav")
    browser.find_element(By.ID, "generate-button").click()
    player = wait(browser, 180).until(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#gallery .card[data-generator="music.melody"] audio')))
    wait(browser).until(lambda d: d.execute_script("return arguments[0].readyState", player) >= 1)
    duration = browser.execute_script("return arguments[0].duration", player)
    assert 3.0 < duration < 12.0
    browser.execute_script("arguments[0].muted = true; return arguments[0].play()", player)
    wait(browser).until(lambda d: d.execute_script("return arguments[0].currentTime", player) > 0.2)
    wave = browser.find_element(By.CSS_SELECTOR, '#gallery .card[data-generator="music.melody"] canvas')
    wait(browser).until(lambda d: wave.get_attribute("data-seconds"))
    assert abs(float(wave.get_attribute("data-seconds")) - duration) < 0.1
    browser.execute_script("arguments[0].scrollIntoView()", player)
    browser.save_screenshot(str(SHOTS / "melody.png"))
    assert not console_errors(browser), console_errors(browser)


def test_a_bad_parameter_is_shown_beside_its_field(browser: Any, served: tuple[str, str]) -> None:
    pick(browser, "music.melody")
    bars = browser.find_element(By.ID, "field-bars")
    bars.clear()
    bars.send_keys("100000")
    browser.find_element(By.ID, "generate-button").click()
    slot = browser.find_element(By.CSS_SELECTOR, '[data-field="parameters.bars"] .field-error')
    wait(browser).until(lambda d: slot.text)
    assert "less than or equal" in slot.text
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", slot)
    browser.save_screenshot(str(SHOTS / "bad-parameter.png"))
    # The refused call is the one error the browser logged (Chromium logs every 4xx reply).
    assert all("status of 400" in message for message in console_errors(browser)), console_errors(browser)


def test_apply_an_effect_to_a_file(browser: Any, served: tuple[str, str], tmp_path: Path) -> None:
    from PIL import Image

    picture = tmp_path / "swatch.png"
    y, x = np.mgrid[0:40, 0:56]
    Image.fromarray(np.stack([x * 4, y * 6, (x + y) * 2], axis=2).astype(np.uint8)).save(picture)
    pick(browser, "effect.upscale", "effect")
    assert browser.find_element(By.ID, "inputs-box").is_displayed()
    assert not browser.find_element(By.ID, "count").is_displayed()  # one result per file
    assert browser.find_element(By.ID, "generate-button").text == "Apply"
    browser.find_element(By.ID, "files").send_keys(str(picture))
    browser.find_element(By.ID, "generate-button").click()
    image = wait(browser, 120).until(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#gallery .card[data-kind="effect"] img')))
    wait(browser).until(lambda d: d.execute_script("return arguments[0].naturalWidth", image) > 0)
    size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
    assert size == [112, 80]  # twice the 56 x 40 swatch
    card = '#gallery .card[data-kind="effect"]'
    inputs = browser.find_element(By.CSS_SELECTOR, f'{card} dd[data-name="inputs"]')
    assert inputs.text == "swatch.png"
    browser.execute_script("arguments[0].scrollIntoView()", image)
    browser.save_screenshot(str(SHOTS / "upscale.png"))
    assert not console_errors(browser), console_errors(browser)


def test_rate_a_result_and_get_it_suggested(browser: Any, served: tuple[str, str]) -> None:
    name = browser.find_element(By.ID, "user")
    name.clear()
    name.send_keys("ann")
    texture = browser.find_element(By.XPATH, "(//li[@data-generator='image.texture'])[1]")
    liked = texture.find_element(By.CSS_SELECTOR, 'button[data-thumb="THUMB_UP"]')
    liked.click()
    status = texture.find_element(By.CSS_SELECTOR, ".rating [role=status]")
    wait(browser).until(lambda d: "noted" in status.text)
    assert liked.get_attribute("aria-pressed") == "true"
    browser.find_element(By.ID, "recommend-button").click()
    suggestion = wait(browser).until(seen.presence_of_element_located(
        (By.CSS_SELECTOR, "#recommendations li")))
    assert "image.texture" in suggestion.text and '"family":"brick"' in suggestion.text
    browser.execute_script("arguments[0].scrollIntoView()", suggestion)
    browser.save_screenshot(str(SHOTS / "suggested.png"))
    suggestion.find_element(By.TAG_NAME, "button").click()
    wait(browser).until(seen.text_to_be_present_in_element((By.ID, "generator-title"), "image.texture"))
    assert Select(browser.find_element(By.ID, "field-family")).first_selected_option.text == "brick"
    # A parameter the preset leaves unset is an empty field, not the text "null" a call would refuse.
    assert browser.find_element(By.ID, "field-interpolate_to").get_attribute("value") == ""
    assert not console_errors(browser), console_errors(browser)


def lit_share(driver: Any, canvas: Any) -> float:
    """The share of the canvas's pixels that are not its background: the prop drawn."""
    return float(driver.execute_script("""
        const source = arguments[0];
        const copy = document.createElement('canvas');
        copy.width = source.width; copy.height = source.height;
        const context = copy.getContext('2d');
        context.drawImage(source, 0, 0);
        const data = context.getImageData(0, 0, copy.width, copy.height).data;
        let lit = 0;
        for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i] - 33) > 12) lit += 1;
        return lit / (data.length / 4);""", canvas))


def test_generate_a_prop_turn_it_and_switch_its_level_of_detail(browser: Any,
                                                                 served: tuple[str, str]) -> None:
    pick(browser, "mesh.props")
    for name, value in (("lods", "2"), ("resolution", "32")):
        field = browser.find_element(By.ID, f"field-{name}")
        field.clear()
        field.send_keys(value)
    Select(browser.find_element(By.ID, "format")).select_by_value("glb")
    browser.find_element(By.ID, "generate-button").click()
    canvas = wait(browser, 180).until(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#gallery .card[data-generator="mesh.props"] canvas')))
    wait(browser).until(lambda d: canvas.get_attribute("data-triangles"))
    assert 0.03 < lit_share(browser, canvas) < 0.9  # a prop in the middle, not an empty or full frame
    before = canvas.screenshot_as_png
    fine = int(canvas.get_attribute("data-triangles"))
    canvas.click()
    canvas.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    wait(browser).until(lambda d: canvas.get_attribute("data-yaw") != "0.600")
    assert canvas.screenshot_as_png != before  # turned
    card = '#gallery .card[data-generator="mesh.props"]'
    level = Select(browser.find_element(By.CSS_SELECTOR, f"{card} select"))
    level.select_by_value("1")
    wait(browser).until(lambda d: canvas.get_attribute("data-lod") == "1")
    coarse = int(canvas.get_attribute("data-triangles"))
    assert 0.3 * fine < coarse < 0.7 * fine  # each level has about half the triangles of the one before
    browser.execute_script("arguments[0].scrollIntoView()", canvas)
    browser.save_screenshot(str(SHOTS / "prop.png"))
    assert not console_errors(browser), console_errors(browser)

def submit_job(driver: Any, pattern: str, first: int, last: int, output: str,
               then: tuple[str, str] | None = None) -> None:
    """Submit effect.denoise over frames; ``then``: a second step (an effect and its sigma)."""
    driver.find_element(By.ID, "jobs-button").click()
    wait(driver).until(seen.visibility_of_element_located((By.ID, "job-form")))
    Select(driver.find_element(By.ID, "job-effect")).select_by_value("effect.denoise")
    while len(driver.find_elements(By.CSS_SELECTOR, "#job-steps > li")) > 1:
        driver.find_element(By.ID, "job-remove-step").click()
    if then is not None:
        driver.find_element(By.ID, "job-add-step").click()
        Select(driver.find_element(By.ID, "job-effect-1")).select_by_value(then[0])
        box = driver.find_element(By.ID, "job-steps-1-parameters-sigma")
        box.clear()
        box.send_keys(then[1])
    for name, value in (("job-input", pattern), ("job-first", str(first)), ("job-last", str(last)),
                        ("job-output", output)):
        box = driver.find_element(By.ID, name)
        box.clear()
        box.send_keys(value)
    wait(driver).until(lambda d: d.find_element(By.ID, "job-submit").is_enabled())  # the last one answered
    driver.find_element(By.ID, "job-submit").click()


def test_a_job_is_submitted_watched_to_the_end_and_another_cancelled(browser: Any, served: tuple[str, str],
                                                                     root: Path) -> None:
    submit_job(browser, "sh010.####.png", 1001, 1006, "clean/sh010.####.png")
    refused = browser.find_element(By.ID, "job-error")
    wait(browser, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#job-list .job") or refused.text)
    assert not refused.text, refused.text
    job = browser.find_element(By.CSS_SELECTOR, "#job-list .job")
    wait(browser, 120).until(lambda d: job.get_attribute("data-state") == "succeeded")
    assert len(job.find_elements(By.CSS_SELECTOR, ".cells span.done")) == 6
    assert "6 of 6 done" in job.find_element(By.CLASS_NAME, "counts").text
    assert sorted(p.name for p in (root / "out" / "clean").iterdir()) == [
        f"sh010.{f}.png" for f in range(1001, 1007)]
    browser.save_screenshot(str(SHOTS / "job-done.png"))
    submit_job(browser, "long.####.png", 1, 40, "slow/long.####.png")
    wait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#job-list .job")) == 2)
    running = browser.find_elements(By.CSS_SELECTOR, "#job-list .job")[0]
    wait(browser, 60).until(lambda d: running.find_elements(By.CSS_SELECTOR, ".cells span.done"))
    running.find_element(By.CLASS_NAME, "cancel").click()
    wait(browser, 120).until(lambda d: running.get_attribute("data-state") == "cancelled")
    assert running.find_elements(By.CSS_SELECTOR, ".cells span.skipped")
    browser.save_screenshot(str(SHOTS / "job-cancelled.png"))
    record_calls(browser)
    again_button = running.find_element(By.CLASS_NAME, "again")
    ActionChains(browser).double_click(again_button).perform()  # the cancelled job, as submitted, once more
    wait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#job-list .job")) >= 3)
    wait(browser).until(lambda d: again_button.is_enabled())
    assert len(job_submissions(browser)) == 1  # a double click runs it once
    again = browser.find_elements(By.CSS_SELECTOR, "#job-list .job")[0]
    wait(browser, 300).until(lambda d: again.get_attribute("data-state") == "succeeded")
    assert len(list((root / "out" / "slow").iterdir())) == 40
    submit_job(browser, "../elsewhere/x.####.png", 1, 2, "bad/x.####.png")
    slot = browser.find_element(By.CSS_SELECTOR, '[data-field="job.input.pattern"] .field-error')
    wait(browser).until(lambda d: slot.text)
    assert "climbs" in slot.text
    assert all("status of 403" in m for m in console_errors(browser)), console_errors(browser)

def job_submissions(driver: Any) -> list[dict[str, str]]:
    return [c for c in driver.execute_script("return window.calls") if c["method"] == "POST"
            and c["path"] == "/v1/jobs"]


def test_a_job_of_two_steps_is_corrected_beside_its_field_and_runs(browser: Any, served: tuple[str, str],
                                                                    root: Path) -> None:
    from PIL import Image

    submit_job(browser, "sh010.####.png", 1001, 1003, "chain/sh010.####.png", then=("effect.denoise", "70"))
    slot = browser.find_element(By.CSS_SELECTOR, '[data-field="job.steps[1].parameters.sigma"] .field-error')
    wait(browser).until(lambda d: slot.text)  # refused: the second step's sigma, shown beside it
    assert "50" in slot.text, slot.text
    browser.find_element(By.ID, "draw-button").click()  # away and back: the form is as it was left
    browser.find_element(By.ID, "jobs-button").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#job-steps > li")) == 2
    assert browser.find_element(By.ID, "job-steps-1-parameters-sigma").get_attribute("value") == "70"
    assert browser.find_element(By.ID, "job-input").get_attribute("value") == "sh010.####.png"
    Select(browser.find_element(By.ID, "job-effect-1")).select_by_value("effect.upscale")  # x2 by default
    record_calls(browser)
    ActionChains(browser).double_click(browser.find_element(By.ID, "job-submit")).perform()
    job = wait(browser, 60).until(lambda d: next(
        (j for j in d.find_elements(By.CSS_SELECTOR, "#job-list .job") if "upscale" in j.text), None))
    assert "effect.denoise → effect.upscale" in job.find_element(By.TAG_NAME, "h4").text
    wait(browser, 180).until(lambda d: job.get_attribute("data-state") == "succeeded")
    made = sorted((root / "out" / "chain").iterdir())
    assert [p.name for p in made] == [f"sh010.{f}.png" for f in (1001, 1002, 1003)]
    with Image.open(root / "in" / "sh010.1001.png") as source, Image.open(made[0]) as result:
        assert result.size == (source.width * 2, source.height * 2)  # both steps ran
    assert len(job_submissions(browser)) == 1  # a double click submits one job
    browser.find_element(By.ID, "job-remove-step").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#job-steps > li")) == 1
    browser.save_screenshot(str(SHOTS / "job-two-steps.png"))
    for name in ("job-input", "job-output"):
        browser.find_element(By.ID, name).clear()
    browser.find_element(By.ID, "job-submit").click()  # no input at all: said under the input's path
    slot = browser.find_element(By.CSS_SELECTOR, '[data-field="job.input.pattern"] .field-error')
    wait(browser).until(lambda d: slot.text)
    assert "give a pattern" in slot.text, slot.text
    # The refused submission is the one error the browser logged (Chromium logs every 4xx reply).
    assert all("status of 400" in m for m in console_errors(browser)), console_errors(browser)


def result_pixels(driver: Any) -> list[int]:
    """The coloured result's RGBA pixels, as the page shows them."""
    return list(driver.execute_script("""
        const image = document.getElementById('draw-result');
        const canvas = document.createElement('canvas');
        canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(image, 0, 0);
        return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data);"""))


def drag(driver: Any, canvas: Any, points: list[tuple[int, int]]) -> None:
    """A stroke through ``points`` (pixels of the canvas as shown, from its centre)."""
    chain = ActionChains(driver).move_to_element_with_offset(canvas, *points[0]).click_and_hold()
    for x, y in points[1:]:
        chain = chain.move_to_element_with_offset(canvas, x, y)
    chain.release().perform()


def test_draw_colour_undo_and_redo_a_region(browser: Any, served: tuple[str, str]) -> None:
    browser.find_element(By.ID, "draw-button").click()
    canvas = wait(browser).until(seen.visibility_of_element_located((By.ID, "draw-canvas")))
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    side = canvas.size["width"]
    box = [(-side // 4, -side // 4), (side // 4, -side // 4), (side // 4, side // 4), (-side // 4, side // 4),
           (-side // 4, -side // 4)]
    drag(browser, canvas, box)  # a closed square of line art
    browser.find_element(By.CSS_SELECTOR, '#draw-tools button[data-tool="hint"]').click()
    drag(browser, canvas, [(-side // 10, 0), (side // 10, 0)])  # a red scribble inside it
    status = browser.find_element(By.ID, "draw-status")
    wait(browser, 120).until(lambda d: "Coloured" in status.text)
    pixels = result_pixels(browser)
    width = int((len(pixels) // 4) ** 0.5)
    inside = [pixels[4 * (y * width + x):4 * (y * width + x) + 3]
              for y in range(width * 3 // 8, width * 5 // 8) for x in range(width * 3 // 8, width * 5 // 8)]
    red, green = (sum(p[c] for p in inside) / len(inside) for c in (0, 1))
    assert red > green + 40, (red, green)  # the square is filled with the hint's red
    browser.save_screenshot(str(SHOTS / "draw.png"))
    # The wider drawing column leaves the gallery narrower: nothing in it may push the page sideways.
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    undo, redo = browser.find_element(By.ID, "draw-undo"), browser.find_element(By.ID, "draw-redo")
    assert undo.get_attribute("data-count") == "2"
    undo.click()
    assert undo.get_attribute("data-count") == "1" and redo.is_enabled()
    redo.click()
    assert undo.get_attribute("data-count") == "2" and not redo.is_enabled()
    again = browser.find_element(By.ID, "draw-redo-region")
    wait(browser, 120).until(lambda d: not again.get_attribute("disabled"))
    wait(browser, 120).until(lambda d: "Coloured" in status.text)
    before = result_pixels(browser)
    browser.find_element(By.CSS_SELECTOR, '#draw-tools button[data-tool="mask"]').click()
    drag(browser, canvas, [(side // 3, side // 3), (side // 3 + 10, side // 3 + 10)])  # a corner to redo
    browser.find_element(By.ID, "draw-redo-region").click()
    wait(browser, 120).until(lambda d: "seed 2" in status.text)
    after = result_pixels(browser)
    far = [4 * (y * width + x) for y in range(width // 2) for x in range(width // 2)]  # the other corner
    assert all(before[i:i + 4] == after[i:i + 4] for i in far)  # outside the mask: kept exactly
    # The next stroke (outside the box) colours with the drawing's own seed and keeps the redone
    # region: it used the redo's seed, and what was never masked changed colour too.
    redone = [4 * (y * width + x) for y in range(width * 5 // 6 - 2, width * 5 // 6 + 3)
              for x in range(width * 5 // 6 - 2, width * 5 // 6 + 3)]
    browser.find_element(By.CSS_SELECTOR, '#draw-tools button[data-tool="pen"]').click()
    drag(browser, canvas, [(-side * 2 // 5, side * 2 // 5), (-side * 2 // 5 + 12, side * 2 // 5)])
    wait(browser, 120).until(lambda d: "seed 1" in status.text)
    later = result_pixels(browser)
    assert all(after[i:i + 4] == later[i:i + 4] for i in redone)  # kept exactly
    # Elsewhere the same seed colours the regions as before (the new stroke nudges soft edges only).
    solid = [i for i in far if after[i + 3] > 200 and later[i + 3] > 200]
    assert len(solid) > 1000
    assert all(max(abs(a - b) for a, b in zip(after[i:i + 3], later[i:i + 3], strict=True)) <= 8
               for i in solid)
    assert not console_errors(browser), console_errors(browser)

def set_fields(driver: Any, values: dict[str, str]) -> None:
    for name, value in values.items():
        box = driver.find_element(By.ID, f"field-{name}")
        if box.get_attribute("type") == "checkbox":
            if box.is_selected() != (value == "true"):
                box.click()
        else:
            box.clear()
            box.send_keys(value)


def test_morph_frames_stems_loops_picks_and_more_like_what_i_liked(browser: Any,
                                                                   served: tuple[str, str]) -> None:
    pick(browser, "image.texture")
    set_fields(browser, {"width": "64", "height": "64", "interpolate_to": "9", "frames": "4"})
    before = len(browser.find_elements(By.CSS_SELECTOR, "#gallery .card"))
    browser.find_element(By.ID, "generate-button").click()
    morph = wait(browser, 120).until(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#gallery .card[data-frames="4"]')))
    image, slider = morph.find_element(By.TAG_NAME, "img"), morph.find_element(By.CSS_SELECTOR, "input.morph")
    first = image.get_attribute("src")
    browser.execute_script("arguments[0].value = 3; arguments[0].dispatchEvent(new Event('input'))", slider)
    assert image.get_attribute("src") != first
    assert morph.find_element(By.TAG_NAME, "h3").text.endswith("0003.png")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#gallery .card")) == before + 1  # 4 frames, 1 card

    pick(browser, "music.melody")
    set_fields(browser, {"bars": "1", "stems": "true", "loop": "true"})
    Select(browser.find_element(By.ID, "format")).select_by_value("wav")
    browser.find_element(By.ID, "generate-button").click()
    stems = wait(browser, 120).until(seen.presence_of_element_located(
        (By.CSS_SELECTOR, "#gallery select.stems")))
    wait(browser).until(lambda d: len(Select(stems).options) >= 3)
    heard = [o.text for o in Select(stems).options]
    assert heard[0] == "the mix" and "melody" in heard
    looped = browser.find_element(By.XPATH, "//button[text()='Play as a loop']")
    looped.click()
    wait(browser).until(lambda d: looped.get_attribute("aria-pressed") == "true")
    looped.click()
    wait(browser).until(lambda d: looped.get_attribute("aria-pressed") == "false")

    pick(browser, "image.texture")
    set_fields(browser, {"width": "64", "height": "64"})
    count = browser.find_element(By.ID, "count")
    count.clear()
    count.send_keys("2")
    browser.find_element(By.ID, "generate-button").click()
    picks = "#gallery button[data-pick]"
    wait(browser, 120).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, picks)) == 2)
    chosen = browser.find_elements(By.CSS_SELECTOR, picks)[0]
    chosen.click()
    said = chosen.find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, "[role=status]")
    wait(browser).until(lambda d: "Picked among 2" in said.text)
    cards = len(browser.find_elements(By.CSS_SELECTOR, "#gallery .card"))
    browser.find_element(By.XPATH, "(//button[text()='More like what I liked'])[1]").click()
    wait(browser, 120).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery .card")) > cards)
    newest = browser.find_element(By.CSS_SELECTOR, '#gallery .card dd[data-name="parameters"]')
    assert '"preference":"ann"' in newest.text
    browser.save_screenshot(str(SHOTS / "morph-stems-pick.png"))
    assert not console_errors(browser), console_errors(browser)

def test_draw_by_keyboard(browser: Any, served: tuple[str, str]) -> None:
    browser.find_element(By.ID, "draw-button").click()
    assert browser.find_element(By.ID, "draw-result").get_attribute("src")  # the last test's colouring
    browser.find_element(By.ID, "draw-clear").click()
    # A cleared canvas shows no result, and there is no region of one to redo or file to export.
    assert not browser.find_element(By.ID, "draw-result").get_attribute("src")
    assert not browser.find_element(By.ID, "draw-redo-region").is_enabled()
    assert not browser.find_element(By.ID, "draw-export").is_displayed()
    assert browser.find_element(By.ID, "draw-status").text == "Cleared"
    browser.find_element(By.CSS_SELECTOR, '#draw-tools button[data-tool="pen"]').click()
    canvas = browser.find_element(By.ID, "draw-canvas")
    browser.execute_script("arguments[0].focus()", canvas)
    strokes = int(browser.find_element(By.ID, "draw-undo").get_attribute("data-count"))
    result = browser.find_element(By.ID, "draw-result")
    shown = result.get_attribute("src")
    ActionChains(browser).send_keys(Keys.SPACE).key_down(Keys.SHIFT).send_keys(
        Keys.ARROW_RIGHT * 3, Keys.ARROW_DOWN * 3).key_up(Keys.SHIFT).send_keys(Keys.SPACE).perform()
    assert canvas.get_attribute("data-cursor") == "176,176" and canvas.get_attribute("data-down") == "false"
    assert int(browser.find_element(By.ID, "draw-undo").get_attribute("data-count")) == strokes + 1
    inked = browser.execute_script("""
        const data = arguments[0].getContext('2d').getImageData(128, 128, 48, 48).data;
        let dark = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] < 60) dark += 1;
        return dark;""", canvas)
    assert inked > 50  # the stroke went where the keys took the pen
    wait(browser, 120).until(lambda d: result.get_attribute("src") != shown)  # and it was coloured
    browser.find_element(By.ID, "user").click()  # Ctrl+Z in a text box is that box's, not the drawing's
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    assert int(browser.find_element(By.ID, "draw-undo").get_attribute("data-count")) == strokes + 1

def test_a_video_cut_is_played_in_the_page(browser: Any, served: tuple[str, str], tmp_path: Path) -> None:
    from tests.core.test_video import make_video

    take = make_video(tmp_path / "take.mp4", frames=72)  # 3 s with sound
    pick(browser, "video.autocut", "effect")
    browser.find_element(By.ID, "files").send_keys(str(take))
    set_fields(browser, {"duration": "1.5", "shot_seconds": "0.5"})
    Select(browser.find_element(By.ID, "format")).select_by_value("mp4")
    browser.find_element(By.ID, "generate-button").click()
    player = wait(browser, 180).until(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#gallery .card[data-kind="effect"] video')))
    wait(browser).until(lambda d: d.execute_script("return arguments[0].readyState", player) >= 1)
    assert abs(browser.execute_script("return arguments[0].duration", player) - 1.5) < 0.1
    browser.execute_script("arguments[0].muted = true; return arguments[0].play()", player)
    wait(browser).until(lambda d: d.execute_script("return arguments[0].currentTime", player) > 0.2)
    assert not console_errors(browser), console_errors(browser)

def test_a_video_dropped_on_a_frame_wise_effect_comes_back_as_a_video(browser: Any, served: tuple[str, str],
                                                                     tmp_path: Path) -> None:
    from tests.core.test_video import make_video

    shot = make_video(tmp_path / "shot.mp4", frames=24)  # 1 s with sound
    pick(browser, "effect.denoise", "effect")
    assert "or one video" in browser.find_element(By.ID, "files-help").text
    browser.find_element(By.ID, "files").send_keys(str(shot))
    formats = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "format")).options]
    assert formats == ["", "mp4", "mov"]  # a video back, as the input's container or another
    browser.find_element(By.ID, "generate-button").click()
    card = '#gallery .card[data-generator="effect.denoise"][data-media-type="video/mp4"]'
    player = wait(browser, 180).until(seen.presence_of_element_located((By.CSS_SELECTOR, f"{card} video")))
    assert browser.find_element(By.ID, "progress-label").text in ("frames 24 of 24", "Done")
    wait(browser).until(lambda d: d.execute_script("return arguments[0].readyState", player) >= 1)
    assert abs(browser.execute_script("return arguments[0].duration", player) - 1.0) < 0.1
    assert browser.find_element(By.CSS_SELECTOR, f'{card} dd[data-name="inputs"]').text == "shot.mp4"
    browser.execute_script("arguments[0].scrollIntoView(); arguments[0].muted = true; arguments[0].play()",
                           player)
    wait(browser).until(lambda d: d.execute_script("return arguments[0].currentTime", player) > 0.2)
    browser.save_screenshot(str(SHOTS / "video-through-denoise.png"))
    assert not console_errors(browser), console_errors(browser)


def record_calls(driver: Any) -> None:
    """Keep each call the page makes (window.calls: method, path, body, and the reply's text) from
    now on; window.hold() keeps the next streamed calls waiting until window.release(), so a test can
    act while one runs."""
    driver.execute_script("""
        if (!window.calls) {
          const real = window.fetch.bind(window);
          let open = () => {};
          window.hold = () => { window.gate = new Promise((go) => { open = go; }); };
          window.release = () => { window.gate = null; open(); };
          window.fetch = async (path, init = {}) => {
            const call = {method: init.method || 'GET', path: String(path), body: init.body || '', reply: ''};
            window.calls.push(call);
            if (window.gate && String(path).includes(':stream')) {  // Stop still ends it: abort wins
              const stopped = new Promise((go) => init.signal?.addEventListener('abort', go));
              await Promise.race([window.gate, stopped]);
            }
            const response = await real(path, init);
            response.clone().text().then((text) => { call.reply = text; }, () => {});
            return response;
          };
        }
        window.calls = [];""")


def calls(driver: Any, path: str) -> list[dict[str, str]]:
    return [c for c in driver.execute_script("return window.calls") if path in c["path"]]


def made(driver: Any) -> list[tuple[str, bytes]]:
    """Each file the recorded streamed calls sent back, in order: its name and its bytes."""
    files = []
    for call in calls(driver, ":stream"):
        for line in call["reply"].splitlines():
            artifact = json.loads(line).get("result", {}).get("artifact") if line.strip() else None
            if artifact:
                files.append((artifact["filename"], base64.b64decode(artifact["data"])))
    return files


def cards(driver: Any) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, "#gallery .card"))


def idle(driver: Any) -> None:
    wait(driver, 120).until(lambda d: d.find_element(By.ID, "generate-button").is_enabled())


def generate_one(driver: Any) -> Any:
    """Click Generate (or Apply) and wait for the call to end; the newest card."""
    before = len(cards(driver))
    driver.find_element(By.ID, "generate-button").click()
    wait(driver, 120).until(lambda d: len(cards(d)) > before or d.find_element(By.ID, "form-error").text)
    idle(driver)
    return cards(driver)[0]


def set_request(driver: Any, seed: str = "", count: str = "1") -> None:
    for name, value in (("seed", seed), ("count", count)):
        box = driver.find_element(By.ID, name)
        box.clear()
        box.send_keys(value)


def test_regenerate_remakes_that_one_of_several_results_byte_for_byte_and_zoom_fills_the_view(
        browser: Any, served: tuple[str, str]) -> None:
    record_calls(browser)
    pick(browser, "image.digits")
    set_fields(browser, {"digit": "7"})
    set_request(browser, "42", "3")
    before = len(cards(browser))
    browser.find_element(By.ID, "generate-button").click()
    wait(browser, 120).until(lambda d: len(cards(d)) == before + 3)
    idle(browser)
    third = browser.find_element(By.XPATH, "//li[contains(@class,'card')][h3='image.digits-42-0002.png']")
    third.find_element(By.XPATH, ".//button[text()='Regenerate']").click()
    wait(browser, 120).until(lambda d: len(cards(d)) == before + 4)
    idle(browser)
    assert len(cards(browser)) == before + 4  # that one alone, not the three again
    again = cards(browser)[0]
    assert again.find_element(By.TAG_NAME, "h3").text == "image.digits-42-0002.png"
    wait(browser).until(lambda d: len(made(d)) >= 4)  # the replies read
    first, second = [data for name, data in made(browser) if name == "image.digits-42-0002.png"]
    assert first == second  # the same bytes
    assert len(calls(browser, ":stream")) == 2
    assert not again.find_elements(By.CSS_SELECTOR, "button[data-pick]")  # nothing to pick among
    # A 28-pixel digit zoomed fills the view, its pixels scaled up, rather than shrinking to 28 pixels.
    image = again.find_element(By.TAG_NAME, "img")
    image.click()
    zoomed = wait(browser).until(seen.visibility_of_element_located((By.CSS_SELECTOR, "#zoom-view img")))
    shown = browser.execute_script("const box = arguments[0].getBoundingClientRect(); "
                                   "return [box.width, box.height]", zoomed)
    assert min(shown) > image.size["width"], (shown, image.size)
    browser.find_element(By.ID, "zoom-close").click()
    assert not console_errors(browser), console_errors(browser)


def test_one_call_at_a_time_and_stop_reaches_it(browser: Any, served: tuple[str, str],
                                                tmp_path: Path) -> None:
    from PIL import Image

    picture = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(picture)
    record_calls(browser)
    pick(browser, "effect.upscale", "effect")
    browser.find_element(By.ID, "files").send_keys(str(picture))
    before = len(cards(browser))
    ActionChains(browser).double_click(browser.find_element(By.ID, "generate-button")).perform()
    wait(browser, 120).until(lambda d: len(cards(d)) > before)
    idle(browser)
    assert len(calls(browser, ":stream")) == 1 and len(cards(browser)) == before + 1  # one Apply, one result
    # While a call runs, nothing starts another: Generate and every Regenerate wait, and Stop ends it.
    pick(browser, "image.digits")
    set_request(browser)
    browser.execute_script("window.calls = []; window.hold()")
    browser.find_element(By.ID, "generate-button").click()
    wait(browser).until(lambda d: calls(d, ":stream"))
    assert not browser.find_element(By.ID, "generate-button").is_enabled()
    again = browser.find_elements(By.XPATH, "//button[text()='Regenerate']")
    assert again and not any(b.is_enabled() for b in again)
    browser.find_element(By.ID, "stop-button").click()
    wait(browser).until(seen.text_to_be_present_in_element((By.ID, "progress-label"), "Stopped"))
    browser.execute_script("window.release()")
    idle(browser)
    assert all(b.is_enabled() for b in browser.find_elements(By.XPATH, "//button[text()='Regenerate']"))
    assert len(calls(browser, ":stream")) == 1 and len(cards(browser)) == before + 1
    assert not console_errors(browser), console_errors(browser)


def test_a_seed_past_two_to_the_53_reaches_the_server_exactly(browser: Any, served: tuple[str, str]) -> None:
    record_calls(browser)
    pick(browser, "image.faces")
    set_request(browser, "3")
    for seed in ("9007199254740993", "18446744073709551615"):
        set_fields(browser, {"interpolate_to": seed, "frames": "2"})
        card = generate_one(browser)
        assert not browser.find_element(By.ID, "form-error").text
        assert f'"interpolate_to":"{seed}"' in calls(browser, ":stream")[-1]["body"]  # its digits, as text
        assert seed in card.find_element(By.CSS_SELECTOR, 'dd[data-name="parameters"]').text
        wait(browser).until(lambda d: made(d))
        assert seed.encode() in made(browser)[-1][1]  # in the provenance the server wrote
    assert not console_errors(browser), console_errors(browser)


def field_error(driver: Any, name: str) -> str:
    slot = driver.find_element(By.CSS_SELECTOR, f'[data-field="{name}"] .field-error')
    wait(driver).until(lambda d: slot.text)
    return str(slot.text)


def test_refusals_are_said_once_under_their_fields_and_nothing_looks_busy(
        browser: Any, served: tuple[str, str], tmp_path: Path) -> None:
    record_calls(browser)
    pick(browser, "image.digits")
    set_request(browser)
    generate = browser.find_element(By.ID, "generate-button")
    set_fields(browser, {"digit": "12"})
    generate.click()
    assert "less than or equal to 9" in field_error(browser, "parameters.digit")
    idle(browser)
    assert not browser.find_element(By.ID, "progress-box").is_displayed()  # refused: nothing running
    set_fields(browser, {"digit": "3"})
    seed = browser.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("-5")
    generate.click()
    assert field_error(browser, "seed") == 'must be a whole number from 0 to 18446744073709551615, got "-5"'
    assert not browser.find_element(By.ID, "form-error").text  # said once, under the field
    seed.clear()
    count = browser.find_element(By.ID, "count")
    count.clear()
    count.send_keys("100000")
    generate.click()
    assert "between 1 and 64" in field_error(browser, "count")
    assert "count" not in browser.find_element(By.ID, "form-error").text
    # What the page cannot read is said under its field, and nothing is sent.
    sent = len(calls(browser, ":stream"))
    count.clear()
    count.send_keys("0")
    generate.click()
    assert "1 or more" in field_error(browser, "count")
    count.clear()
    count.send_keys("1")
    set_fields(browser, {"digit": "1e"})
    generate.click()
    assert field_error(browser, "parameters.digit") == "not a number"
    assert len(calls(browser, ":stream")) == sent
    # A file's error is said under the files.
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture")
    pick(browser, "effect.upscale", "effect")
    browser.find_element(By.ID, "files").send_keys(str(fake))
    generate.click()
    assert field_error(browser, "inputs").startswith("file 1: unsupported or undecodable image")
    idle(browser)
    # MIDI is offered to download, not played; a loop clicked three times at once plays once.
    pick(browser, "music.melody")
    set_fields(browser, {"bars": "1", "stems": "false", "loop": "true"})
    for format in ("wav", "mid"):
        Select(browser.find_element(By.ID, "format")).select_by_value(format)
        midi = generate_one(browser)
    assert "MIDI" in midi.text and midi.find_elements(By.CSS_SELECTOR, "a[download]")
    assert not midi.find_elements(By.TAG_NAME, "audio")
    assert not midi.find_elements(By.XPATH, ".//button[text()='Play as a loop']")
    looped = cards(browser)[1].find_element(By.XPATH, ".//button[text()='Play as a loop']")
    browser.execute_script("arguments[0].click(); arguments[0].click(); arguments[0].click()", looped)
    wait(browser).until(lambda d: looped.get_attribute("aria-pressed") == "true" and looped.is_enabled())
    looped.click()
    wait(browser).until(lambda d: looped.get_attribute("aria-pressed") == "false")
    assert all("status of 400" in m for m in console_errors(browser)), console_errors(browser)


def test_list_parameters_are_chosen_or_typed_as_json(browser: Any, served: tuple[str, str],
                                                     tmp_path: Path) -> None:
    from PIL import Image

    record_calls(browser)
    sketch = tmp_path / "sketch.png"
    lines = np.full((64, 64, 3), 255, dtype=np.uint8)
    lines[16:48, 16] = lines[16:48, 47] = lines[16, 16:48] = lines[47, 16:48] = 0
    Image.fromarray(lines).save(sketch)
    pick(browser, "effect.sketch", "effect")
    Select(browser.find_element(By.ID, "field-roles")).select_by_value('"sketch"')
    browser.find_element(By.ID, "files").send_keys(str(sketch))
    generate_one(browser)
    assert not browser.find_element(By.ID, "form-error").text
    assert '"roles":["sketch"]' in calls(browser, ":stream")[-1]["body"]
    pick(browser, "image.faces")
    set_request(browser)
    draws = browser.find_element(By.ID, "field-draws")
    draws.send_keys('[{"seed": "5"')
    sent = len(calls(browser, ":stream"))
    browser.find_element(By.ID, "generate-button").click()
    assert field_error(browser, "parameters.draws").startswith("not valid JSON")
    assert len(calls(browser, ":stream")) == sent
    draws.send_keys(', "index": 1}]')
    generate_one(browser)
    assert not browser.find_element(By.ID, "form-error").text
    assert '"draws":[{"seed":"5","index":1}]' in calls(browser, ":stream")[-1]["body"]
    assert all("status of 400" in m for m in console_errors(browser)), console_errors(browser)


def test_the_page_passes_the_axe_accessibility_rules(browser: Any, served: tuple[str, str]) -> None:
    """axe-core (vendored from npm, scripts/vendor_axe.py) run in the page as the earlier tests left
    it: a form, results of every kind, ratings and suggestions."""
    browser.execute_script(AXE.read_text())
    found = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ['violations']}).then((r) => done(r.violations.map(
          (v) => ({id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help}))));""")
    report = [f"{v['impact']} {v['id']} ({v['nodes']}): {v['help']}" for v in found]
    (SHOTS / "axe.txt").write_text("\n".join(report) or "no violation\n")
    serious = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not serious, serious


def test_a_key_that_cannot_be_sent_is_said_in_the_dialog_and_never_kept(browser: Any,
                                                                         served: tuple[str, str]) -> None:
    _, key = served
    browser.find_element(By.ID, "key-button").click()
    for typed, said in (("mf_★", "“★” (U+2605)"), ("", "Type or paste a key first")):
        use_key(browser, typed)
        wait(browser).until(seen.text_to_be_present_in_element((By.ID, "key-error"), said))
        assert browser.find_element(By.ID, "key-dialog").is_displayed()
        assert browser.execute_script("return sessionStorage.getItem('museforge.key')") == key
    browser.find_element(By.ID, "key-cancel").click()
    # One kept by an older page is dropped, not sent: the page asks for a key rather than failing.
    browser.execute_script("sessionStorage.setItem('museforge.key', 'mf_★')")
    browser.refresh()
    use_key(browser, key)
    wait(browser).until(seen.text_to_be_present_in_element((By.ID, "server-state"), "effects ready"))
    # A key the server refuses during a Generate is said in the key dialog.
    pick(browser, "image.digits")
    browser.find_element(By.ID, "key-button").click()
    use_key(browser, "mf_nothing")
    wait(browser).until(seen.text_to_be_present_in_element((By.ID, "key-error"), "unknown API key"))
    browser.find_element(By.ID, "key-cancel").click()
    browser.find_element(By.ID, "generate-button").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "key-dialog").is_displayed())
    assert "refused" in browser.find_element(By.ID, "key-error").text
    use_key(browser, key)
    wait(browser).until(seen.text_to_be_present_in_element((By.ID, "server-state"), "effects ready"))
    assert all("401" in m for m in console_errors(browser)), console_errors(browser)


def test_many_watched_jobs_leave_the_page_its_connections(browser: Any, served: tuple[str, str],
                                                          root: Path) -> None:
    # Each watch held one of the browser's six connections to the server for its job's whole run:
    # six unfinished jobs, and nothing else the page did (Generate, Cancel) reached the server.
    from tests.core.jobs_helpers import write_frames

    write_frames(root / "in", 1, 60, size=(640, 480), pattern="big.{:04d}.png")  # jobs of many seconds
    browser.find_element(By.ID, "jobs-button").click()
    before = len(browser.find_elements(By.CSS_SELECTOR, "#job-list .job"))
    for n in range(7):
        submit_job(browser, "big.####.png", 1, 60, f"many{n}/big.####.png")
        wait(browser, 60).until(lambda d, n=n: len(d.find_elements(By.CSS_SELECTOR, "#job-list .job"))
                                >= before + n + 1)
    pick(browser, "image.digits")
    card = generate_one(browser)  # answered while seven jobs are queued or running
    assert card.get_attribute("data-generator") == "image.digits"
    browser.find_element(By.ID, "jobs-button").click()
    jobs = browser.find_elements(By.CSS_SELECTOR, "#job-list .job")[:7]
    for job in jobs:
        job.find_element(By.CLASS_NAME, "cancel").click()
    for job in jobs:
        wait(browser, 120).until(
            lambda d, job=job: job.get_attribute("data-state") in ("cancelled", "succeeded"))


def test_a_frame_number_the_browser_cannot_read_is_said_not_sent_as_zero(browser: Any,
                                                                         served: tuple[str, str]) -> None:
    record_calls(browser)
    submit_job(browser, "long.####.png", 1, 3, "unread/long.####.png")  # then make the first unreadable
    browser.find_element(By.ID, "jobs-button").click()
    sent = len(job_submissions(browser))
    first = browser.find_element(By.ID, "job-first")
    first.clear()
    first.send_keys("1e")
    browser.find_element(By.ID, "job-submit").click()
    slot = browser.find_element(By.CSS_SELECTOR, '[data-field="job.input.first_frame"] .field-error')
    wait(browser).until(lambda d: slot.text)
    assert slot.text == "not a number" and len(job_submissions(browser)) == sent
