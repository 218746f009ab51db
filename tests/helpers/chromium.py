"""Headless Chromium driven over the Chrome DevTools Protocol, for the dashboard's browser test.

The browser is the system's (Debian's ``chromium`` package; ``tools/chromium.sh`` installs it)
and the protocol runs over ``--remote-debugging-pipe``: the browser reads commands on fd 3 and
writes answers and events on fd 4, one JSON object each, NUL-terminated. Why not playwright or
selenium: playwright installs 167 MB (its Node driver) into the environment to speak this same
protocol, and is only promised to work with the browser builds it downloads itself, which this
project's machines cannot fetch; selenium needs a chromedriver of the same version and its
manager downloads one when it finds none. The browser speaks its own protocol version, and the
five commands this test needs (navigate, wait for load, evaluate, screenshot, collect errors)
fit in this module.

Errors collected per page: uncaught exceptions (``Runtime.exceptionThrown``), ``console.error``
and ``console.assert`` (``Runtime.consoleAPICalled``), browser log errors such as a resource that
failed to load (``Log.entryAdded``) and failed network loads (``Network.loadingFailed``).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 60.0


def find_chromium() -> str | None:
    """``$QA_BENCH_CHROMIUM``, else the first of ``CANDIDATES`` on the PATH."""
    given = os.environ.get("QA_BENCH_CHROMIUM")
    if given:
        return given if Path(given).exists() or shutil.which(given) else None
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


class BrowserError(RuntimeError):
    """The browser answered a command with an error, died, or did not answer in time."""


class Browser:
    """One headless Chromium with one page; ``open(url)`` returns the errors the page raised."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900) -> None:
        self._profile = tempfile.mkdtemp(prefix="qa-bench-chromium-")
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()
        # The child gets the pipe ends as fds 3 and 4; first move them above 4 in the parent so
        # that the dup2 calls in the child cannot overwrite one with the other.
        high = [_fd_at_least(fd, 10) for fd in (commands_read, answers_write)]
        for fd in (commands_read, answers_write):
            os.close(fd)

        def child_fds() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        args = [executable, "--headless", "--remote-debugging-pipe", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
                "--mute-audio", "--disable-extensions", f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}"]
        if os.geteuid() == 0:  # Chromium refuses to run as root with its sandbox
            args.append("--no-sandbox")
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         close_fds=False, preexec_fn=child_fds)
        for fd in high:
            os.close(fd)
        self._next_id = 0
        self._pending: dict[int, queue.Queue] = {}
        self._events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr: list[bytes] = []
        threading.Thread(target=lambda: self._stderr.extend(self._process.stderr),
                         daemon=True).start()
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target,
                                  flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride", session=True, width=width,
                  height=height, deviceScaleFactor=1, mobile=False)

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._answers, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        with self._lock:
                            waiting = self._pending.pop(message["id"], None)
                        if waiting is not None:
                            waiting.put(message)
                    else:
                        self._events.put(message)

    def send(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one command (to the page's session when ``session``) and wait for its answer."""
        with self._lock:
            self._next_id += 1
            number = self._next_id
            self._pending[number] = answer = queue.Queue()
        message = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        try:
            reply = answer.get(timeout=TIMEOUT_S)
        except queue.Empty:
            raise BrowserError(f"{method}: no answer in {TIMEOUT_S:.0f} s "
                               f"(browser stderr: {self.stderr()[-500:]})") from None
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def stderr(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")

    def _drain(self) -> list[dict[str, Any]]:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def open(self, url: str) -> list[str]:
        """Load ``url``, wait for its load event (and a quiet moment), return its errors."""
        self._drain()
        navigated = self.send("Page.navigate", session=True, url=url)
        if navigated.get("errorText"):
            return [f"navigation failed: {navigated['errorText']}"]
        events, deadline, loaded = [], time.monotonic() + TIMEOUT_S, None
        while time.monotonic() < deadline:
            try:
                event = self._events.get(timeout=0.2)
            except queue.Empty:
                if loaded is not None and time.monotonic() - loaded > 0.3:
                    break
                continue
            events.append(event)
            if event.get("method") == "Page.loadEventFired":
                loaded = time.monotonic()
        else:
            raise BrowserError(f"{url}: no load event in {TIMEOUT_S:.0f} s")
        return [e for e in (_error(event) for event in events) if e]

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page."""
        result = self.send("Runtime.evaluate", session=True, expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, selector: str | None = None) -> Path:
        """A PNG of the whole page, or of the element ``selector`` matches."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if selector:
            box = self.evaluate(f"(() => {{ const r = document.querySelector({selector!r})"
                                ".getBoundingClientRect(); return {x: r.x + scrollX, "
                                "y: r.y + scrollY, width: r.width, height: r.height}; })()")
            params["clip"] = {**box, "scale": 1}
        else:
            size = self.evaluate("({width: document.documentElement.scrollWidth, "
                                 "height: document.documentElement.scrollHeight})")
            params["clip"] = {"x": 0, "y": 0, **size, "scale": 1}
        data = self.send("Page.captureScreenshot", session=True, **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            os.close(self._commands)  # the browser exits when its command pipe closes
            self._process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()
        finally:
            shutil.rmtree(self._profile, ignore_errors=True)


def _fd_at_least(fd: int, low: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD, low)


def _error(event: dict[str, Any]) -> str | None:
    """The error an event reports, as one line, or None."""
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        return "uncaught: " + str((details.get("exception") or {}).get("description")
                                  or details.get("text"))
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return "console.error: " + " ".join(str(a.get("value", a.get("description")))
                                            for a in params.get("args", []))
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return f"log: {entry.get('text')} {entry.get('url', '')}".strip()
    if method == "Network.loadingFailed" and not params.get("canceled"):
        return f"load failed: {params.get('errorText')}"
    return None


@contextmanager
def browser(executable: str, width: int = 1280, height: int = 900) -> Iterator[Browser]:
    """A ``Browser`` closed at the end of the block."""
    opened = Browser(executable, width, height)
    try:
        yield opened
    finally:
        opened.close()
