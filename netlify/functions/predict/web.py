"""The transport-neutral request and response every route takes and returns.

Owns: `Request` (method, path, lower-cased headers, query, body bytes), `Response`
(status, headers, body bytes; `Response.json`), and writing JSON in one place (`dumps`:
numpy values converted, NaN as null, `JsonText` written as it is). The Lambda event and
WSGI adapters convert to and from these.
"""
from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from urllib.parse import quote

import numpy as np

JSON_TYPE = "application/json"
# What a header value keeps as it is: visible ASCII and the space, "%" excepted (it escapes).
_HEADER_SAFE = "".join(c for c in string.printable[:-5] if c not in "%" + string.whitespace) + " "


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


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, doc: object, headers: dict | None = None) -> Response:
        """Return a response whose body is doc as compact JSON (see `dumps`)."""
        return cls(status, {"Content-Type": JSON_TYPE, **(headers or {})}, dumps(doc).encode())

    @classmethod
    def text(cls, status: int, text: str, content_type: str, headers: dict | None = None):
        """Return a response with a text body of the given media type."""
        return cls(status, {"Content-Type": content_type, **(headers or {})}, text.encode())


def header_value(text: str) -> str:
    """Given any text, return it as a valid HTTP header value: visible ASCII and spaces as
    they are, every other character (non-latin-1 text, CR, LF, other controls) and "%" as
    percent-encoded UTF-8, so "2.0 – beta" is sent as "2.0 %E2%80%93 beta" (urllib's
    unquote reads it back). Latin-1 is not kept: WSGI servers, proxies and browsers differ on
    it, and a value that breaks one of them would make every answer fail."""
    return quote(text, safe=_HEADER_SAFE)


class JsonText:
    """A value already written as compact JSON (by `dumps`): `dumps` copies it as it is."""
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


# Stands for each JsonText while json.dumps writes the rest (the NUL written as \u0000);
# random, so that no string of a document can be mistaken for it, and a count check refuses
# a document with a string that holds it.
_MARK = "\x00" + secrets.token_hex(16)
_MARK_JSON = json.dumps(_MARK)


def dumps(doc: object) -> str:
    """Return doc as compact JSON: numpy values as plain ones, NaN as null, and each JsonText
    as its text, so that parts written once (see explain_tree) are not written again."""
    texts: list[str] = []

    def plain(value):  # json.dumps' fallback: numpy values, and JsonText by its mark
        if isinstance(value, JsonText):
            texts.append(value.text)
            return _MARK
        if isinstance(value, (np.ndarray, np.generic)):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    try:  # one pass; numpy values met on the way are converted by plain
        text = json.dumps(doc, allow_nan=False, separators=(",", ":"), default=plain)
    except (ValueError, TypeError):  # a NaN (or a numpy key): the slower walk mends it
        texts.clear()
        text = json.dumps(jsonable(doc), allow_nan=False, separators=(",", ":"), default=plain)
    if not texts:
        return text
    parts = text.split(_MARK_JSON)
    if len(parts) != len(texts) + 1:
        raise ValueError("a string in the document holds the JsonText mark")
    return "".join([piece for pair in zip(parts, texts) for piece in pair] + [parts[-1]])


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
