"""affect-serve as a process on a free loopback port: answered, refusing what it must without growing,
stopped cleanly with the request under way answered; and its page in a real browser (Debian's headless
Chromium), photos dropped and the webcam (Chromium's fake camera on a clip of a real face)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
from conftest import FACE_PHOTO, REPO, face_clip, needs_mux  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from serve_load import Server  # noqa: E402

# one server for the file's tests, on one worker, in order: the page first, then the test that stops it
pytestmark = [needs_mux, pytest.mark.xdist_group("serve")]


def face_photo() -> bytes:
    return FACE_PHOTO.read_bytes()


def call(server: Server, path: str, body: bytes | None = None, kind: str = "image/jpeg") -> tuple[int, bytes]:
    status, _, answer = server.call(path, body, kind)
    return status, answer


@pytest.fixture(scope="module")
def server():
    server = Server("--threads", "1", "--max-body-mb", "8", "--timeout", "20")
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------------ the browser
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
SHOTS = os.environ.get("AFFECT_KERAS_SCREENSHOTS")  # a folder: the page's screenshots are saved there


def camera_clip(path: Path, frames: int = 50) -> None:
    """What Chromium's fake camera plays (looped): a Y4M copy of a clip of real faces (benchmarks/clips.py's
    `switch`: one face, Happy, then Surprise)."""
    import cv2
    from clips import switch, write_clip

    actors, _ = switch(FACE_PHOTO.parents[1], at=frames // 2)
    write_clip(path.with_suffix(".mp4"), actors, frames, fps=10)
    capture = cv2.VideoCapture(str(path.with_suffix(".mp4")))
    with open(path, "wb") as clip:
        clip.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            clip.write(b"FRAME\n" + cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
    capture.release()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "no chromium and chromedriver here (make test installs them: apt-get install chromium chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    clip = tmp_path_factory.mktemp("camera") / "face.y4m"
    camera_clip(clip)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, script: str, seconds: float = 30):
    """The first truthy value of a JavaScript expression, polled."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(
        f"the page never showed {script}; its text: {driver.execute_script('return document.body.innerText')[:500]}"
    )


DROP = """
const [data, name] = arguments;
const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
const files = new DataTransfer();
files.items.add(new File([bytes], name, {type: "image/jpeg"}));
const drop = new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true});
document.getElementById("drop").dispatchEvent(drop);
"""


def test_the_page_labels_a_dropped_photo_as_the_api_does_and_follows_the_webcam(server, browser):
    photo = face_photo()
    status, body = call(server, "/v1/faces", photo)
    expected = [face["expression"] or face["status"] for face in json.loads(body)["images"][0]["faces"]]
    browser.get(server.url + "/")
    wait_for(browser, "document.querySelectorAll('#card-fields dd').length")
    assert "Happy" in browser.find_element("id", "card-fields").text
    browser.execute_script(DROP, base64.b64encode(photo).decode(), "face.jpg")
    labels = wait_for(browser, "Array.from(document.querySelectorAll('.result .face')).map((f) => f.dataset.label)")
    assert labels == expected
    assert browser.execute_script("return document.querySelector('.result canvas').width") > 0
    if SHOTS:
        browser.save_screenshot(str(Path(SHOTS) / "serve-photos.png"))

    browser.find_element("id", "mode-webcam").click()
    browser.find_element("id", "start").click()
    track = wait_for(
        browser, "(() => { const s = document.querySelector('#strips .strip'); return s && s.dataset.label; })()", 40
    )
    assert track in ("Happy", "Surprise")  # the clip's face, before and after its change
    wait_for(browser, "Number(document.getElementById('fps').dataset.rate) > 0", 20)
    assert browser.execute_script("return document.querySelectorAll('#strips .strip').length") == 1  # one person
    if SHOTS:
        time.sleep(2)
        browser.save_screenshot(str(Path(SHOTS) / "serve-webcam.png"))
    browser.find_element("id", "stop").click()


def test_the_server_answers_refuses_a_gigabyte_and_a_bomb_without_growing_and_stops_cleanly(server, tmp_path):
    seen = len(server.lines)
    try:
        photo = face_photo()
        status, body = call(server, "/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready"
        status, body = call(server, "/v1/faces", photo)
        assert status == 200 and json.loads(body)["images"][0]["faces"][0]["expression"]
        before = server.rss_mb()

        # 1 GB announced: refused from the header, nothing read; 1 GB streamed without a length: cut at 8 MB
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
            conn.sendall(
                b"POST /v1/faces HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000000\r\n\r\n"
            )
            assert b" 413 " in conn.recv(4096).split(b"\r\n")[0]
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
            conn.sendall(
                b"POST /v1/faces HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            chunk, sent, answer = os.urandom(1 << 20), 0, b""
            try:
                while sent < 1000 and not answer:  # up to 1 GB, until the server answers
                    conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += 1
                    conn.setblocking(False)
                    try:
                        answer = conn.recv(4096)
                    except BlockingIOError:
                        pass
                    conn.setblocking(True)
            except (BrokenPipeError, ConnectionResetError):
                pass
            conn.settimeout(30)
            answer = answer or conn.recv(4096)
            assert b" 413 " in answer.split(b"\r\n")[0] and sent < 20
        bomb = io.BytesIO()
        Image.new("L", (20000, 20000)).save(bomb, "PNG", compress_level=9)
        status, body = call(server, "/v1/faces", bomb.getvalue(), "image/png")
        assert status == 413 and b"too large" in body
        print(f"server RSS {before:.1f} MB before the 1 GB bodies and the bomb, {server.rss_mb():.1f} MB after")
        assert server.rss_mb() - before < 50, (before, server.rss_mb())

        # SIGTERM with a clip under way: the clip is answered, then the server exits 0
        face_clip(tmp_path / "clip.mp4", frames=60, fps=6.0)
        answered = {}
        thread = threading.Thread(
            target=lambda: answered.update(
                zip(
                    ("status", "body"),
                    call(server, "/v1/video?every=1", (tmp_path / "clip.mp4").read_bytes(), "video/mp4"),
                )
            )
        )
        thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("POST /v1/video" in line for line in server.lines):
            status, body = call(server, "/metrics")
            if b"affect_running 1.0" in body:
                break
            time.sleep(0.05)
        assert server.stop() == 0
        thread.join(60)
        assert answered["status"] == 200 and json.loads(answered["body"])["tracks"][0]["frames"] == 60
    finally:
        server.stop(timeout=5)
    lines = server.lines[seen:]
    assert sum(" POST /v1/faces 200 " in line for line in lines) == 1  # one access line per request
    assert sum(" POST /v1/faces 413 " in line for line in lines) == 3
    assert lines[-1].startswith("Stopped") and not any("Traceback" in line for line in lines)
