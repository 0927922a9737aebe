"""``agegender serve`` as a real process on 127.0.0.1, driven over HTTP and by Debian's Chromium (headless,
through Playwright for Python; never ``playwright install``).

Set AGEGENDER_SCREENSHOT=/some/file.png to keep a screenshot of the page with results.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) talks to the live server")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--disable-default-apps", "--disable-extensions", "--metrics-recording-only"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    """``python -m agegender.cli serve`` on a free port of 127.0.0.1 (1 MiB upload limit), stopped afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGEGENDER_")}
    cmd = [sys.executable, "-m", "agegender.cli", "serve", "--port", str(port), "--max-upload-mb", "1",
           "--workers", "1"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"agegender serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"agegender serve not ready after 90 s:\n{log.read_text()}")
            time.sleep(0.3)
        yield LiveServer(url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_live_server_curl_like_and_clean_log(live_server, astronaut_path):
    """The issue's check: faces as JSON, 413 over the limit, 415 for text, and no traceback in the log."""
    url = live_server.url
    r = httpx.post(f"{url}/v1/predict", files={"file": ("photo-of-anna.png", astronaut_path.read_bytes())}, timeout=60)
    assert r.status_code == 200 and len(r.json()["faces"]) == 1
    big = os.urandom(3 * 1024 * 1024)
    r = httpx.post(f"{url}/v1/predict", files={"file": ("big.jpg", b"\xff\xd8\xff" + big)}, timeout=60)
    assert r.status_code == 413 and r.json()["error"]["status"] == 413
    r = httpx.post(f"{url}/v1/predict", files={"file": ("notes.txt", b"hello, not a photo\n")}, timeout=60)
    assert r.status_code == 415 and "not an image" in r.json()["error"]["message"]
    log = live_server.log_text()
    assert "127.0.0.1" in log  # bound to this machine only
    assert " 413" in log and " 415" in log  # the access log has the requests...
    assert "Traceback" not in log and "photo-of-anna" not in log  # ...but no traceback and no upload names


def test_browser_upload_labels_and_rejection(live_server, astronaut_path, tmp_path):
    if not CHROMIUM.exists() or not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) drives Chromium")
    expected = httpx.post(f"{live_server.url}/v1/predict", content=astronaut_path.read_bytes(), timeout=60).json()
    face = expected["faces"][0]
    text_file = tmp_path / "notes.txt"
    text_file.write_text("shopping list: eggs, milk\n")
    shot = tmp_path / "page.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1100})
            outside: list[str] = []
            page.on("request", lambda req: None if req.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                    else outside.append(req.url))
            page.goto(live_server.url + "/")
            page.focus("#files")  # the file picker is reachable from the keyboard
            assert page.evaluate("document.activeElement.id") == "files"

            page.set_input_files("#files", str(astronaut_path))
            label = page.wait_for_selector(".result .face-label", timeout=60_000).inner_text()
            assert re.fullmatch(r"0: (female|male) \d+%, age \d+ \(\d+–\d+\), group [0-9+-]+", label), label
            assert label.startswith(f"0: {face['gender']} {round(100 * face['gender_probability'])}%")
            assert f"group {face['age_group']}" in label
            rows = page.locator(".result table.faces tbody tr")
            assert rows.count() == 1 and face["gender"] in rows.first.inner_text()
            assert "1 face" in page.inner_text(".result h3")

            page.click(".result button.explain")  # the attention overlay, on demand
            page.wait_for_selector(".result .attention img", timeout=60_000)

            page.set_input_files("#files", str(text_file))
            error = page.wait_for_selector("#errors li", timeout=60_000).inner_text()
            assert error.startswith("notes.txt") and "not an image" in error
            assert page.is_visible("#errors-section")

            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("AGEGENDER_SCREENSHOT"):
                shutil.copy(shot, os.environ["AGEGENDER_SCREENSHOT"])

            page.set_viewport_size({"width": 375, "height": 812})  # a phone: nothing wider than the screen
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            assert outside == []  # no CDN, nothing fetched from anywhere else: works offline
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
