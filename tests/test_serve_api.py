"""The web service through FastAPI's TestClient: every status the API promises, on real images and real models."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (dev extra) drives FastAPI's TestClient")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from agegender.cli import main  # noqa: E402
from agegender.serve.app import create_app  # noqa: E402
from agegender.serve.engine import LoadedModel, load_models  # noqa: E402
from agegender.serve.settings import ServeSettings, SettingsError  # noqa: E402
from conftest import ASTRONAUT_FACE_BOX, huge_png_bytes, jpeg_bytes, stop_process, truncated_jpeg_bytes  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "src" / "agegender" / "assets"


@pytest.fixture(scope="module")
def models() -> dict[str, LoadedModel]:
    """The default model, loaded once for every app of this module (as ``agegender serve`` does at start-up)."""
    return load_models(ServeSettings.load({}, workers=1))


def make_client(models: dict[str, LoadedModel], **settings) -> TestClient:
    s = ServeSettings.load({}, **settings)
    return TestClient(create_app(s, models))


@pytest.fixture(scope="module")
def client(models) -> TestClient:
    with make_client(models) as c:
        yield c


@pytest.fixture(scope="module")
def astronaut_png(astronaut_path) -> bytes:
    return astronaut_path.read_bytes()


def assert_error(r: httpx.Response, status: int) -> str:
    """A JSON error body with the status, a code and a one-line message (never a traceback)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["status"] == status and err["code"] and err["message"]
    assert "\n" not in err["message"] and "Traceback" not in r.text
    return err["message"]


def decode_data_url(url: str, mime: str) -> Image.Image:
    prefix = f"data:{mime};base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix):])))


# -- predictions ---------------------------------------------------------------------------------------------


