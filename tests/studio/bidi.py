"""Firefox driven through WebDriver BiDi, the W3C protocol Firefox itself serves (no geckodriver).

Debian ships Firefox ESR; the geckodriver that Selenium needs is in no package registry reachable
here, but Firefox answers WebDriver BiDi on ``--remote-debugging-port`` directly. It runs on an
Xvfb display (Debian's ``xvfb``) so WebGL works on Mesa's software renderer. This is the small
part of the protocol the studio's tests use: navigate, run a script, click and type with real input
events, pick files for an ``<input type=file>``, take a screenshot, and collect console errors.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import websocket  # websocket-client, which Selenium depends on

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")
XVFB = shutil.which("Xvfb")
# Prefs of the throwaway profile: WebGL on a software renderer (no GPU here), media that plays
# without a gesture, no first-run pages or updates.
PREFS = {
    "webgl.force-enabled": True,
    "media.autoplay.default": 0,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "app.update.disabledForTesting": True,
    "datareporting.policy.dataSubmissionEnabled": False,
}


class BidiError(RuntimeError):
    """A command the browser answered with an error, or a script that threw."""


class Firefox:
    """A headless Firefox with one tab, driven by WebDriver BiDi; close() ends it."""

    def __init__(self, width: int = 1400, height: int = 1000, timeout: float = 60.0) -> None:
        if FIREFOX is None:
            raise RuntimeError("no Firefox: apt-get install firefox-esr")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="museforge-firefox-")
        Path(self.profile, "user.js").write_text(
            "".join(f'user_pref("{k}", {json.dumps(v)});\n' for k, v in PREFS.items()))
        # On a virtual X display when there is one: Firefox's headless mode has no WebGL without a GPU.
        self.display = VirtualDisplay(width, height) if XVFB else None
        environment = {**os.environ, "DISPLAY": self.display.name} if self.display else None
        self.process = subprocess.Popen(
            [FIREFOX, *([] if self.display else ["--headless"]), "--no-remote", "--remote-debugging-port=0",
             "--profile", self.profile, f"--width={width}", f"--height={height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment)
        self.socket = websocket.create_connection(f"{self._address()}/session", suppress_origin=True,
                                                  timeout=timeout)
        self._next = 0
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.command("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": False}}})
        self.command("session.subscribe", {"events": ["log.entryAdded"]})
        self.context = self.command("browsingContext.getTree", {})["contexts"][0]["context"]

    def _address(self) -> str:
        """The WebSocket address Firefox prints once it listens (it picked a free port)."""
        assert self.process.stderr is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                break
            found = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
            if found:
                threading.Thread(target=self._drain, daemon=True).start()  # keep its pipe from filling
                return found.group(1)
        raise RuntimeError(f"Firefox did not start WebDriver BiDi (exit {self.process.poll()})")

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for _ in self.process.stderr:
            pass

    def _read(self) -> None:
        while True:
            try:
                message = json.loads(self.socket.recv())
            except Exception:  # closed: every waiting command gets an error
                for waiting in list(self._replies.values()):
                    waiting.put({"type": "error", "error": "closed", "message": "the browser went away"})
                return
            if "id" in message and message["id"] in self._replies:
                self._replies[message["id"]].put(message)
            elif message.get("type") == "event":
                self.events.append(message)

    def command(self, method: str, params: dict[str, Any], timeout: float | None = None) -> Any:
        with self._lock:
            self._next += 1
            number = self._next
            self._replies[number] = queue.Queue()
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        try:
            reply = self._replies[number].get(timeout=timeout or self.timeout)
        except queue.Empty:
            raise BidiError(f"{method}: no answer in {timeout or self.timeout} s") from None
        finally:
            del self._replies[number]
        if reply.get("type") == "error":
            raise BidiError(f"{method}: {reply.get('error')}: {reply.get('message')}")
        return reply["result"]

    # -- what a test does -----------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def run(self, body: str, *args: Any) -> Any:
        """The JSON value a function body returns (awaited), called with ``args`` (JSON values)."""
        source = f"async (...args) => JSON.stringify((await (async () => {{ {body} }})()) ?? null)"
        result = self.command("script.callFunction", {
            "functionDeclaration": source, "awaitPromise": True, "target": {"context": self.context},
            "arguments": [_remote(a) for a in args]})
        if result.get("type") == "exception":
            raise BidiError(result["exceptionDetails"].get("text", "script error"))
        return json.loads(result["result"]["value"])

    def wait(self, body: str, *args: Any, seconds: float = 60.0, what: str = "") -> Any:
        """Run ``body`` until it returns something truthy; that value."""
        deadline = time.monotonic() + seconds
        while True:
            value = self.run(body, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {seconds} s for {what or body}")
            time.sleep(0.2)

    def element(self, selector: str) -> dict[str, Any]:
        """A reference to the first element matching ``selector`` (for input.setFiles)."""
        found = self.command("script.evaluate", {
            "expression": f"document.querySelector({json.dumps(selector)})", "awaitPromise": False,
            "target": {"context": self.context}, "resultOwnership": "root"})
        node = found.get("result", {})
        if node.get("type") != "node":
            raise BidiError(f"no element matches {selector}")
        return {"sharedId": node["sharedId"]}

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element (scrolled into view first), aimed at the
        element itself when the click happens, so a layout that moves in between cannot miss it."""
        self.run("""const e = document.querySelector(args[0]);
            if (!e) throw new Error('no element ' + args[0]);
            e.scrollIntoView({block: 'center'});""", selector)
        at = {"type": "pointerMove", "x": 0, "y": 0, "duration": 30,
              "origin": {"type": "element", "element": self.element(selector)}}
        self.command("input.performActions", {"context": self.context, "actions": [
            {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
                at, {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]}]})

    def pointer(self, steps: list[tuple[Any, ...]]) -> None:
        """Mouse actions: ("move", x, y) in the viewport, ("down",), ("up",)."""
        actions: list[dict[str, Any]] = []
        for step in steps:
            if step[0] == "move":
                actions.append({"type": "pointerMove", "x": step[1], "y": step[2], "duration": 30})
            else:
                actions.append({"type": f"pointer{step[0].capitalize()}", "button": 0})
        self.command("input.performActions", {"context": self.context, "actions": [
            {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": actions}]})

    def type(self, selector: str, text: str, clear: bool = True) -> None:
        """Focus the field (emptied first) and type ``text`` with real key events."""
        self.run("""const e = document.querySelector(args[0]); e.focus();
            if (args[1]) { e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); }""",
                 selector, clear)
        self.keys(list(text))

    def keys(self, keys: list[str]) -> None:
        """Key presses; a key is a character or a WebDriver key code such as "\\ue007" (Enter)."""
        actions: list[dict[str, Any]] = []
        for key in keys:
            actions += [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]
        self.command("input.performActions", {"context": self.context, "actions": [
            {"type": "key", "id": "keyboard", "actions": actions}]})

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Pick files for an ``<input type=file>``, as the file chooser does (input and change fire)."""
        self.command("input.setFiles", {"context": self.context, "element": self.element(selector),
                                        "files": [str(p) for p in paths]})

    def select(self, selector: str, value: str) -> None:
        self.run("""const e = document.querySelector(args[0]); e.value = args[1];
            e.dispatchEvent(new Event('change', {bubbles: true}));""", selector, value)

    def screenshot(self, path: Path) -> None:
        found = self.command("browsingContext.captureScreenshot", {"context": self.context})
        path.write_bytes(base64.b64decode(found["data"]))

    def console_errors(self, keep: Callable[[str], bool] = lambda _: True) -> list[str]:
        """Console errors and uncaught exceptions logged so far (``keep`` filters them)."""
        found = []
        for event in self.events:
            entry = event.get("params", {})
            if event.get("method") == "log.entryAdded" and entry.get("level") == "error":
                text = entry.get("text") or ""
                if keep(text):
                    found.append(text)
        return found

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already gone: only the process is left to end
            self.command("session.end", {}, timeout=10)
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)
            if self.display is not None:
                self.display.close()


class VirtualDisplay:
    """An Xvfb X server on a display number it picks itself (software OpenGL through Mesa)."""

    def __init__(self, width: int, height: int) -> None:
        assert XVFB is not None
        read, write = os.pipe()
        self.process = subprocess.Popen(
            [XVFB, "-displayfd", str(write), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.close()
            raise RuntimeError("Xvfb did not start")
        self.name = f":{number}"

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _remote(value: Any) -> dict[str, Any]:
    """A JSON value as a BiDi argument."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean", "value": value}
    if isinstance(value, (int, float)):
        return {"type": "number", "value": value}
    if isinstance(value, str):
        return {"type": "string", "value": value}
    if isinstance(value, list):
        return {"type": "array", "value": [_remote(v) for v in value]}
    if isinstance(value, dict):
        return {"type": "object", "value": [[k, _remote(v)] for k, v in value.items()]}
    raise TypeError(f"cannot send {type(value).__name__} to the page")
