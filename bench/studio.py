"""``python -m bench.studio``: the studio's page weight, and time to first result in a real browser.

A server with the HTTP gateway (no keys) serves the studio; Debian's headless Chromium opens it,
and Firefox ESR (on an Xvfb display, driven over WebDriver BiDi as in the tests) when it is there.
Page weight: the bytes of every file the page loads (as the browser's resource timing reports
them, beside the files on disk). Time to first result: from the click on Generate to the
image decoded in the gallery, for image.texture (512 x 512) and music.melody (4 bars, WAV),
beside the same request made with the HTTP API directly (urllib, the JSON decoded), so the
page's own cost shows. Best of three runs each.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .report import table

CASES = (("image.texture", {"family": "brick"}, "png", "img"), ("music.melody", {"bars": 4}, "wav", "audio"))
RUNS = 3


def direct(base: str, generator: str, parameters: dict[str, Any], fmt: str) -> float:
    body = json.dumps({"parameters": parameters, "seed": 1, "format": fmt}).encode()
    request = urllib.request.Request(f"{base}/v1/generators/{generator}:generate", body,
                                     {"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as reply:
        document = json.loads(reply.read())
    base64.b64decode(document["artifacts"][0]["data"])
    return time.perf_counter() - started


def in_page(driver: Any, generator: str, parameters: dict[str, Any], fmt: str, tag: str) -> float:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.find_element(By.CSS_SELECTOR, f'nav button[data-generator="{generator}"]').click()
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "generator-title").text == generator)
    for name, value in parameters.items():
        field = driver.find_element(By.ID, f"field-{name}")
        if field.tag_name == "select":
            Select(field).select_by_visible_text(str(value))
        else:
            field.clear()
            field.send_keys(str(value))
    driver.find_element(By.ID, "seed").clear()
    driver.find_element(By.ID, "seed").send_keys("1")
    Select(driver.find_element(By.ID, "format")).select_by_value(fmt)
    before = len(driver.find_elements(By.CSS_SELECTOR, f"#gallery .card {tag}"))
    wait = "naturalWidth > 0" if tag == "img" else "readyState >= 1"
    elapsed = driver.execute_async_script(f"""
        const done = arguments[arguments.length - 1];
        const started = performance.now();
        document.getElementById('generate-button').click();
        const check = () => {{
          const found = document.querySelectorAll('#gallery .card {tag}');
          if (found.length > {before} && found[0].{wait}) done((performance.now() - started) / 1000);
          else setTimeout(check, 5);
        }};
        check();""")
    return float(elapsed)


CLICK_TO_SHOWN = """
    const [tag, before] = args;
    const started = performance.now();
    document.getElementById('generate-button').click();
    while (true) {
      const found = document.querySelectorAll('#gallery .card ' + tag);
      if (found.length > before && (tag === 'img' ? found[0].naturalWidth > 0 : found[0].readyState >= 1)) {
        return (performance.now() - started) / 1000;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }"""


def in_firefox(browser: Any, generator: str, parameters: dict[str, Any], fmt: str, tag: str) -> float:
    """The same as :func:`in_page`, in Firefox."""
    browser.click(f'nav button[data-generator="{generator}"]')
    browser.wait("return document.getElementById('generator-title').textContent === args[0]", generator)
    for name, value in parameters.items():
        if browser.run("return document.getElementById(args[0]).tagName", f"field-{name}") == "SELECT":
            browser.select(f"#field-{name}", json.dumps(value))
        else:
            browser.type(f"#field-{name}", str(value))
    browser.type("#seed", "1")
    browser.select("#format", fmt)
    before = browser.run("return document.querySelectorAll('#gallery .card ' + args[0]).length", tag)
    return float(browser.run(CLICK_TO_SHOWN, tag, before))


def firefox_times(base: str) -> list[float] | None:
    """Best-of-three click-to-shown times per case in Firefox; None without Firefox and Xvfb."""
    from tests.studio.bidi import FIREFOX, XVFB, Firefox

    if not (FIREFOX and XVFB):
        return None
    browser = Firefox()
    try:
        browser.open(base + "/")
        browser.wait("return !!document.querySelector('#generators button')")
        return [min(in_firefox(browser, *case) for _ in range(RUNS)) for case in CASES]
    finally:
        browser.close()


def main(argv: Sequence[str] | None = None) -> int:
    from selenium import webdriver

    from museforge.config import Settings
    from tests.servers import ServerThread

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        print("needs Debian's chromium and chromium-driver", file=sys.stderr)
        return 1
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image", "music"])
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    with ServerThread(settings) as server:
        assert server.running is not None and server.running.gateway is not None
        base = f"http://{server.running.gateway.address}"
        service = webdriver.ChromeService(executable_path=driver_path)
        driver = webdriver.Chrome(options=options, service=service)
        try:
            started = time.perf_counter()
            driver.get(base + "/")
            driver.execute_async_script("""
                const done = arguments[arguments.length - 1];
                const check = () => (document.querySelector('#generators button') ? done()
                                                                                   : setTimeout(check, 5));
                check();""")
            ready = time.perf_counter() - started
            loaded = driver.execute_script("""
                const entries = performance.getEntriesByType('navigation');
                return entries.concat(performance.getEntriesByType('resource'))
                  .filter((e) => !e.name.includes('/v1/'))
                  .map((e) => [new URL(e.name).pathname, e.encodedBodySize]);""")
            rows = []
            for generator, parameters, fmt, tag in CASES:
                direct(base, generator, parameters, fmt)  # models warm
                api = min(direct(base, generator, parameters, fmt) for _ in range(RUNS))
                page = min(in_page(driver, generator, parameters, fmt, tag) for _ in range(RUNS))
                rows.append([f"{generator} ({fmt})", f"{api:.3f}", f"{page:.3f}", f"{page - api:+.3f}"])
        finally:
            driver.quit()
        other = firefox_times(base)
    for number, row in enumerate(rows):
        seconds = None if other is None else other[number]
        row.extend(["-", "-"] if seconds is None else [f"{seconds:.3f}", f"{seconds - float(row[1]):+.3f}"])
    files = Path(__file__).resolve().parent.parent / "core" / "studio"
    weight = [[path, str(size)] for path, size in loaded]
    total = sum(size for _, size in loaded)
    on_disk = sum(p.stat().st_size for p in files.iterdir() if p.is_file())
    print("\n".join([
        table([*weight, ["all the page loads", str(total)]], ["file", "bytes"], right={1}), "",
        f"studio files on disk: {on_disk} bytes; the page opened to its generators listed: {ready:.3f} s",
        "",
        table(rows, ["first result", "HTTP API s", "Chromium s (click to shown)", "page's own cost s",
                     "Firefox s", "page's own cost s"], right={1, 2, 3, 4, 5}),
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