def test_predict_multipart_mirrors_the_library(client, astronaut_png, astronaut, predictor):
    r = client.post("/v1/predict", files={"file": ("astronaut.png", astronaut_png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    lib = predictor.predict(astronaut)
    assert (body["width"], body["height"]) == (512, 512) and body["source"] == "astronaut.png"
    assert len(body["faces"]) == len(lib.faces) == 1
    face, ref = body["faces"][0], lib.faces[0]
    assert face["gender"] == ref.gender
    assert face["p_female"] == pytest.approx(ref.p_female, abs=1e-3)
    assert face["gender_probability"] == pytest.approx(ref.gender_probability, abs=1e-3)
    assert face["age"] == pytest.approx(ref.age, abs=1e-2)
    assert face["age_low"] <= face["age"] <= face["age_high"]
    assert face["age_group"] == ref.age_group and set(face["age_group_probs"]) == set(ref.age_group_probs)
    assert face["box"] == pytest.approx(list(ref.box), abs=0.1)
    assert len(face["landmarks"]) == 5 and face["attention_overlay"] is None and body["annotated_image"] is None
    card = json.loads((ASSETS / "model.json").read_text())
    assert body["model"] == {"key": "default", "name": card["name"], "version": card["version"]}


def test_predict_raw_body_judged_by_content(client, astronaut_png, coffee_path):
    r = client.post("/v1/predict", content=astronaut_png)  # no content type at all
    assert r.status_code == 200 and len(r.json()["faces"]) == 1 and r.json()["source"] == "upload"
    # a PNG named like a text file, sent as text/plain: the content decides
    r = client.post("/v1/predict", files={"file": ("notes.txt", coffee_path.read_bytes(), "text/plain")})
    assert r.status_code == 200 and r.json()["faces"] == []


def test_annotate_and_explain(client, astronaut_png, astronaut):
    r = client.post("/v1/predict?annotate=true&explain=true", content=astronaut_png)
    assert r.status_code == 200, r.text
    body = r.json()
    annotated = np.asarray(decode_data_url(body["annotated_image"], "image/jpeg").convert("RGB"), np.int16)
    assert annotated.shape == astronaut.shape
    x1, y1, x2, y2 = (round(v) for v in body["faces"][0]["box"])
    border = np.abs(annotated[y1 + 1 : y2 - 1, x1 : x1 + 2] - astronaut[y1 + 1 : y2 - 1, x1 : x1 + 2]).mean()
    inside = np.abs(annotated[(y1 + y2) // 2, (x1 + x2) // 2] - astronaut[(y1 + y2) // 2, (x1 + x2) // 2]).mean()
    assert border > 40 > inside  # the box is drawn on the face's edge, the face itself is left alone
    overlay = decode_data_url(body["faces"][0]["attention_overlay"], "image/png")
    assert overlay.format == "PNG" and overlay.size == (224, 224)


def test_max_faces_and_aligned(client, astronaut, predictor):
    two = jpeg_bytes(np.concatenate([astronaut, astronaut], axis=1))
    assert len(client.post("/v1/predict", content=two).json()["faces"]) == 2
    r = client.post("/v1/predict?max_faces=1", content=two)
    assert r.status_code == 200 and len(r.json()["faces"]) == 1
    crop = predictor.align(astronaut, predictor.detect(astronaut)[0])
    r = client.post("/v1/predict?aligned=true", content=jpeg_bytes(crop))
    face = r.json()["faces"][0]
    assert r.status_code == 200 and face["box"] == [0, 0, crop.shape[1], crop.shape[0]] and face["landmarks"] == []


def test_labels_where_annotated_images_put_them(client, astronaut):
    """labels=true: each face's label box, the placement annotated images use (one function), inside the
    image and apart; without it the answer is as it always was (no label field)."""
    from agegender.annotate import face_labels
    from agegender.serve.schemas import FaceOut

    head = Image.fromarray(np.ascontiguousarray(astronaut)).crop((160, 30, 290, 200)).resize((80, 105))
    six = jpeg_bytes(np.concatenate([np.asarray(head)] * 6, axis=1))
    plain = client.post("/v1/predict", content=six).json()
    assert len(plain["faces"]) == 6 and all("label" not in f for f in plain["faces"])
    body = client.post("/v1/predict?labels=true", content=six).json()
    assert [{k: v for k, v in f.items() if k != "label"} for f in body["faces"]] == plain["faces"]
    boxes = [f["label"]["box"] for f in body["faces"]]
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        assert 0 <= x1 < x2 <= body["width"] and 0 <= y1 < y2 <= body["height"]
        assert all(x2 <= b[0] or b[2] <= x1 or y2 <= b[1] or b[3] <= y1 for b in boxes[k + 1:])
    expected = face_labels([FaceOut(**f) for f in plain["faces"]], body["width"], body["height"])
    assert boxes == [pytest.approx(list(lab.box), abs=0.06) for lab in expected]
    assert [ln["text"] for ln in body["faces"][0]["label"]["lines"]] == [ln.text for ln in expected[0].lines]
    assert body["faces"][0]["label"]["lines"][0]["text"].startswith("0: ")
    batch = client.post("/v1/predict/batch?labels=true", files=[("files", ("six.jpg", six))]).json()
    assert [f["label"]["box"] for f in batch["results"][0]["prediction"]["faces"]] == boxes


PHONE_SIZE = (9248, 6936)  # a 64 MP phone photo


@pytest.fixture(scope="module")
def phone_photo(astronaut) -> tuple[bytes, np.ndarray]:
    """A 64 MP JPEG with the astronaut's head (scaled 4.5x) in it, and where that face's box lies in it."""
    photo = Image.new("RGB", PHONE_SIZE, (120, 130, 140))
    photo.paste(Image.fromarray(np.ascontiguousarray(astronaut)).resize((2304, 2304)), (3000, 2000))
    buf = io.BytesIO()
    photo.save(buf, format="JPEG", quality=80)
    return buf.getvalue(), np.asarray(ASTRONAUT_FACE_BOX) * 4.5 + (3000, 2000, 3000, 2000)


def test_phone_photos_pass_bombs_do_not(client, phone_photo):
    """The default limits take a 64 MP phone photo (its header is read before anything is decoded; it is
    decoded reduced) and report its faces in the full-size photo's pixels; a decompression bomb is refused."""
    assert ServeSettings.load({}).max_pixels >= 64_000_000 and ServeSettings.load({}).max_upload_mb >= 30
    data, box = phone_photo
    r = client.post("/v1/predict", content=data)
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == PHONE_SIZE and len(r.json()["faces"]) == 1
    face = r.json()["faces"][0]
    assert face["box"] == pytest.approx(list(box), abs=60)  # ASTRONAUT_FACE_BOX's 12 px, times 4.5
    x1, y1, x2, y2 = face["box"]
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face["landmarks"])
    assert "pixels" in assert_error(client.post("/v1/predict", content=huge_png_bytes()), 413)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM")).split()[1]) / 1024


@contextmanager
def _live_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """``python -m agegender.cli serve`` on a free port of 127.0.0.1, one worker, stopped afterwards."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGEGENDER_")}
    cmd = [sys.executable, "-m", "agegender.cli", "serve", "--port", str(port), "--workers", "1", "--no-access-log"]
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
        yield proc, url
    finally:
        stop_process(proc)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the server's peak memory from /proc")
def test_live_server_takes_a_64_mp_photo_in_bounded_memory(tmp_path, phone_photo, astronaut_png):
    """A real server: a 64 MP JPEG raises the server's peak resident memory by under 120 MiB (about 80: it is
    decoded reduced, at 1/4; decoded in full it took about 690), boxes come in the full-size photo's pixels
    and the annotated image is the reduced one."""
    data, box = phone_photo
    with _live_server(tmp_path) as (proc, url):
        for _ in range(2):  # warm up: the model's and the detector's buffers at a normal photo
            assert httpx.post(f"{url}/v1/predict?annotate=true", content=astronaut_png, timeout=60).status_code == 200
        before = _peak_rss_mib(proc.pid)
        r = httpx.post(f"{url}/v1/predict?annotate=true", content=data, timeout=120)
        grew = _peak_rss_mib(proc.pid) - before
    assert r.status_code == 200, r.text
    assert grew < 120, f"peak memory grew by {grew:.0f} MiB"
    body = r.json()
    assert (body["width"], body["height"]) == PHONE_SIZE and len(body["faces"]) == 1
    assert body["faces"][0]["box"] == pytest.approx(list(box), abs=60)
    annotated = decode_data_url(body["annotated_image"], "image/jpeg")
    assert 2048 <= annotated.width < 4096 and annotated.width / annotated.height == pytest.approx(9248 / 6936, abs=0.01)


_DECODE_WITHIN = """
import resource, sys
from agegender.io import load_image
from agegender.serve.uploads import Upload, decode_upload
data = open(sys.argv[1], "rb").read()
vm = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + int(sys.argv[3]) * 2**20, resource.RLIM_INFINITY))
try:
    image, scale, full = decode_upload(Upload("file", "", data), 100_000_000) if sys.argv[2] == "reduced" else (
        load_image(data), 1.0, None)
except MemoryError:
    print("out of memory")
else:
    print(image.shape[1], image.shape[0], scale, full)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="address-space limits as Linux sets them")
