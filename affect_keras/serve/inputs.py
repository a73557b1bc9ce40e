"""What a request holds: its images or clip (a multipart file, the raw body, or base64 in JSON) and its
options (form fields, query parameters or a JSON object), read without touching the server's files: an
input is bytes, never a path or a URL to fetch."""

from __future__ import annotations

import base64
import binascii
import json
import re
import types
import typing

from affect_keras.deploy.config import VideoConfig
from affect_keras.options import OptionError, shown


class ApiError(Exception):
    """A request the service refuses: the HTTP status, what to tell the client, and the option at fault."""

    def __init__(self, status: int, message: str, option: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.option, self.headers = status, message, option, headers or {}


TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
KINDS = typing.get_type_hints(VideoConfig)  # each request option's declared type
DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


def option_value(name: str, value):
    """A request option's value: a JSON value as it is, a text (form field, query parameter) read as the
    setting's declared type (`VideoConfig`); the config then checks it."""
    if not isinstance(value, str):
        return value
    kind = KINDS.get(name)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if value.strip().lower() in ("", "none", "null"):
            return None
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    text = value.strip()
    if kind is bool:
        return flag(name, text)
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise OptionError(name, f"must be a number, not {shown(value)}") from None
    return value


def flag(name: str, value) -> bool:
    """An on/off option: true or false in JSON, true/false, 1/0, yes/no or on/off as text."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, str) or value.strip().lower() not in TRUE + FALSE:
        raise OptionError(name, f"must be true or false, not {shown(value)}")
    return value.strip().lower() in TRUE


def _options(pairs) -> dict:
    options = {}
    for name, value in pairs:
        if name in options:
            raise OptionError(name, "is given twice")
        options[name] = option_value(name, value)
    return options


async def read_request(request, media: str, limit: int) -> tuple[list[tuple[str, bytes]], dict]:
    """([(name, bytes)], options) of a request carrying `media` ("image" or "video"): multipart/form-data
    (every file part; the other fields are options), the raw body with Content-Type `media`/* or
    application/octet-stream (options in the query), or JSON {"images": [base64, ...] | "image": base64,
    "options": {...}} (a data: URL's base64 too). At most `limit` items (413 beyond)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query = list(request.query_params.multi_items())
    if kind == "multipart/form-data":
        from starlette.datastructures import UploadFile

        try:
            form = await request.form(max_files=limit + 1, max_fields=64)
        except ApiError:  # the body over its limit
            raise
        except Exception as error:  # the multipart parser's refusals (too many parts, a broken body)
            detail = str(getattr(error, "detail", error))
            if "too many files" in detail.lower():
                raise ApiError(413, f"more than {limit} {media}s in one request; the limit is {limit}") from None
            raise ApiError(400, f"the multipart body cannot be read ({detail})") from None
        items, fields = [], []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                items.append((value.filename or name, await value.read()))
            else:
                fields.append((name, value))
        await form.close()
        options = _options(query + fields)
    elif kind == "application/json":
        items, options = _json_items(await request.body())
        options = {**_options(query), **{name: option_value(name, value) for name, value in options.items()}}
    elif kind.startswith(media + "/") or kind == "application/octet-stream":
        items, options = [("body", await request.body())], _options(query)
    else:
        raise ApiError(
            415,
            f"Content-Type {kind or '(none)'} is not taken here: send multipart/form-data, application/json with "
            f"base64, or the raw {media} as {media}/*",
        )
    if not items or not any(data for _, data in items):
        raise ApiError(400, f"no {media} in the request (an empty body or file part)")
    if len(items) > limit:
        raise ApiError(413, f"{len(items)} {media}s in one request; the limit is {limit}")
    return items, options


def _json_items(body: bytes) -> tuple[list[tuple[str, bytes]], dict]:
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise ApiError(400, 'the JSON body must be an object: {"images": [base64, ...], "options": {...}}')
    unknown = set(document) - {"images", "image", "video", "options"}
    if unknown:
        raise ApiError(
            400, f"the JSON body holds {shown(sorted(unknown))}; it takes images (or image, video) and options"
        )
    texts = document.get("images", [])
    texts = texts if isinstance(texts, list) else [texts]
    texts += [document[key] for key in ("image", "video") if key in document]
    options = document.get("options", {})
    if not isinstance(options, dict):
        raise ApiError(400, "options must be a JSON object of option: value")
    items = []
    for k, text in enumerate(texts):
        if not isinstance(text, str):
            raise ApiError(400, f"images[{k}] must be base64 text, not {type(text).__name__}")
        try:
            items.append((f"images[{k}]", base64.b64decode(DATA_URL.sub("", text.strip()), validate=True)))
        except (binascii.Error, ValueError):
            raise ApiError(
                400, f"images[{k}] is not base64 (the image's bytes are sent; a URL or a path is never read)"
            ) from None
    return items, options
