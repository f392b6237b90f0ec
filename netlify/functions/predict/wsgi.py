"""The WSGI adapter: `app(environ, start_response)` runs the function under any WSGI server.

Owns: turning a WSGI environ into a Request (the body read to its Content-Length, up to
the body limit plus one byte) and a Response into a WSGI answer. Self-host with, e.g.:

    waitress-serve --host 127.0.0.1 --port 8080 --call predict.wsgi:make_app
    (with netlify/functions on PYTHONPATH)
"""
from __future__ import annotations

from http import HTTPStatus
from urllib.parse import parse_qsl

from .app import App, Misconfigured, default_app
from .web import Request, Response


def _reason(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def request_from_environ(environ: dict, *, max_body: int) -> Request:
    """Given a WSGI environ, return the Request; the body read is capped at max_body + 1 bytes."""
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
               if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(min(length, max_body + 1)) if length > 0 else b""
    # PEP 3333 hands the path over as latin-1 text of the raw bytes; the function reads UTF-8.
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
    path = (environ.get("SCRIPT_NAME", "") or "") + path
    return Request(environ.get("REQUEST_METHOD", "GET").upper(), path, headers,
                   dict(parse_qsl(environ.get("QUERY_STRING", ""))), body)


def respond(resp: Response, start_response) -> list[bytes]:
    """Given a Response, start the WSGI answer and return its body iterable."""
    headers = {"Content-Length": str(len(resp.body)), **resp.headers}
    start_response(_reason(resp.status), [(k, str(v)) for k, v in headers.items()])
    return [resp.body] if resp.body else []


def make_app(core: App | Misconfigured | None = None):
    """Return a WSGI application over the given App (default: the one from the environment)."""
    def app(environ, start_response):
        target = core or default_app()
        limit = target.settings.max_body_bytes if isinstance(target, App) else 0
        return respond(target(request_from_environ(environ, max_body=limit)), start_response)
    return app


app = make_app()