def test_phone_photo_decoded_reduced_memory_bounded(tmp_path, astronaut):
    """A 48 MP JPEG (144 MB of pixels) decodes to 4000 x 3000 at scale 1/2, in the DCT, within 250 MB
    more address space, where decoding it in full does not fit."""
    photo = Image.new("RGB", (8000, 6000), (120, 130, 140))
    photo.paste(Image.fromarray(np.ascontiguousarray(astronaut)).resize((2000, 2000)), (4000, 1500))
    path = tmp_path / "phone.jpg"
    photo.save(path, format="JPEG", quality=85)
    out = {}
    for mode in ("reduced", "full"):
        done = subprocess.run([sys.executable, "-c", _DECODE_WITHIN, str(path), mode, "250"], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        out[mode] = done.stdout.strip()
    assert out == {"reduced": "4000 3000 0.5 (8000, 6000)", "full": "out of memory"}


def test_batch_reports_bad_files_in_place(client, astronaut_png, coffee_path):
    files = [
        ("files", ("astronaut.png", astronaut_png, "image/png")),
        ("files", ("readme.txt", b"just some text\n", "text/plain")),
        ("files", ("coffee.png", coffee_path.read_bytes(), "image/png")),
        ("files", ("cut.jpg", truncated_jpeg_bytes(), "image/jpeg")),
    ]
    r = client.post("/v1/predict/batch", files=files)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["index"] for x in res] == [0, 1, 2, 3]
    assert [x["filename"] for x in res] == ["astronaut.png", "readme.txt", "coffee.png", "cut.jpg"]
    assert [x["status"] for x in res] == [200, 415, 200, 422]
    assert len(res[0]["prediction"]["faces"]) == 1 and res[2]["prediction"]["faces"] == []
    assert res[1]["prediction"] is None and res[1]["error"]["code"] == "unsupported_media_type"
    assert r.json()["model"]["key"] == "default"


