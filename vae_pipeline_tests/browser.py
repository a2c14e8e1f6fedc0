"""Headless Chromium, for checking rendered pages and taking screenshots (no Playwright).

Debian's ``chromium`` package; each call uses a fresh profile and the flags that keep it from
reaching the network on its own (background updates, sync, QUIC), so it works offline.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
# Resolve no host name at all: proves a page needs nothing from the network.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]


def chromium_path() -> str | None:
    """The Chromium executable, or None when it is not installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def as_url(target: str | Path) -> str:
    text = str(target)
    return text if "://" in text else Path(text).resolve().as_uri()


def dump_dom(
    target: str | Path, budget_ms: int = 15000, timeout: float = 90, offline: bool = False
) -> str:
    """The page's DOM after its scripts ran (``--virtual-time-budget`` ms of page time)."""
    args = [f"--virtual-time-budget={budget_ms}", "--dump-dom", as_url(target)]
    done = _run((OFFLINE if offline else []) + args, timeout)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def screenshot(
    target: str | Path,
    out: str | Path,
    width: int = 1400,
    height: int = 900,
    budget_ms: int = 15000,
    timeout: float = 90,
    offline: bool = False,
) -> Path:
    """A PNG of the first ``width`` x ``height`` pixels of the rendered page."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [
        f"--window-size={width},{height}",
        f"--virtual-time-budget={budget_ms}",
        f"--screenshot={out.resolve()}",
        as_url(target),
    ]
    done = _run((OFFLINE if offline else []) + args, timeout)
    if not out.exists():
        raise RuntimeError(
            f"chromium wrote no screenshot ({done.returncode}): {done.stderr[-2000:]}"
        )
    return out


class Page:
    """One headless-Chromium tab driven over the DevTools protocol (for live pages such as the
    Streamlit app, whose content arrives over a websocket after the load event).

        with Page() as page:
            page.goto("http://127.0.0.1:8501")
            text = page.wait_for(["Partition"], timeout=60)

    Needs the ``websockets`` package (a Streamlit dependency).
    """

    def __init__(self, width: int = 1400, height: int = 900, offline: bool = False) -> None:
        self.width, self.height, self.offline = width, height, offline
        self._next_id = 0

    def __enter__(self) -> Page:
        import json
        import time
        import urllib.request

        from websockets.sync.client import connect

        exe = chromium_path()
        if exe is None:
            raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        args = [
            exe,
            *FLAGS,
            *(OFFLINE if self.offline else []),
            f"--user-data-dir={self._profile.name}",
            f"--window-size={self.width},{self.height}",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            "about:blank",
        ]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.__exit__(None, None, None)
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split("\n")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        # entered as a context manager (websockets >= 15 warns on a bare connect(); closed by
        # __exit__ through the connection's close)
        self._ws = connect(url, max_size=None, open_timeout=10).__enter__()
        self._metrics(self.height)
        return self

    def _metrics(self, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self._height_now = height

    def call(self, method: str, timeout: float = 30, **params):
        """Send one DevTools command and return its result (events in between are dropped)."""
        import json

        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=timeout))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def goto(self, url: str | Path) -> None:
        self.call("Page.navigate", url=as_url(url))

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for(self, needles: list[str], timeout: float = 60) -> str:
        """The page's visible text once it contains every needle; TimeoutError otherwise."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if all(n in text for n in needles):
                return text
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never showed {needles}; it shows:\n{text[-3000:]}")
            time.sleep(0.25)

    def screenshot(self, out: str | Path, height: int | None = None) -> Path:
        """PNG of the tab at ``height`` CSS pixels tall (default: the window height)."""
        import base64

        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if (height or self.height) != self._height_now:
            import time

            self._metrics(height or self.height)
            time.sleep(1.0)  # let the page lay out at the new size
        data = self.call("Page.captureScreenshot", format="png")["data"]
        out.write_bytes(base64.b64decode(data))
        return out

    def __exit__(self, *exc) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            ws.close()
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._profile.cleanup()
