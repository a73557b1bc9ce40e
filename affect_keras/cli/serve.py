"""serve.py (affect-serve): the prediction service, an HTTP API and a web page over a model."""

from __future__ import annotations

import os
import signal
import socket

from affect_keras.cli.common import ArgumentParser, add_settings, command, show_logs
from affect_keras.models.loading import module_installed
from affect_keras.options import OptionError
from affect_keras.serve.config import GROUPS, TOKEN_VARIABLE, ServeConfig

SERVE_MODULES = ("fastapi", "uvicorn", "multipart", "prometheus_client")  # the `serve` extra's


def build_parser() -> ArgumentParser:
    """serve.py's arguments: one per ServeConfig field."""
    parser = ArgumentParser(
        prog="serve.py",
        description="Serve a model over HTTP: POST /v1/faces (photos), POST /v1/video (a clip), the /v1/stream "
        "WebSocket (live frames), GET /v1/model, and a web page at / for photos and the webcam. The API's "
        "schema: /docs.",
    )
    add_settings(parser, ServeConfig, GROUPS)
    return parser


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: a free one), listening; OptionError naming what failed."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # the protocol too: asyncio turns Nagle's algorithm off only on sockets that say they are TCP (without
        # it, each answer on a kept-alive connection waited ~40 ms for the client's delayed ACK)
        sock = socket.socket(family, kind, protocol)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        raise OptionError("port", f"{port} on {host}: {error.strerror or error}") from None
    return sock


@command("serve.py")
def main(argv=None) -> int:
    parser = build_parser()
    config = parser.parse_config(ServeConfig, argv)
    missing = [name for name in SERVE_MODULES if not module_installed(name)]
    if missing:
        parser.stop(ValueError(f"the service needs {', '.join(missing)}: pip install 'affect-keras[serve]'"))
    config.token = config.token or os.environ.get(TOKEN_VARIABLE, "")
    import uvicorn

    from affect_keras.serve.app import create_app
    from affect_keras.serve.workers import Workers

    show_logs()
    try:
        sock = listening_socket(config.host, config.port)
    except OptionError as error:
        parser.stop(error)
    try:
        workers = Workers(config)
    except (ValueError, RuntimeError) as error:
        sock.close()
        parser.stop(error)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(workers),
            log_config=None,
            access_log=False,  # the app logs one line per request
            timeout_graceful_shutdown=int(config.timeout) + 1,
            ws_max_size=int(config.max_body_mb * 1e6),
            timeout_keep_alive=5,
        )
    )
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"Serving {workers.predictor.path} on http://{shown}:{port}/ (the API: /docs); Ctrl-C stops", flush=True)
    # uvicorn stops on SIGTERM or SIGINT after answering the requests under way, then raises the signal
    # again for the handlers it found: these, which note it, so that the command ends with its own status
    stopped_by = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: stopped_by.append(number))
    server.run(sockets=[sock])
    print("Stopped: requests under way were answered")
    return 130 if signal.SIGINT in stopped_by else 0