def test_models_and_cards(models):
    more = dict(models) | load_models(ServeSettings.load({}, models=("fast",)))
    fast_card = json.loads((ASSETS / "fast.json").read_text())
    with make_client(more) as c:
        listed = c.get("/v1/models").json()["models"]
        assert [m["key"] for m in listed] == ["default", "fast"] and [m["default"] for m in listed] == [True, False]
        assert all(m["attention"] for m in listed)
        card = c.get("/v1/models/fast").json()
        assert card["sha256"] == fast_card["sha256"] and card["version"] == fast_card["version"]
        assert c.get(f"/v1/models/{fast_card['name']}").json()["name"] == fast_card["name"]
        r = c.post("/v1/predict?model=fast", content=jpeg_bytes(np.zeros((64, 64, 3), np.uint8)))
        assert r.status_code == 200 and r.json()["model"]["name"] == fast_card["name"]
        assert_error(c.post("/v1/predict?model=nope", content=b"x"), 404)
        assert_error(c.get("/v1/models/nope"), 404)


# -- limits and errors ---------------------------------------------------------------------------------------


def test_413_upload_size(models, astronaut_png, astronaut):
    small = jpeg_bytes(astronaut)  # about 68 KB
    with make_client(models, max_upload_mb=0.2) as c:  # 200 KiB; the PNG is 790 KB
        assert "limit" in assert_error(c.post("/v1/predict", content=astronaut_png), 413)
        assert_error(c.post("/v1/predict", files={"file": ("a.png", astronaut_png)}), 413)
        assert c.post("/v1/predict", content=small).status_code == 200
        r = c.post("/v1/predict/batch", files=[("files", ("big.png", astronaut_png)), ("files", ("ok.jpg", small))])
        assert r.status_code == 200 and [x["status"] for x in r.json()["results"]] == [413, 200]
    with make_client(models, max_request_mb=0.5) as c:  # a whole batch over the request limit
        files = [("files", ("ok.jpg", small))] * 8
        assert "request body" in assert_error(c.post("/v1/predict/batch", files=files), 413)
    with make_client(models, max_batch_files=2) as c:
        assert "3 files" in assert_error(c.post("/v1/predict/batch", files=[("files", ("a.jpg", small))] * 3), 413)


def test_413_pixel_count(models, astronaut_png):
    with make_client(models, max_pixels=100_000) as c:
        assert "512x512" in assert_error(c.post("/v1/predict", content=astronaut_png), 413)
        # a decompression bomb: a small file whose header claims 100,000 x 100,000 pixels
        assert "pixels" in assert_error(c.post("/v1/predict", content=huge_png_bytes()), 413)


