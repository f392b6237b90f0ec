"""A local Netlify-compatible runtime: the site, its redirects and headers, and Python functions.

Reads netlify.toml and serves, on waitress (a production-grade pure-Python WSGI server):
the publish directory through whitenoise (pretty URLs, HEAD, 405 for other methods), the
[[redirects]] (placeholders, splats, 200 rewrites, 301/302 redirects) and [[headers]]
(on every answer, the server's own errors included), and the Python function packages in
the functions directory under /.netlify/functions/<name>/..., each called with
Netlify-shaped (Lambda v1) events and kept imported (warm) between requests.

    python scripts/serve.py [PORT] [--host 127.0.0.1] [--config netlify.toml]
"""
from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import mimetypes
import re
import sys
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_PREFIX = "/.netlify/functions/"
MAX_PAYLOAD = 6 * 1024 * 1024  # Netlify/Lambda synchronous payload limit
MAX_SEGMENT_BYTES = 255  # the longest file name most file systems allow
MAX_PATH_BYTES = 2048  # well under PATH_MAX (4096) once joined to the publish directory
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml",
              "application/x-www-form-urlencoded", "image/svg+xml")
# How the runtime's waitress server is tuned: each limit is a waitress adjustment.
SERVER_OPTIONS = {
    "threads": 8,                 # requests handled at once; the model stays warm in one process
    "backlog": 1024,              # connections the kernel queues before accept (http.server: 5)
    "channel_timeout": 30,        # seconds a connection may sit idle or half-sent, then closed
    "cleanup_interval": 5,        # how often (seconds) idle connections are looked for
    "connection_limit": 1000,     # open connections at most; more wait in the backlog
    "max_request_body_size": MAX_PAYLOAD,
    "max_request_header_size": 64 * 1024,
    "ident": "netlify-local-python",
}
mimetypes.add_type("text/javascript", ".js")
log = logging.getLogger("serve")


@dataclass
class Site:
    publish: Path
    functions: Path
    redirects: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)


@dataclass
class Context:
    """The slice of the Lambda context object that functions use."""
    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deadline: float = field(default_factory=lambda: time.time() + 26)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def load_site(config: Path) -> Site:
    """Given a netlify.toml, return its publish dir, functions dir, redirects and headers."""
    doc = tomllib.loads(config.read_text(encoding="utf-8"))
    build = doc.get("build", {})
    base = config.parent
    functions = doc.get("functions", {}).get("directory") or build.get("functions", "netlify/functions")
    return Site(base / build.get("publish", "."), base / functions,
                doc.get("redirects", []), doc.get("headers", []))


def _pattern(rule_from: str) -> re.Pattern:
    out = ""
    for part in re.split(r"(/\*|:[A-Za-z_]\w*)", rule_from.rstrip("/") or "/"):
        if part == "/*":  # like Netlify, /api/* matches /api itself too
            out += "(?:/(?P<splat>.*))?"
        elif part.startswith(":"):
            out += f"(?P<{part[1:]}>[^/]+)"
        else:
            out += re.escape(part)
    return re.compile(f"^{out}/?$")


def match_redirect(rules: list[dict], path: str) -> tuple[dict, str] | None:
    """Given the redirect rules and a path, return the first matching rule and its target."""
    for rule in rules:
        m = _pattern(rule["from"]).match(path)
        if m:
            target = rule["to"]
            for name, value in m.groupdict().items():
                target = target.replace(f":{name}", value or "")
            return rule, target
    return None


def headers_for(rules: list[dict], path: str) -> dict:
    """Return the [[headers]] values whose `for` pattern matches the path."""
    out = {}
    for rule in rules:
        if re.fullmatch(re.escape(rule["for"]).replace(r"\*", ".*"), path):
            out.update(rule.get("values", {}))
    return out


def error_body(code: str, message: str) -> bytes:
    """Return the one JSON error body the function also answers with."""
    return json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


