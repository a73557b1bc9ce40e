"""affect-serve's settings (`ServeConfig`): the analysis and video settings predict.py has (the same
declarations, `deploy.config`), and the server's own: where it listens, how much it runs at once and
queues, what a request may hold, and who may call it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affect_keras.deploy.config import GROUPS as PREDICT_GROUPS, VideoConfig
from affect_keras.options import check, setting

GROUPS = {  # the topics of affect-serve --help, in order: {group: (title, description)}
    **{name: PREDICT_GROUPS[name] for name in ("model", "faces", "answer")},
    "video": ("video", "POST /v1/video and the /v1/stream WebSocket: each face followed across frames"),
    "server": ("server", None),
    "limits": (
        "limits",
        "What one request may hold and how much waits: beyond them a request is refused, never queued",
    ),
    "access": ("access", None),
}
TOKEN_VARIABLE = "AFFECT_SERVE_TOKEN"  # the token, where a flag would show it in the process list


def _positive(value) -> bool:
    return value > 0 and math.isfinite(value)


@dataclass(kw_only=True)
class ServeConfig(VideoConfig):
    """What affect-serve serves (a model read with the analysis settings, which a request may change, but
    for the model and engine) and how.

    Examples:
        >>> ServeConfig(port=8080, threads=4).queue
        8
    """

    host: str = setting("127.0.0.1", group="server", help="the address to listen on (0.0.0.0: every interface)")
    port: int = setting(
        8000, group="server", check=(lambda v: 0 <= v <= 65535, "must be a port, 0-65535"), help="0: any free port"
    )
    threads: int = setting(
        2,
        group="server",
        check=(lambda v: 1 <= v <= 64, "must be 1-64"),
        help="analyses run at once, each on its own copy of the model (one per CPU core is the fastest)",
    )
    queue: int = setting(
        8,
        group="limits",
        check=(lambda v: v >= 0, "must be >= 0"),
        help="requests that may wait for a thread; more are answered 503 with Retry-After",
    )
    timeout: float = setting(
        30.0,
        group="limits",
        metavar="SECONDS",
        check=(_positive, "must be > 0"),
        help="longest wait and work for one request (504 after)",
    )
    max_body_mb: float = setting(
        20.0, group="limits", metavar="MB", check=(_positive, "must be > 0"), help="largest request body (413 beyond)"
    )
    max_pixels: int = setting(
        40_000_000,
        group="limits",
        check=(lambda v: v >= 64, "must be >= 64"),
        help="largest image, in pixels, read from its header before it is decoded (413 beyond)",
    )
    max_images: int = setting(
        16, group="limits", check=(lambda v: v >= 1, "must be >= 1"), help="images in one request"
    )
    max_video_s: float = setting(
        120.0,
        group="limits",
        metavar="SECONDS",
        check=(_positive, "must be > 0"),
        help="longest clip POST /v1/video reads",
    )
    token: str = setting(
        "",
        group="access",
        help=f"require 'Authorization: Bearer TOKEN' on /v1 and /metrics (the page asks for it); also read from "
        f"${TOKEN_VARIABLE}, which keeps it out of the process list; default: no token",
    )
    cors: list[str] = setting(
        [],
        group="access",
        metavar="ORIGIN",
        help="web origins allowed to call the API from a browser (https://app.example.org; * for any); the "
        "page at / needs none",
    )

    def validate(self) -> None:
        """The rules between settings; OptionError naming the first that fails."""
        check(
            [
                (
                    all(origin == "*" or "://" in origin for origin in self.cors),
                    "cors",
                    "takes origins such as https://example.org, or *",
                ),
                (self.model not in ("", None), "model", "is required"),
            ]
        )

    def public(self) -> dict:
        """The settings as a dict with the token's value left out (what the server logs and says)."""
        import dataclasses

        values = dataclasses.asdict(self)
        values["token"] = "(set)" if self.token else ""
        return values