def test_415_not_an_image(client):
    assert "not an image" in assert_error(client.post("/v1/predict", files={"file": ("a.txt", b"hello\n")}), 415)
    # named and declared as a JPEG, but text inside
    assert_error(client.post("/v1/predict", files={"file": ("photo.jpg", b"hello\n", "image/jpeg")}), 415)
    assert_error(client.post("/v1/predict", content=b"%PDF-1.7\n", headers={"content-type": "image/png"}), 415)
    assert_error(client.post("/v1/predict/batch", content=b"{}", headers={"content-type": "application/json"}), 415)


def test_422_corrupt_or_missing_image(client):
    assert "corrupt" in assert_error(client.post("/v1/predict", content=truncated_jpeg_bytes()), 422)
    assert_error(client.post("/v1/predict", content=b"\x89PNG\r\n\x1a\n" + b"\0" * 40), 422)
    assert_error(client.post("/v1/predict", content=b""), 422)
    assert_error(client.post("/v1/predict", files={"file": ("empty.png", b"")}), 422)
    assert "no file" in assert_error(client.post("/v1/predict", data={"note": "hi"}, files={"x": ("", b"")}), 422)
    assert "max_faces" in assert_error(client.post("/v1/predict?max_faces=0", content=b"x"), 422)


def test_400_404_405_are_json(client):
    assert_error(client.post("/v1/predict", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}), 400)
    assert_error(client.get("/v1/nothing"), 404)
    assert_error(client.get("/v1/predict"), 405)


def test_504_time_out_and_the_slot_comes_back(models, astronaut_png):
    with make_client(models, timeout_s=0.01, workers=1, queue=0) as c:
        r = c.post("/v1/predict?annotate=true&explain=true", content=astronaut_png)
        assert "time limit" in assert_error(r, 504)
        # the work that timed out still runs; its slot is given back only when it ends (memory stays bounded)
        for _ in range(200):
            ready = c.get("/readyz")
            if ready.status_code == 200:
                break
            time.sleep(0.05)
        assert ready.status_code == 200 and ready.json()["in_flight"] == 0


def test_503_when_the_queue_is_full(models, astronaut_png):
    app = create_app(ServeSettings.load({}, workers=1, queue=1), models)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            return list(await asyncio.gather(*(ac.post("/v1/predict", content=astronaut_png) for _ in range(6))))

    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 503, 503, 503, 503]  # one computing, one waiting, the rest turned away
    for r in responses:
        if r.status_code == 503:
            assert "busy" in assert_error(r, 503) and int(r.headers["retry-after"]) >= 1


