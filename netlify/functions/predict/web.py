"""The transport-neutral request and response every route takes and returns.

Owns: `Request` (method, path, lower-cased headers, query, body bytes), `Response`
(status, headers, body bytes; `Response.json`), and converting numpy values to JSON-safe
types in one place. The Lambda event and WSGI adapters convert to and from these.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

JSON_TYPE = "application/json"


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
        """Return a response whose body is doc as compact JSON (NaN becomes null)."""
        try:  # one pass; numpy values met on the way are converted by _plain
            text = json.dumps(doc, allow_nan=False, separators=(",", ":"), default=_plain)
        except (ValueError, TypeError):  # a NaN (or a numpy key): the slower walk mends it
            text = json.dumps(jsonable(doc), allow_nan=False, separators=(",", ":"))
        return cls(status, {"Content-Type": JSON_TYPE, **(headers or {})}, text.encode())

    @classmethod
    def text(cls, status: int, text: str, content_type: str, headers: dict | None = None):
        """Return a response with a text body of the given media type."""
        return cls(status, {"Content-Type": content_type, **(headers or {})}, text.encode())


def _plain(value):
    """json.dumps' fallback: a numpy scalar or array as plain Python; TypeError otherwise."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


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
