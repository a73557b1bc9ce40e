"""The HTTP API in-process (FastAPI's test client): every endpoint, every refusal, and answers that are the
Python API's."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from conftest import FACE_PHOTO, MUX, REPO, face_clip, needs_mux  # noqa: E402

pytestmark = needs_mux  # real photos and clips of muxspace_subset


def face_photo() -> bytes:
    return FACE_PHOTO.read_bytes()


TOKEN = "a-long-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def workers():
    from affect_keras.serve.config import ServeConfig
    from affect_keras.serve.workers import Workers

    config = ServeConfig(
        threads=1,
        token=TOKEN,
        max_body_mb=2,
        max_pixels=4_000_000,
        max_images=3,
        max_video_s=5,
        cors=["http://example.org"],
    )
    return Workers(config)


@pytest.fixture(scope="module")
def client(workers):
    from affect_keras.serve.app import create_app

    with TestClient(create_app(workers), raise_server_exceptions=False) as client:
        yield client


def refused(response, status: int) -> dict:
    """The JSON error of a refusal, checked to say nothing of the server (no traceback, no path)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status and body["error"]["message"]
    assert "Traceback" not in response.text and str(REPO) not in response.text and "/tmp" not in response.text
    return body["error"]


def test_a_photo_gets_the_faces_the_python_api_gives_as_a_file_raw_bytes_or_base64(client):
    import affect_keras

    photo = face_photo()
    expected = json.loads(json.dumps(affect_keras.predict(Image.open(io.BytesIO(photo)))))
    assert len(expected) >= 1 and expected[0]["expression"] in expected[0]["probabilities"]
    answers = [
        client.post("/v1/faces", files={"images": ("face.jpg", photo, "image/jpeg")}, headers=AUTH),
        client.post("/v1/faces", content=photo, headers={**AUTH, "Content-Type": "image/jpeg"}),
        client.post("/v1/faces", json={"images": [base64.b64encode(photo).decode()]}, headers=AUTH),
        client.post(
            "/v1/faces", json={"image": "data:image/jpeg;base64," + base64.b64encode(photo).decode()}, headers=AUTH
        ),
    ]
    for response in answers:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == {"name": "ferplus_resnet18_48", "version": "0.2.0"} and body["seconds"] > 0
        (image,) = body["images"]
        assert (
            image["outcome"] == "face found" and (image["width"], image["height"]) == Image.open(io.BytesIO(photo)).size
        )
        assert len(image["faces"]) == len(expected)
        for got, want in zip(image["faces"], expected):
            assert got["box"] == want["box"] and got["expression"] == want["expression"]
            assert np.allclose(list(got["probabilities"].values()), list(want["probabilities"].values()), atol=1e-5)
            assert len(got["landmarks"]) == 6 and got["status"] == "ok"


