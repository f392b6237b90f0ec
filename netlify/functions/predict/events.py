"""The function's edge: Lambda/Netlify events in, Lambda responses out.

Owns: reading the three event shapes the handler meets (Netlify's Lambda-compatible v1,
API Gateway REST v1, Lambda Function URL / HTTP API v2) into one Request, building
response dicts, and converting numpy values to JSON-safe types in one place.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import numpy as np

from .errors import BadRequest


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def _str_dict(value: object, *, lower: bool = False) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {(str(k).lower() if lower else str(k)): str(v) for k, v in value.items()
            if v is not None}


def request_from_event(event: object) -> Request:
    """Given a v1 or v2 Lambda/Netlify HTTP event, return a Request; BadRequest if it is none."""
    if not isinstance(event, dict):
        raise BadRequest("the event is not an HTTP event", code="invalid_event")
    context = event.get("requestContext")
    http = context.get("http") if event.get("version") == "2.0" and isinstance(context, dict) \
        else None
    if isinstance(http, dict):
        method, path = http.get("method"), event.get("rawPath") or http.get("path")
        query = dict(parse_qsl(str(event.get("rawQueryString") or "")))
    else:
        method, path = event.get("httpMethod"), event.get("path")
        query = _str_dict(event.get("queryStringParameters"))
    if not isinstance(method, str) or not isinstance(path, str):
        raise BadRequest("the event has no HTTP method or path", code="invalid_event")
    headers = _str_dict(event.get("headers"), lower=True)
    if isinstance(http, dict) and isinstance(event.get("cookies"), list):
        headers.setdefault("cookie", "; ".join(map(str, event["cookies"])))
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise BadRequest("the event body is not text", code="invalid_event")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the body is marked base64 but is not", code="invalid_event") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    return Request(method.upper(), path, headers, query, raw)


def jsonable(value):
    """Given a value that may hold numpy scalars or arrays, return plain JSON-safe Python."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and value != value:
        return None
    return value


def response(status: int, body: str | bytes = "", headers: dict | None = None) -> dict:
    """Return a Lambda proxy response dict."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    return {"statusCode": status, "headers": dict(headers or {}), "body": body,
            "isBase64Encoded": False}


def json_response(status: int, doc: object, headers: dict | None = None) -> dict:
    """Return a Lambda proxy response with a JSON body."""
    return response(status, json.dumps(jsonable(doc), allow_nan=False, separators=(",", ":")),
                    {"Content-Type": "application/json", **(headers or {})})
