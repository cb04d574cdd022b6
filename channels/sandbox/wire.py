"""Request-body reading shared by the emulated provider APIs (form, multipart, JSON, query), and pages for people."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

Params = list[tuple[str, Any]]


class BadBody(ValueError):
    """The request body cannot be read as the content type it claims."""


async def read_params(request: Request) -> Params:
    """The query parameters followed by the body's, in order and with repeats (Twilio's MediaUrl)."""
    pairs: Params = list(request.query_params.multi_items())
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        # File parts (uploads) are not emulated; their presence must not break the text fields.
        return pairs + [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    body = await request.body()
    if not body:
        return pairs
    try:
        if content_type == "application/json":
            data = json.loads(body)
            if not isinstance(data, dict):
                raise BadBody("the JSON body must be an object")
            return pairs + list(data.items())
        return pairs + parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadBody(str(exc)) from exc


def param(params: Params, key: str) -> Any:
    """The last value given for `key` (later body fields override the query), or None."""
    value = None
    for name, candidate in params:
        if name == key:
            value = candidate
    return value


def every(params: Params, key: str) -> list[Any]:
    return [value for name, value in params if name == key]


def person_page(title: str, body: str) -> str:
    """A plain page for a person who followed a link into an emulator (a video room); `body` is HTML."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} (sandbox)</title></head><body><main><h1>{html.escape(title)}</h1>"
        f"{body}</main></body></html>"
    )