def test_401_api_key_health_exempt(models, astronaut_png):
    with make_client(models, api_key="s3cret") as c:
        assert_error(c.post("/v1/predict", content=astronaut_png), 401)
        r = c.get("/v1/models", headers={"Authorization": "Bearer wrong"})
        assert_error(r, 401) and r.headers["www-authenticate"] == "Bearer"
        assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        ok = c.post("/v1/predict", content=astronaut_png, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/").status_code == 200  # the page itself holds no data; it asks for the key


def test_cors_off_unless_configured(models, client):
    pre = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    r = client.options("/v1/predict", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-origin" not in client.get("/v1/models", headers={"Origin": pre["Origin"]}).headers
    with make_client(models, cors_origins=("https://elsewhere.example",)) as c:
        r = c.options("/v1/predict", headers=pre)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://elsewhere.example"


def test_uploads_never_touch_the_disk_nor_the_log(client, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise AssertionError("an upload was about to be written to a temporary file")

    import starlette.formparsers

    for name in ("SpooledTemporaryFile", "NamedTemporaryFile", "TemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", refuse)
    noise = np.random.default_rng(0).integers(0, 256, (900, 900, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    big = buf.getvalue()
    assert len(big) > 2 * 1024 * 1024  # over Starlette's 1 MiB spooling threshold
    secret = "private-holiday-XYZ123.png"
    with caplog.at_level(logging.DEBUG):
        assert client.post("/v1/predict", files={"file": (secret, big, "image/png")}).status_code == 200
        assert client.post("/v1/predict/batch", files=[("files", (secret, big))]).status_code == 200
        assert client.post("/v1/predict", files={"file": (secret, b"text " * 10)}).status_code == 415
        assert client.post("/v1/predict", content=truncated_jpeg_bytes()).status_code == 422
    assert secret not in caplog.text and "Traceback" not in caplog.text
    assert not any(rec.exc_info for rec in caplog.records)


# -- health, page, docs, settings, command line --------------------------------------------------------------


def test_health_page_docs(client):
    health = client.get("/healthz").json()
    ready = client.get("/readyz").json()
    assert health["status"] == "ok" and ready["status"] == "ready"
    assert health["models"] == ready["models"] == ["default"] and health["capacity"] == ready["capacity"] >= 1
    page = client.get("/")
    assert page.status_code == 200 and 'id="files"' in page.text and "/static/app.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "http" not in page.text.replace('href="/', "")  # nothing loaded from elsewhere: works offline
    for asset in ("app.js", "style.css", "docs.js", "docs.html"):
        assert client.get(f"/static/{asset}").status_code == 200
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/predict/batch", "/v1/models", "/v1/models/{name}", "/healthz", "/readyz"} <= set(
        spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert "PredictionOut" in spec["components"]["schemas"]


def test_settings_env_then_flags():
    env = {"AGEGENDER_PORT": "9000", "AGEGENDER_MODEL": "default, fast", "AGEGENDER_API_KEY": "s3cret-key",
           "AGEGENDER_CORS_ORIGINS": "https://a.example", "UNRELATED": "x"}
    s = ServeSettings.load(env, port=9100, queue=None)
    assert s.port == 9100 and s.models == ("default", "fast") and s.api_key.get_secret_value() == "s3cret-key"
    assert s.cors_origins == ("https://a.example",) and s.queue == 32 and s.host == "127.0.0.1"
    assert "s3cret-key" not in repr(s) + str(s)  # the key is never shown
    with pytest.raises(SettingsError, match="AGEGENDER_WORKERS"):
        ServeSettings.load({"AGEGENDER_WORKERS": "many"})
    with pytest.raises(SettingsError, match="--queue"):
        ServeSettings.load({}, queue=-1)


def test_cli_serve_bad_settings_exit_2(capsys, monkeypatch):
    assert main(["serve", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--workers" in err[0]
    monkeypatch.setenv("AGEGENDER_PORT", "http")
    assert main(["serve"]) == 2
    assert "AGEGENDER_PORT" in capsys.readouterr().err
    monkeypatch.delenv("AGEGENDER_PORT")
    assert main(["serve", "--model", "no/such/model.json"]) == 2  # fails before binding the port
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not found" in err[0]


def test_serve_needs_no_torch():
    """The serve install has no PyTorch: the app, a prediction and the attention overlay never import it."""
    code = (
        "import sys, numpy as np\n"
        "from fastapi.testclient import TestClient\n"
        "from agegender.serve.app import create_app\n"
        "from agegender.serve.settings import ServeSettings\n"
        "from PIL import Image; import io, skimage.data, pathlib\n"
        "p = pathlib.Path(skimage.data.__file__).parent / 'astronaut.png'\n"
        "with TestClient(create_app(ServeSettings.load({}, workers=1))) as c:\n"
        "    r = c.post('/v1/predict?explain=true&annotate=true', content=p.read_bytes())\n"
        "    assert r.status_code == 200 and r.json()['faces'][0]['attention_overlay']\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
