"""The HTTP API and the page (`create_app`): FastAPI over `workers.Workers`.

    POST /v1/faces   images -> each face's box, landmarks, scores, probabilities and status
    POST /v1/video   a clip -> each person's track, its smoothed series and summary (the timeline on request)
    WS   /v1/stream  JPEG frames in -> tracked faces out, one tracker per connection
    GET  /v1/model   what the model is (metadata.json)
    GET  /healthz, /readyz, /metrics (Prometheus), / (the page), /docs and /openapi.json

Every answer that is not a success is JSON {"error": {"status", "message", "option"}}: never a traceback or
a server path. The analysis runs on the workers' threads, off the event loop."""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import os
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException
from starlette.websockets import WebSocketDisconnect

from affect_keras import __version__
from affect_keras.data.images import ImageError, ImageTooLarge, decode_rgb
from affect_keras.deploy.analyse import face_dict
from affect_keras.deploy.video import VideoAnalysis, run_stream, summarise
from affect_keras.options import OptionError
from affect_keras.serve.inputs import ApiError, flag, option_value, read_request
from affect_keras.serve.workers import REQUEST_OPTIONS, Busy, Workers

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
ENDPOINTS = ("/v1/faces", "/v1/video", "/v1/stream", "/v1/model", "/healthz", "/readyz", "/metrics", "/")
GUARDED = ("/v1/", "/metrics")  # what the token guards (the page, /healthz and /readyz stay open)
VIDEO_TYPES = {"video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov", "video/x-msvideo": ".avi"}


def error_body(status: int, message: str, option: str | None = None) -> dict:
    return {"error": {"status": status, "message": message, **({"option": option} if option else {})}}


def error_response(status: int, message: str, option: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, option), status, headers=headers)


class Metrics:
    """The Prometheus series of one app (a registry of its own)."""

    def __init__(self, workers: Workers):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "affect_requests",
            "Requests answered, by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "affect_request_seconds",
            "Seconds from a request's arrival to its answer",
            ["endpoint"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.faces = Counter("affect_faces", "Faces analysed", registry=self.registry)
        queue = Gauge("affect_queue_depth", "Requests waiting for a thread", registry=self.registry)
        queue.set_function(lambda: workers.waiting)
        running = Gauge("affect_running", "Requests being analysed", registry=self.registry)
        running.set_function(lambda: workers.running)


class Guard:
    """Before the app: the bearer token (on /v1 and /metrics), the body's size (its Content-Length, and what
    is read of a body without one), one access-log line and the metrics of each request."""

    def __init__(self, app, token: str, limit: int, metrics: Metrics):
        self.app, self.token, self.limit, self.metrics = app, token.encode(), limit, metrics

    def allowed(self, scope) -> bool:
        if not self.token or not scope["path"].startswith(GUARDED):
            return True
        headers = dict(scope["headers"])
        given = headers.get(b"authorization", b"")
        given = given[7:].strip() if given[:7].lower() == b"bearer " else b""
        if scope["type"] == "websocket" and not given:  # a browser's WebSocket cannot set a header
            from urllib.parse import parse_qs

            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0].encode()
        return hmac.compare_digest(given, self.token)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            if not self.allowed(scope):
                await receive()  # the connection request
                await send({"type": "websocket.close", "code": 1008, "reason": "missing or wrong token"})
                return
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if not self.allowed(scope):
                answer = error_response(401, "missing or wrong token", headers={"WWW-Authenticate": "Bearer"})
            elif not length.isdigit() or int(length) > self.limit:
                answer = error_response(413, f"the body is over the limit of {self.limit:,} bytes")
            else:
                return await self.app(scope, self._limited(receive), sending)
            await answer(scope, receive, sending)
        finally:
            self._record(scope, status[0], time.perf_counter() - started)

    def _limited(self, receive):
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise ApiError(413, f"the body is over the limit of {self.limit:,} bytes")
            return message

        return limited

    def _record(self, scope, status: int, seconds: float) -> None:
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        self.metrics.requests.labels(endpoint, str(status)).inc()
        self.metrics.latency.labels(endpoint).observe(seconds)
        client = scope.get("client") or ("-", 0)
        log.info("%s %s %s %d %.1f ms", client[0], scope["method"], endpoint, status, 1000 * seconds)