def test_several_images_are_answered_in_order_and_the_options_apply(client):
    photo = face_photo()
    blank = io.BytesIO()
    Image.new("RGB", (300, 200), (128, 128, 128)).save(blank, "PNG")
    response = client.post(
        "/v1/faces",
        files=[("images", ("face.jpg", photo, "image/jpeg")), ("images", ("blank.png", blank.getvalue(), "image/png"))],
        data={"min_confidence": "1.0"},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    face, empty = response.json()["images"]
    assert (face["name"], empty["name"]) == ("face.jpg", "blank.png") and empty["faces"] == []
    assert empty["outcome"] == "no face found"
    assert all(f["status"] == "uncertain" and f["expression"] is None for f in face["faces"])  # gated, still scored
    assert face["faces"] and all(len(f["probabilities"]) == 8 for f in face["faces"])
    crop = client.post("/v1/faces?no_detect=true", content=photo, headers={**AUTH, "Content-Type": "image/jpeg"})
    assert crop.json()["images"][0]["outcome"] == "face crop (--no-detect)"


@pytest.mark.parametrize(
    "options, option",
    [
        ({"min_confidence": "2"}, "min_confidence"),
        ({"detector": "nope"}, "detector"),
        ({"min_face": "many"}, "min_face"),
        ({"model": "/etc/passwd"}, "model"),
        ({"engine": "keras"}, "engine"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_option_is_a_422_naming_it(client, options, option):
    response = client.post(
        "/v1/faces", files={"images": ("f.jpg", face_photo(), "image/jpeg")}, data=options, headers=AUTH
    )
    assert refused(response, 422)["option"] == option


def test_refusals_are_json_with_their_status_and_nothing_of_the_server(client, workers, monkeypatch):
    photo = face_photo()
    jpeg = {**AUTH, "Content-Type": "image/jpeg"}
    assert (
        "not an image"
        in refused(client.post("/v1/faces", content=b"%PDF-1.4 not a photo", headers=jpeg), 400)["message"]
    )
    assert "base64" in refused(client.post("/v1/faces", json={"images": ["/etc/passwd"]}, headers=AUTH), 400)["message"]
    assert (
        "base64"
        in refused(client.post("/v1/faces", json={"image": "https://example.org/a.jpg"}, headers=AUTH), 400)["message"]
    )
    refused(client.post("/v1/faces", content=b"", headers=jpeg), 400)
    refused(client.post("/v1/faces", content=b"hello", headers={**AUTH, "Content-Type": "text/plain"}), 415)
    refused(client.post("/v1/faces", content=photo, headers=AUTH), 415)  # no Content-Type
    four = [("images", (f"{k}.jpg", photo, "image/jpeg")) for k in range(4)]
    assert "limit is 3" in refused(client.post("/v1/faces", files=four, headers=AUTH), 413)["message"]
    assert "limit is 3" in refused(client.post("/v1/faces", files=four * 2, headers=AUTH), 413)["message"]
    broken = {**AUTH, "Content-Type": "multipart/form-data; boundary=x"}
    refused(client.post("/v1/faces", content=b"--x\r\nnot a part", headers=broken), 400)
    refused(client.post("/v1/faces", content=b"x" * 2_000_001, headers=jpeg), 413)  # --max-body-mb 2
    refused(client.post("/v1/faces", content=photo, headers={"Content-Type": "image/jpeg"}), 401)
    wrong = refused(
        client.post(
            "/v1/faces", content=photo, headers={"Authorization": "Bearer wrong", "Content-Type": "image/jpeg"}
        ),
        401,
    )
    assert "token" in wrong["message"]
    refused(client.get("/metrics"), 401)
    refused(client.get("/v1/nothing", headers=AUTH), 404)
    refused(client.get("/v1/faces", headers=AUTH), 405)

    monkeypatch.setattr(workers, "admitted", workers.capacity)  # every thread busy, the queue full
    busy = client.post("/v1/faces", content=photo, headers=jpeg)
    refused(busy, 503)
    assert int(busy.headers["Retry-After"]) >= 1
    monkeypatch.undo()
    assert client.post("/v1/faces", content=photo, headers=jpeg).status_code == 200  # served again
    monkeypatch.setattr(workers.config, "timeout", 0.001)  # no analysis is that quick
    assert "timeout" in refused(client.post("/v1/faces", content=photo, headers=jpeg), 504)["message"]
    monkeypatch.undo()

    def broken(*args, **kwargs):
        raise RuntimeError(f"failed reading {REPO}/secret/path")

    monkeypatch.setattr(workers.workers[0].analyser, "analyse", broken)
    assert "log" in refused(client.post("/v1/faces", content=photo, headers=jpeg), 500)["message"]


def test_a_decompression_bomb_is_refused_from_its_header(client):
    """A 20000 x 20000 PNG (400 megapixels, a few hundred KB compressed) is refused before it is decoded."""
    buffer = io.BytesIO()
    Image.new("L", (20000, 20000)).save(buffer, "PNG", optimize=False, compress_level=9)
    assert len(buffer.getvalue()) < 1_000_000
    response = client.post("/v1/faces", content=buffer.getvalue(), headers={**AUTH, "Content-Type": "image/png"})
    assert "over 4,000,000 pixels" in refused(response, 413)["message"]


def test_the_model_card_health_readiness_metrics_cors_and_schema(client):
    card = client.get("/v1/model", headers=AUTH).json()
    assert card["class_names"][:2] == ["Neutral", "Happy"] and card["image_size"] == 48
    assert card["temperature"] == pytest.approx(0.6222, abs=1e-3) and "FER+" in card["data_terms"]
    assert card["settings"]["threads"] == 1 and "token" not in card["settings"] and TOKEN not in json.dumps(card)
    assert client.get("/healthz").json() == {"status": "alive"}  # open without the token
    assert client.get("/readyz").json()["status"] == "ready"
    before = client.get("/metrics", headers=AUTH).text
    client.post("/v1/faces", content=face_photo(), headers={**AUTH, "Content-Type": "image/jpeg"})
    after = client.get("/metrics", headers=AUTH).text

    def count(text: str, line: str) -> float:
        return sum(float(row.split()[-1]) for row in text.splitlines() if row.startswith(line))

    served = 'affect_requests_total{endpoint="/v1/faces",status="200"}'
    assert count(after, served) == count(before, served) + 1
    assert count(after, "affect_faces_total") >= count(before, "affect_faces_total") + 1
    assert "affect_request_seconds_bucket" in after and "affect_queue_depth 0.0" in after
    preflight = client.options(
        "/v1/faces", headers={"Origin": "http://example.org", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.headers["access-control-allow-origin"] == "http://example.org"
    other = client.options(
        "/v1/faces", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in other.headers
    schema = client.get("/openapi.json").json()
    assert {"/v1/faces", "/v1/video", "/v1/model", "/healthz", "/readyz"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/v1/faces"]["post"]["requestBody"]["content"]
    page = client.get("/")
    assert (
        page.status_code == 200
        and "/static/app.js" in page.text
        and "http" not in page.text.split("<body>")[1].replace('href="/', "")
    )


def test_a_clip_gives_one_track_with_its_series_and_a_timeline(client, tmp_path):
    pytest.importorskip("matplotlib")
    import affect_keras

    face_clip(tmp_path / "clip.mp4")
    response = client.post(
        "/v1/video?every=2&timeline=true",
        files={"video": ("clip.mp4", (tmp_path / "clip.mp4").read_bytes(), "video/mp4")},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["frames"] == 12 and body["analysed"] == 6 and body["fps"] == pytest.approx(6.0)
    (track,) = body["tracks"]
    expected = json.loads(json.dumps(affect_keras.predict_video(tmp_path / "clip.mp4", every=2)))
    assert track["frames"] == 6 and track["dominant"] == expected[0]["dominant"]
    smoothed = [[list(s["smoothed"].values()) for s in t["series"]] for t in (track, expected[0])]
    assert np.allclose(*smoothed, atol=1e-5)
    assert base64.b64decode(body["timeline_png"]).startswith(b"\x89PNG")

    face_clip(tmp_path / "long.mp4", frames=40, fps=6.0)  # 6.7 s, over --max-video-s 5
    long = client.post(
        "/v1/video", content=(tmp_path / "long.mp4").read_bytes(), headers={**AUTH, "Content-Type": "video/mp4"}
    )
    assert "limit is 5" in refused(long, 413)["message"]
    not_video = client.post("/v1/video", content=b"\x00" * 5000, headers={**AUTH, "Content-Type": "video/mp4"})
    refused(not_video, 400)


def test_the_stream_follows_a_face_across_frames_and_smooths_it(client):
    """Frames of one face, then another expression in the same place (clips.py's switch: Happy, then
    Surprise): one track; with a half-life of a day the smoothed answer stays the first frame's."""
    face = Image.open(io.BytesIO(face_photo())).convert("RGB")
    surprised = Image.open(MUX / "surprise" / "Anders_Fogh_Rasmussen_0001.jpg").convert("RGB").resize(face.size)
    with client.websocket_connect(f"/v1/stream?token={TOKEN}&smooth=86400") as socket:
        answers = []
        for frame in (face, face, surprised):
            buffer = io.BytesIO()
            frame.save(buffer, "JPEG", quality=90)
            socket.send_bytes(buffer.getvalue())
            answers.append(socket.receive_json())
        socket.send_text("hello")
        assert socket.receive_json()["error"]["status"] == 400
        socket.send_bytes(b"not a frame")
        assert socket.receive_json()["error"]["status"] == 400
    assert [a["frame"] for a in answers] == [0, 1, 2]
    assert all(len(a["faces"]) == 1 and a["faces"][0]["track"] == 1 for a in answers)
    first, last = answers[0]["faces"][0], answers[-1]["faces"][0]
    raw = np.array([list(f["probabilities"].values()) for f in (first, last)])
    assert np.abs(raw[0] - raw[1]).max() > 0.1  # the last face reads differently...
    assert np.allclose(list(last["smoothed"].values()), raw[0], atol=1e-4)  # ...and the track kept its history
    assert last["label"] in last["smoothed"] and answers[-1]["time_s"] >= answers[0]["time_s"]


def test_a_stream_without_the_token_or_with_a_bad_option_is_closed(client):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/v1/stream") as socket:
            socket.receive_json()
    assert closed.value.code == 1008
    with client.websocket_connect(f"/v1/stream?token={TOKEN}&min_confidence=7") as socket:
        error = socket.receive_json()["error"]
        assert error["status"] == 422 and error["option"] == "min_confidence"


def test_the_service_runs_without_keras_or_tensorflow():
    """The `serve` extra sits on the light runtime: the app, its workers and a request start neither."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom fastapi.testclient import TestClient\nfrom affect_keras.serve.app import create_app\n"
        "from affect_keras.serve.config import ServeConfig\nfrom affect_keras.serve.workers import Workers\n"
        "with TestClient(create_app(Workers(ServeConfig(threads=1)))) as client:\n"
        "    print(client.post('/v1/faces', content=open(sys.argv[1], 'rb').read(),"
        " headers={'Content-Type': 'image/jpeg'}).status_code)\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(FACE_PHOTO)], capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[:2] == ["200", "[]"], done.stdout + done.stderr[-2000:]
