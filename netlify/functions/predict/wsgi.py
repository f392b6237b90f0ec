"""The WSGI adapter: `app(environ, start_response)` runs the function under any WSGI server.

Owns: turning a WSGI environ into a Request (the body read to its Content-Length, or to its
end when the server has decoded a chunked body, up to the body limit plus one byte) and a
Response into a WSGI answer. Self-hosting (docs/self-hosting.md): `scripts/serve.py --function-only`
(waitress, limits and a warm model), or `gunicorn --preload 'predict.wsgi:warm_app()'`
(with netlify/functions on PYTHONPATH).
"""
from __future__ import annotations

from http import HTTPStatus
from urllib.parse import parse_qsl

from .app import App, Misconfigured, default_app, error_response, new_timing, warm
from .errors import ApiError, BadRequest
from .web import Request, Response


def _reason(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _body(environ: dict, *, max_body: int) -> bytes:
    """Return the request body, at most max_body + 1 bytes of it; BadRequest if its length
    is given twice (RFC 9112 6.3: a request smuggling pattern)."""
    length = environ.get("CONTENT_LENGTH") or ""
    if length and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise BadRequest("the request has both Content-Length and Transfer-Encoding: chunked; "
                         "send one", code="conflicting_lengths")
    if not length:
        # A chunked body has no Content-Length: servers that decode it and mark where it ends
        # (gunicorn, PEP 3333's wsgi.input_terminated) let it be read to its end.
        if environ.get("wsgi.input_terminated"):
            return environ["wsgi.input"].read(max_body + 1)
        return b""
    try:
        size = int(length)
    except ValueError:
        return b""
    return environ["wsgi.input"].read(min(size, max_body + 1)) if size > 0 else b""


def request_from_environ(environ: dict, *, max_body: int) -> Request:
    """Given a WSGI environ, return the Request; the body read is capped at max_body + 1 bytes."""
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
               if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    body = _body(environ, max_body=max_body)
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
        try:
            req = request_from_environ(environ, max_body=limit)
        except ApiError as err:
            resp = error_response(err)
            if isinstance(target, App):
                resp = target.finish(None, resp, new_timing(None))
            return respond(resp, start_response)
        return respond(target(req), start_response)
    return app


def warm_app():
    """Return the WSGI app with the model already loaded: a server that calls this before it
    takes traffic (gunicorn --preload 'predict.wsgi:warm_app()') never makes a request wait
    for the load."""
    return make_app(warm())


app = make_app()