class NetlifySite:
    """The WSGI app of the runtime: Netlify's order of static files, redirects and functions."""

    def __init__(self, site: Site):
        from whitenoise import WhiteNoise
        self.site = site
        # autorefresh: files edited while the runtime runs are served as they are now.
        self.static = WhiteNoise(self.routed, root=str(site.publish), autorefresh=True,
                                 index_file=True)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        extra = headers_for(self.site.headers, path)

        def start(status, headers, exc_info=None):
            own = {k.lower() for k, _ in headers}  # what the response set itself wins
            return start_response(status, [*headers, *[(k, str(v)) for k, v in extra.items()
                                                       if k.lower() not in own]], exc_info)

        if "\x00" in path:
            return self.page_404(start)
        if any(len(s.encode()) > MAX_SEGMENT_BYTES for s in path.split("/")):
            return self.answer(start, 414, error_body("uri_too_long", "a path segment is "
                                                      f"longer than {MAX_SEGMENT_BYTES} bytes"))
        if len(path.encode()) > MAX_PATH_BYTES:
            return self.answer(start, 414, error_body("uri_too_long", "the path is longer "
                                                      f"than {MAX_PATH_BYTES} bytes"))
        if path.startswith(FUNCTIONS_PREFIX):
            return self.call_function(environ, start, path, path)
        pretty = self.pretty_file(path)
        if pretty is not None:
            environ["PATH_INFO"] = pretty
        return self.static(environ, start)

    def pretty_file(self, path: str) -> str | None:
        """Return /name.html for a pretty URL /name whose file exists, else None."""
        if path.endswith("/") or "." in path.rsplit("/", 1)[-1]:
            return None
        base = self.site.publish.resolve()
        file = (base / (path.lstrip("/") + ".html")).resolve()
        return path + ".html" if file.is_relative_to(base) and file.is_file() else None

    def routed(self, environ, start_response):
        """What no static file answers: the redirect rules, then the 404 page."""
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        hit = match_redirect(self.site.redirects, path)
        if hit:
            rule, target = hit
            status = int(rule.get("status", 301))
            if status in (301, 302, 303, 307, 308):
                return self.answer(start_response, status, b"", {"Location": target})
            if not target.startswith("/"):
                return self.answer(start_response, 502, error_body(
                    "proxy_not_supported", "proxying to another host is not supported "
                    "locally"))
            if target.split("?")[0].startswith(FUNCTIONS_PREFIX):
                return self.call_function(environ, start_response, target.split("?")[0], path)
            environ["PATH_INFO"] = target.split("?")[0]
            return self.static(environ, start_response)
        return self.page_404(start_response)

    def page_404(self, start_response):
        missing = self.site.publish / "404.html"
        data = missing.read_bytes() if missing.is_file() else b"Not Found\n"
        return self.answer(start_response, 404, data, {"Content-Type": "text/html; charset=utf-8"})

    @staticmethod
    def answer(start_response, status: int, data: bytes, headers: dict | None = None):
        headers = {"Content-Type": "application/json", **(headers or {}),
                   "Content-Length": str(len(data))}
        start_response(_status_line(status), list(headers.items()))
        return [data]

    def call_function(self, environ, start_response, target: str, original: str):
        name = target[len(FUNCTIONS_PREFIX):].split("/")[0]
        if not name.isidentifier() or not (self.site.functions / name / "__init__.py").is_file():
            return self.answer(start_response, 404, error_body("not_found",
                                                               "function not found"))
        module = importlib.import_module(name)  # imported once per process: warm afterwards
        result = module.handler(event_from_environ(environ, original), Context(name))
        data = result.get("body") or ""
        data = base64.b64decode(data) if result.get("isBase64Encoded") else data.encode("utf-8")
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        status = int(result.get("statusCode", 200))
        headers["Content-Length"] = headers.get("Content-Length", str(len(data)))
        start_response(_status_line(status), list(headers.items()))
        return [data] if data and environ["REQUEST_METHOD"] != "HEAD" else []


def event_from_environ(environ: dict, path: str) -> dict:
    """Given a WSGI request, return the Netlify (Lambda v1) event a function receives."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
               if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    ctype = headers.get("content-type", "")
    text = not body or ctype.startswith(TEXT_TYPES) or not ctype
    try:
        body_text = body.decode("utf-8") if text else base64.b64encode(body).decode()
    except UnicodeDecodeError:
        text, body_text = False, base64.b64encode(body).decode()
    query = environ.get("QUERY_STRING", "")
    multi_query = parse_qs(query, keep_blank_values=True)
    host = headers.get("host", "localhost")
    return {
        "httpMethod": environ["REQUEST_METHOD"], "path": path,
        "rawUrl": f"http://{host}{path}" + (f"?{query}" if query else ""), "rawQuery": query,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()},
        "multiValueQueryStringParameters": multi_query,
        "body": body_text, "isBase64Encoded": not text,
    }


def _error_task_class(site: Site):
    """Return waitress's ErrorTask answering with the JSON error body and [[headers]]."""
    from waitress.task import ErrorTask

    class SiteErrorTask(ErrorTask):
        def execute(self):
            e = self.request.error
            body = error_body(re.sub(r"\W+", "_", e.reason.lower()).strip("_"),
                              e.reason.lower())
            self.status = f"{e.code} {e.reason}"
            self.response_headers.extend([("Content-Type", "application/json"),
                                          *[(k, str(v)) for k, v in
                                            headers_for(site.headers, "/").items()]])
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    return SiteErrorTask


def check_settings(site: Site) -> None:
    """Raise SystemExit naming the variable if a function's settings are bad."""
    for package in sorted(site.functions.glob("*/settings.py")):
        module = importlib.import_module(f"{package.parent.name}.settings")
        try:
            module.from_env()
        except module.SettingsError as exc:
            raise SystemExit(f"serve.py: cannot start, a setting is bad: {exc}") from None


def make_server(host: str, port: int, config: Path, **options):
    """Return a waitress server running the site that config describes (not yet serving)."""
    from waitress.channel import HTTPChannel
    from waitress.server import create_server
    site = load_site(config)
    sys.path.insert(0, str(site.functions))
    check_settings(site)
    server = create_server(NetlifySite(site), host=host, port=port,
                           **{**SERVER_OPTIONS, **options})
    server.channel_class = type("SiteChannel", (HTTPChannel,),
                                {"error_task_class": _error_task_class(site)})
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the site and its Python functions locally.")
    parser.add_argument("port", nargs="?", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", type=Path, default=ROOT / "netlify.toml")
    parser.add_argument("--timeout", type=int, default=SERVER_OPTIONS["channel_timeout"],
                        help="seconds an idle or slow connection is kept (default %(default)s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        server = make_server(args.host, args.port, args.config, channel_timeout=args.timeout,
                             cleanup_interval=min(5, max(1, args.timeout // 2)))
    except OSError as exc:
        sys.exit(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); "
                 "is it already running? Choose another port: PORT=8890 bash scripts/run.sh")
    print(f"Serving on http://{args.host}:{server.effective_port}/", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