def create_app(workers: Workers) -> FastAPI:
    """The service of loaded `workers` (its settings: `workers.config`). The workers are closed when the
    app shuts down."""
    config = workers.config
    predictor = workers.predictor

    @asynccontextmanager
    async def lifespan(_app):
        yield
        workers.close()

    app = FastAPI(
        title="affect-keras",
        version=__version__,
        summary="Facial expressions of the faces in photos, clips and live frames",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    metrics = Metrics(workers)
    app.add_middleware(Guard, token=config.token, limit=int(config.max_body_mb * 1e6), metrics=metrics)
    if config.cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    _errors(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    model = {
        "name": predictor.metadata.get("name") or Path(predictor.path).name,
        "version": predictor.metadata.get("version"),
    }
    names = predictor.class_names

    async def analysed(work, settings):
        try:
            return await workers.run(work, settings)
        except Busy as busy:
            raise ApiError(503, str(busy), headers={"Retry-After": str(busy.retry_after)}) from None
        except asyncio.TimeoutError:
            raise ApiError(504, f"the analysis took over the server's timeout of {config.timeout:g} s") from None

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", summary="The server is alive")
    async def healthz():
        return {"status": "alive"}

    @app.get("/readyz", summary="The model is loaded and warmed")
    async def readyz():
        return {"status": "ready", "threads": config.threads, "load_seconds": round(workers.load_seconds, 2)}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model", summary="What the model is: classes, input size, temperature, metrics, data terms")
    async def model_card():
        meta = predictor.metadata
        return {
            **model,
            "kind": predictor.kind,
            "class_names": names,
            "heads": list(predictor.heads),
            "image_size": predictor.image_size,
            "framing": predictor.framing,
            "temperature": meta.get("temperature"),
            "metrics": meta.get("metrics"),
            "data_terms": (meta.get("training") or {}).get("data_terms"),
            "licence": meta.get("license") or meta.get("licence"),
            "settings": {name: value for name, value in config.public().items() if name not in ("model", "token")},
            "options": list(REQUEST_OPTIONS),
        }

    @app.post("/v1/faces", summary="The faces of one or several images", openapi_extra=_body_schema("image"))
    async def faces(request: Request):
        started = time.perf_counter()
        items, options = await read_request(request, "image", config.max_images)
        settings = _settings(workers, options)

        def work(analyser):
            images = [(name, _decoded(name, data, config.max_pixels)) for name, data in items]  # all, then any work
            answers = []
            for name, rgb in images:
                began = time.perf_counter()
                found, outcome = analyser.analyse(rgb)
                answers.append(
                    {
                        "name": name,
                        "width": rgb.shape[1],
                        "height": rgb.shape[0],
                        "outcome": outcome,
                        "faces": [face_dict(face, names) for face in found],
                        "seconds": round(time.perf_counter() - began, 4),
                    }
                )
            return answers

        answers = await analysed(work, settings)
        metrics.faces.inc(sum(len(answer["faces"]) for answer in answers))
        return {"model": model, "images": answers, "seconds": round(time.perf_counter() - started, 4)}

    @app.post(
        "/v1/video",
        summary="Each person of a clip: tracks, smoothed series, a summary; the timeline PNG with timeline=true",
        openapi_extra=_body_schema("video"),
    )
    async def video(request: Request):
        started = time.perf_counter()
        items, options = await read_request(request, "video", 1)
        timeline = flag("timeline", options.pop("timeline", False))
        settings = _settings(workers, options)
        if timeline:
            from affect_keras.models.loading import module_installed

            if not module_installed("matplotlib"):
                raise ApiError(422, "timeline needs matplotlib, not installed on the server", "timeline")
        suffix = VIDEO_TYPES.get(request.headers.get("content-type", "").split(";")[0].strip().lower(), "")
        suffix = suffix or Path(items[0][0]).suffix.lower()[:8] or ".mp4"
        answer = await analysed(lambda analyser: _clip(items[0][1], suffix, analyser, settings, timeline), settings)
        metrics.faces.inc(sum(track["frames"] for track in answer["tracks"]))
        return {"model": model, **answer, "seconds": round(time.perf_counter() - started, 4)}

    def _clip(data: bytes, suffix: str, analyser, settings, timeline: bool) -> dict:
        import cv2

        handle, path = tempfile.mkstemp(
            suffix if suffix.isascii() and suffix[1:].isalnum() else ".mp4", "affect-serve-"
        )
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            capture = cv2.VideoCapture(path)
            if not capture.isOpened():
                raise ApiError(400, "the body is not a video this server can read")
            fps, count = capture.get(cv2.CAP_PROP_FPS) or 25.0, capture.get(cv2.CAP_PROP_FRAME_COUNT)
            width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
            if width * height > config.max_pixels:
                capture.release()
                raise ApiError(
                    413, f"frames of {width:.0f} x {height:.0f} pixels, over the limit of {config.max_pixels:,}"
                )
            if count > 0 and count / fps > config.max_video_s:
                capture.release()
                raise ApiError(413, f"a clip of {count / fps:.1f} s; the limit is {config.max_video_s:g} s")
            analysis = VideoAnalysis(analyser, settings.smooth)
            run = run_stream(capture, analysis, settings.every, duration=config.max_video_s, progress=False)
            if run.frames == 0:
                raise ApiError(400, "the video has no frames this server can read")
            tracks = summarise(analysis.faces, names)
            answer = {
                "frames": run.frames,
                "analysed": len(range(0, run.frames, settings.every)),
                "fps": round(run.fps, 3),
                "duration_s": round(max(run.time_s, run.frames / run.fps), 3),
                "tracks": tracks,
            }
            if timeline:
                answer["timeline_png"] = _timeline(tracks, answer["duration_s"])
            return answer
        finally:
            Path(path).unlink(missing_ok=True)

    def _timeline(tracks: list[dict], length: float) -> str:
        from affect_keras.deploy.timeline import plot_timeline

        handle, path = tempfile.mkstemp(".png", "affect-serve-")
        os.close(handle)
        try:
            plot_timeline(tracks, names, Path(path), length, title="clip")
            return base64.b64encode(Path(path).read_bytes()).decode()
        finally:
            Path(path).unlink(missing_ok=True)

    @app.websocket("/v1/stream")
    async def stream(socket: WebSocket):
        await socket.accept()
        try:
            options = {k: option_value(k, v) for k, v in socket.query_params.multi_items() if k != "token"}
            settings = _settings(workers, options)
        except ApiError as error:
            await socket.send_json(error_body(error.status, error.message, error.option))
            await socket.close(1008)
            return
        analysis = VideoAnalysis(workers.analyser(settings), settings.smooth, keep=False)
        start, frame = time.monotonic(), 0
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                if not data:
                    await socket.send_json(error_body(400, "send each frame as a binary message: JPEG or PNG bytes"))
                    continue
                time_s, began = time.monotonic() - start, time.perf_counter()

                def work(analyser, data=data, frame=frame, time_s=time_s):
                    rgb = _decoded("frame", data, config.max_pixels)
                    return analysis.follow(frame, time_s, analyser(rgb))

                try:
                    tracked = await analysed(work, settings)
                except ApiError as error:
                    await socket.send_json({"frame": frame, **error_body(error.status, error.message), **_retry(error)})
                    continue
                metrics.faces.inc(len(tracked))
                await socket.send_json(
                    {
                        "frame": frame,
                        "time_s": round(time_s, 4),
                        "faces": [_tracked(face, names) for face in tracked],
                        "seconds": round(time.perf_counter() - began, 4),
                    }
                )
                frame += 1
        except WebSocketDisconnect:
            return

    return app


def _retry(error: ApiError) -> dict:
    return {"retry_after": int(error.headers["Retry-After"])} if "Retry-After" in error.headers else {}


def _tracked(face, names: list[str]) -> dict:
    """A stream's face: the frame's answer (`face_dict`), its track and the track's smoothed outputs."""
    answer = {
        "track": face.track,
        **face_dict(face.face, names),
        "label": face.label(names),
        "smoothed_status": face.status,
    }
    if face.smoothed is not None:
        answer["smoothed"] = dict(zip(names, map(float, face.smoothed)))
    if face.smoothed_va is not None:
        answer["smoothed_va"] = tuple(map(float, face.smoothed_va))
    return answer


def _settings(workers: Workers, options: dict):
    try:
        return workers.settings(options)
    except OptionError as error:
        raise ApiError(422, str(error), error.option) from None


def _decoded(name: str, data: bytes, max_pixels: int):
    import numpy as np

    try:
        return np.asarray(decode_rgb(data, max_pixels=max_pixels)[0])
    except ImageTooLarge as error:
        raise ApiError(413, f"{name}: {error}") from None
    except ImageError as error:
        raise ApiError(400, f"{name} is not an image this server can read ({error})") from None


def _body_schema(media: str) -> dict:
    """The request bodies the endpoint takes, for the OpenAPI schema (the endpoint reads them itself)."""
    binary = {"type": "string", "format": "binary"}
    many = "images" if media == "image" else "video"
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {many: {"type": "array", "items": binary} if media == "image" else binary},
                        "additionalProperties": {"type": "string", "description": "an option: its value"},
                    }
                },
                f"{media}/*": {"schema": binary},
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            many: {"type": "array", "items": {"type": "string", "format": "byte"}}
                            if media == "image"
                            else {"type": "string", "format": "byte"},
                            "options": {"type": "object"},
                        },
                    }
                },
            },
        }
    }


def _errors(app: FastAPI) -> None:
    """Every refusal as JSON with its status; anything unforeseen as a 500 that says nothing of the server
    (its traceback goes to the server's log)."""

    @app.exception_handler(ApiError)
    async def api_error(_request, error: ApiError):
        return error_response(error.status, error.message, error.option, error.headers)

    @app.exception_handler(OptionError)
    async def option_error(_request, error: OptionError):
        return error_response(422, str(error), error.option)

    @app.exception_handler(HTTPException)
    async def http_error(_request, error: HTTPException):
        return error_response(error.status_code, str(error.detail), headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, error: RequestValidationError):
        return error_response(422, "; ".join(str(e.get("msg")) for e in error.errors()))

    @app.exception_handler(Exception)
    async def unforeseen(_request, error: Exception):
        log.exception("unforeseen error: %s", type(error).__name__)
        return error_response(500, "the server failed on this request; its log says why")
