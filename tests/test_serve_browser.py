"""``agegender serve`` as a real process on 127.0.0.1, driven over HTTP and by Debian's Chromium (headless,
through Playwright for Python; never ``playwright install``).

Set AGEGENDER_SCREENSHOT=/some/file.png to keep a screenshot of the page with results.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import huge_png_bytes, stop_process

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
    """``python -m agegender.cli serve`` on a free port of 127.0.0.1 (4 MiB upload limit), stopped afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGEGENDER_")}
    cmd = [sys.executable, "-m", "agegender.cli", "serve", "--port", str(port), "--max-upload-mb", "4",
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
        stop_process(proc)


def test_live_server_curl_like_and_clean_log(live_server, astronaut_path):
    """The issue's check: faces as JSON, 413 over the limit, 415 for text, and no traceback in the log."""
    url = live_server.url
    r = httpx.post(f"{url}/v1/predict", files={"file": ("photo-of-anna.png", astronaut_path.read_bytes())}, timeout=60)
    assert r.status_code == 200 and len(r.json()["faces"]) == 1
    big = os.urandom(5 * 1024 * 1024)
    r = httpx.post(f"{url}/v1/predict", files={"file": ("big.jpg", b"\xff\xd8\xff" + big)}, timeout=60)
    assert r.status_code == 413 and r.json()["error"]["status"] == 413
    r = httpx.post(f"{url}/v1/predict", files={"file": ("notes.txt", b"hello, not a photo\n")}, timeout=60)
    assert r.status_code == 415 and "not an image" in r.json()["error"]["message"]
    log = live_server.log_text()
    assert "127.0.0.1" in log  # bound to this machine only
    assert " 413" in log and " 415" in log  # the access log has the requests...
    assert "Traceback" not in log and "photo-of-anna" not in log  # ...but no traceback and no upload names


def phone_photo(astronaut_path: Path, size: tuple[int, int] = (8000, 6000), texture: bool = False,
                quality: int = 85) -> bytes:
    """A phone-sized JPEG (8000 x 6000: 48 MP) with the astronaut, enlarged, pasted in it. ``texture``: a
    smooth random background, so that the file is large (megabytes) the way real photos are."""
    w, h = size
    if texture:
        coarse = np.random.default_rng(0).integers(0, 256, (h // 32, w // 32, 3), dtype=np.uint8)
        canvas = Image.fromarray(coarse).resize((w, h), Image.BICUBIC)
    else:
        canvas = Image.new("RGB", (w, h), (128, 140, 150))
    with Image.open(astronaut_path) as im:
        canvas.paste(im.convert("RGB").resize((h // 3, h // 3), Image.BICUBIC), (w // 2, h // 4))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def test_live_server_takes_a_48_megapixel_phone_photo(live_server, astronaut_path):
    """The issue's check: a 48 MP JPEG is answered 200 with its face, where the face is, in the photo's
    own pixels; a decompression bomb is still refused; /healthz and /readyz agree on the models."""
    photo = phone_photo(astronaut_path)
    r = httpx.post(f"{live_server.url}/v1/predict", files={"file": ("phone.jpg", photo, "image/jpeg")}, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (8000, 6000) and len(body["faces"]) == 1
    x1, y1, x2, y2 = body["faces"][0]["box"]  # the face of the pasted 2000 px astronaut (face at 178-273 of 512)
    scale = 2000 / 512
    assert abs(x1 - (4000 + 178 * scale)) < 60 and abs(y2 - (1500 + 177 * scale)) < 80, (x1, y1, x2, y2)
    bomb = httpx.post(f"{live_server.url}/v1/predict", content=huge_png_bytes(), timeout=60)
    assert bomb.status_code == 413 and "pixels" in bomb.json()["error"]["message"]
    health, ready = httpx.get(f"{live_server.url}/healthz").json(), httpx.get(f"{live_server.url}/readyz").json()
    assert health["status"] == "ok" and ready["status"] == "ready"
    assert health["models"] == ready["models"] == ["default"] and health["capacity"] == ready["capacity"] >= 1
    assert "Traceback" not in live_server.log_text()


def _rects(locator) -> list[list[float]]:
    """Where the elements are drawn on the page (left, top, right, bottom in CSS pixels)."""
    return locator.evaluate_all("els => els.map(e => { const r = e.getBoundingClientRect(); "
                                "return [r.left, r.top, r.right, r.bottom]; })")


def _apart(a, b) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_browser_upload_labels_and_rejection(live_server, astronaut_path, astronaut, tmp_path):
    if not CHROMIUM.exists() or not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) drives Chromium")
    expected = httpx.post(f"{live_server.url}/v1/predict", content=astronaut_path.read_bytes(), timeout=60).json()
    face = expected["faces"][0]
    text_file = tmp_path / "notes.txt"
    text_file.write_text("shopping list: eggs, milk\n")
    six = tmp_path / "six.png"
    head = Image.fromarray(np.ascontiguousarray(astronaut)).crop((160, 30, 290, 200)).resize((80, 105), Image.LANCZOS)
    Image.fromarray(np.concatenate([np.asarray(head)] * 6, axis=1)).save(six)
    big = tmp_path / "phone.jpg"  # over the server's 4 MiB upload limit: the page must shrink it
    big.write_bytes(phone_photo(astronaut_path, (6400, 4800), texture=True, quality=98))
    assert big.stat().st_size > 5 * 2**20
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
            page.wait_for_selector(".result .face-label", timeout=60_000)
            label = " ".join(page.locator(".result .face-label text").all_text_contents())
            g = "F" if face["gender"] == "female" else "M"
            assert re.fullmatch(rf"0: {g} {round(100 * face['gender_probability'])}%,? \d+ \(\d+-\d+\)", label), label
            described = page.get_attribute(".result .box", "aria-label")
            assert described.startswith(f"0: {face['gender']} ") and f"group {face['age_group']}" in described
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

            page.set_input_files("#files", str(six))  # the next upload clears the old rejections
            expect = sync_api.expect  # (the page's CSP forbids wait_for_function's eval)
            expect(page.locator("#errors li")).to_have_count(0, timeout=10_000)
            expect(page.locator("#errors-section")).to_be_hidden()
            expect(page.locator(".result")).to_have_count(2, timeout=60_000)
            first = page.locator(".result").first
            expect(first.locator(".face-label")).to_have_count(6)
            labels, photo = _rects(first.locator(".face-label rect")), _rects(first.locator(".photo img"))[0]
            assert len(labels) == 6
            for x1, y1, x2, y2 in labels:  # inside the photo as shown, and apart from each other
                assert photo[0] - 0.5 <= x1 < x2 <= photo[2] + 0.5 and photo[1] - 0.5 <= y1 < y2 <= photo[3] + 0.5
            assert all(_apart(a, b) for k, a in enumerate(labels) for b in labels[k + 1:]), labels
            if os.environ.get("AGEGENDER_SCREENSHOT"):
                first.screenshot(path=os.environ["AGEGENDER_SCREENSHOT"])

            page.set_input_files("#files", str(big))  # 6400 x 4800, over the upload limit: shrunk, then analysed
            expect(page.locator(".result")).to_have_count(3, timeout=120_000)
            newest = page.locator(".result").first
            assert "1 face" in newest.locator("h3").inner_text(), newest.inner_text()
            assert "shrunk in this browser" in newest.inner_text() and page.locator("#errors li").count() == 0
            box = [int(v) for v in newest.locator("tbody td").last.inner_text().split(", ")]
            assert abs(box[0] - (3200 + 178 * 1600 / 512)) < 60  # in the photo's own pixels, not the shrunk ones

            page.set_viewport_size({"width": 375, "height": 812})  # a phone: nothing wider than the screen
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            assert outside == []  # no CDN, nothing fetched from anywhere else: works offline
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
