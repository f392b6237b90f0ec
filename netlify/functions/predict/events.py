"""The Lambda/Netlify adapter: events in, Lambda proxy responses out.

Owns: reading the three event shapes the handler meets (Netlify's Lambda-compatible v1,
API Gateway REST v1, Lambda Function URL / HTTP API v2) into one Request, turning a
Response into the Lambda proxy response dict, and the size of that dict as Lambda carries it.
"""
from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qsl

from .errors import BadRequest
from .web import Request, Response


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
    if _flag(event.get("isBase64Encoded")):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the body is marked base64 but is not", code="invalid_event") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    return Request(method.upper(), path, headers, query, raw)


def _flag(value: object) -> bool:
    """Return whether an event flag is set: true, or the text "true" (some proxies send text)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def lambda_response(resp: Response) -> dict:
    """Given a Response, return the Lambda proxy response dict (text bodies stay text)."""
    try:
        return {"statusCode": resp.status, "headers": dict(resp.headers),
                "body": resp.body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {"statusCode": resp.status, "headers": dict(resp.headers),
                "body": base64.b64encode(resp.body).decode(), "isBase64Encoded": True}


_CONTROL = bytes(range(32))
_ESCAPED = b'"\\' + _CONTROL  # the ASCII bytes JSON writes in more than one character
_HIGH = bytes(range(128, 256))


def carried_bytes(resp: Response, *, limit: int | None = None) -> int:
    """Return at least the size of the answer's Lambda proxy response dict written as JSON,
    which Lambda's 6 MB limit counts: the body as a JSON string (a quote, backslash or
    newline escaped in two characters, another control character in six, a character
    beyond ASCII in at most three per byte) or base64, and the headers. Given a limit,
    cheaper and looser upper bounds come first: the first within the limit is returned."""
    body = resp.body
    size = 100 + sum(len(k) + len(str(v)) + 6 for k, v in resp.headers.items())
    if limit is not None and size + 6 * len(body) <= limit:  # however it is escaped
        return size + 6 * len(body)
    high = 0
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:  # sent as base64
            return size + 4 * -(-len(body) // 3)
        high = len(body) - len(body.translate(None, _HIGH))
    elif limit is not None:  # one pass: each byte JSON escapes taken at its longest
        loose = size + len(body) + 5 * (len(body) - len(body.translate(None, _ESCAPED)))
        if loose <= limit:
            return loose
    newlines = body.count(b"\n")
    others = len(body) - len(body.translate(None, _CONTROL)) - newlines
    return (size + len(body) + body.count(b'"') + body.count(b"\\") + newlines + 5 * others
            + 2 * high)
