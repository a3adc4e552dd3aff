"""The studio in Chromium as an artist new to it meets it: how many files an effect takes said
plainly, a file too large for one request said under the files in megabytes, every form within a
phone's width, each finished call announced with where its results went, the file chooser
offering what the effect takes, and the lists saying a key is needed when none is given. Its own
server, with a small http_max_body_bytes so that a too-large file is a small one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen

from museforge.config import Settings
from museforge.server.auth import KeyFile
from tests.servers import ServerThread
from tests.studio import test_studio_browser as chromium
from tests.studio.test_studio_browser import pick, use_key, wait

browser = chromium.browser  # the same headless Chromium fixture, for this module's server
LIMIT = 256 * 1024  # bytes of one request body


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("artist")
    key, _ = KeyFile(root / "api_keys.json").create("artist", ["generate", "read"])
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", auth=True,
                        api_keys_file=str(root / "api_keys.json"), plugins=["image", "effect", "video"],
                        data_dir=str(root / "data"), http_max_body_bytes=LIMIT)
    with ServerThread(settings) as server:
        assert server.running is not None and server.running.gateway is not None
        yield f"http://{server.running.gateway.address}", key


def test_an_effect_taking_exactly_two_files_says_two_files(browser: Any, served: tuple[str, str]) -> None:
    url, key = served
    browser.get(url + "/")
    use_key(browser, key)
    wait(browser).until(seen.text_to_be_present_in_element((By.ID, "server-state"), "effects ready"))
    pick(browser, "effect.interpolate", "effect")
    assert browser.find_element(By.ID, "files-help").text.startswith("(2 files: png")
    pick(browser, "effect.sketch", "effect")
    assert browser.find_element(By.ID, "files-help").text.startswith("(1 to 4 files: png")


def test_a_file_too_large_for_one_request_is_said_under_the_files(browser: Any, served: tuple[str, str],
                                                                   tmp_path: Path) -> None:
    big = tmp_path / "scan.png"
    big.write_bytes(bytes(300_000))  # 0.3 MB, 0.4 MB in base64: past the 256 KiB a request may hold
    pick(browser, "effect.upscale", "effect")
    browser.find_element(By.ID, "files").send_keys(str(big))
    browser.find_element(By.ID, "generate-button").click()
    under = browser.find_element(By.CSS_SELECTOR, "#inputs-box .field-error")
    wait(browser).until(lambda d: under.text)
    assert under.text.startswith("0.3 MB of files is more than this server takes in one request"), under.text
    assert "http_max_body_bytes" not in browser.find_element(By.ID, "generate-form").text
    assert browser.find_element(By.ID, "form-error").text == ""
    assert not browser.find_element(By.ID, "progress-box").is_displayed()


def test_a_finished_call_is_announced_with_where_its_results_are_at_phone_width(
        browser: Any, served: tuple[str, str]) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 360, "height": 780, "deviceScaleFactor": 2, "mobile": True})
    try:
        for name, kind in (("effect.upscale", "effect"), ("image.digits", "generator")):
            pick(browser, name, kind)  # an effect's file picker too: nothing scrolls sideways
            assert browser.execute_script("return document.documentElement.scrollWidth") == 360, name
        browser.find_element(By.ID, "count").clear()
        browser.find_element(By.ID, "count").send_keys("2")
        browser.find_element(By.ID, "generate-button").click()
        status = browser.find_element(By.ID, "generate-status")
        wait(browser).until(lambda d: status.text)
        assert status.get_attribute("role") == "status"
        assert status.text == "2 results added to Results, newest first."
        assert len(browser.find_elements(By.CSS_SELECTOR, "#gallery .card")) == 2
        # The gallery sits below the form at this width: the announcement is what says it is there.
        assert browser.execute_script("const top = (id) => document.getElementById(id).getBoundingClientRect"
                                      "().top; return top('gallery') > top('generate-button')")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_file_chooser_offers_what_the_effect_takes(browser: Any, served: tuple[str, str]) -> None:
    def offered() -> set[str]:
        return set(browser.find_element(By.ID, "files").get_attribute("accept").split(","))

    pick(browser, "effect.sketch", "effect")  # drawings: no EXR
    assert {".png", "image/png", ".jpg", ".jpeg", "image/jpeg", ".webp", "image/webp"} <= offered()
    assert ".exr" not in offered() and "image/x-exr" not in offered()
    pick(browser, "effect.upscale", "effect")  # frame-wise: its images, and a video run frame by frame
    assert {".exr", ".png", "image/png", ".mp4", "video/mp4", ".mov", ".mkv", ".webm"} <= offered()
    pick(browser, "video.shots", "effect")  # a video whole: videos alone
    assert ".mp4" in offered() and not any(t.startswith("image/") or t == ".png" for t in offered())
    pick(browser, "video.autocut", "effect")  # footage and a soundtrack
    assert {".mp4", "video/mp4", ".wav", ".mp3", "audio/mpeg"} <= offered() and ".png" not in offered()


def test_without_a_key_the_lists_say_so_and_offer_the_dialog_again(browser: Any,
                                                                    served: tuple[str, str]) -> None:
    _, key = served
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    wait(browser).until(seen.visibility_of_element_located((By.ID, "key-dialog")))
    browser.find_element(By.ID, "key-cancel").click()
    for list_id, what in (("generators", "generators"), ("effects", "effects")):
        line = browser.find_element(By.CSS_SELECTOR, f"#{list_id} .needs-key")
        assert line.is_displayed()
        assert line.text.startswith(f"The {what} are listed once this server has your API key."), line.text
    browser.find_element(By.CSS_SELECTOR, "#effects .needs-key button").click()
    use_key(browser, key)  # the dialog is back, and a key lists them
    wait(browser).until(seen.text_to_be_present_in_element((By.ID, "server-state"), "effects ready"))
    assert not browser.find_elements(By.CSS_SELECTOR, "nav .needs-key")
    assert browser.find_elements(By.CSS_SELECTOR, '#effects button[data-effect="effect.upscale"]')
