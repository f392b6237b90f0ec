"""A local Netlify-compatible runtime: the site, its redirects and headers, and Python functions.

Reads netlify.toml and serves, on waitress (a production-grade pure-Python WSGI server):
the publish directory through whitenoise (pretty URLs, HEAD, 405 for other methods), the
[[redirects]] (placeholders, splats, 200 rewrites, 301/302 redirects) and [[headers]]
(on every answer, the server's own errors included), and the Python function packages in
the functions directory under /.netlify/functions/<name>/..., each called with
Netlify-shaped (Lambda v1) events and kept imported (warm) between requests.

    python scripts/serve.py [PORT] [--host 127.0.0.1] [--config netlify.toml] [--dev]
    python scripts/serve.py [PORT] --function-only predict   (self-hosting: the API alone)

With --function-only it serves one function's own WSGI app (`<name>.wsgi`) and nothing
else, its model loaded before it listens: the self-hosting command of docs/self-hosting.md. Both
modes run under the same limits (SERVER_OPTIONS, the request deadline, the refusal of a
request whose length is given twice).
"""
from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import mimetypes
import os
import re
import sys
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
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
    "channel_timeout": 30,        # seconds a connection may sit idle, then closed
    "cleanup_interval": 5,        # how often (seconds) idle and slow connections are looked for
    # Open connections at most; more wait in the backlog. Waitress's default, 100, let 110
    # idle connections stop it answering; each open connection holds one file descriptor.
    "connection_limit": 500,
    # A bigger body is refused (413) from its Content-Length, or as soon as that much of a
    # chunked one has arrived; what arrives is kept in memory up to inbuf_overflow, then in a
    # temporary file, so at most connection_limit x this is ever held. (Waitress refuses a
    # body of this size or more, hence the + 1.)
    "max_request_body_size": MAX_PAYLOAD + 1,
    "max_request_header_size": 64 * 1024,
    "ident": "netlify-local-python",
}
# Seconds a request may take to arrive whole (headers and body) once its first byte came:
# waitress's channel_timeout closes idle connections only, and a client sending a byte every
# few seconds would keep one open for ever.
REQUEST_TIMEOUT = 30
mimetypes.add_type("text/javascript", ".js")
log = logging.getLogger("serve")


@dataclass
class Site:
    publish: Path
    functions: Path
    redirects: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)


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
    environment = {k: str(v) for k, v in build.get("environment", {}).items()}
    if "MODEL_DIR" in environment:  # netlify.toml states it relative to itself
        environment["MODEL_DIR"] = str(base / environment["MODEL_DIR"])
    return Site(base / build.get("publish", "."), base / functions,
                doc.get("redirects", []), doc.get("headers", []), environment)


@lru_cache(maxsize=256)
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

    def __init__(self, site: Site, *, dev: bool = False):
        from whitenoise import WhiteNoise
        self.site = site
        self.dev = dev
        self.publish = site.publish.resolve()  # once: a request never resolves a path
        # dev (autorefresh): files edited while the runtime runs are served as they are now,
        # at the cost of a file system look-up per request; otherwise the files are read once.
        self.static = WhiteNoise(self.routed, root=str(self.publish), autorefresh=dev,
                                 index_file=True)
        self.files = set() if dev else {"/" + p.relative_to(self.publish).as_posix()
                                        for p in self.publish.rglob("*") if p.is_file()}
        # 200 rewrites no published file can shadow (Netlify serves a file before a rule
        # that is not forced): a path they match goes to them without a file look-up.
        urls = {u for f in self.files
                for u in (f, f.removesuffix(".html"), f.removesuffix("index.html"))}
        self.unshadowed = {id(rule) for rule in site.redirects
                           if not any(map(_pattern(rule["from"]).match, urls))} if not dev \
            else set()
        self.functions = {p.parent.name for p in site.functions.glob("*/__init__.py")}

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
        hit = match_redirect(self.site.redirects, path)
        if hit and id(hit[0]) in self.unshadowed:
            return self.redirected(environ, start, path, *hit)
        pretty = self.pretty_file(path)
        if pretty is not None:
            environ["PATH_INFO"] = pretty
        return self.static(environ, start)

    def pretty_file(self, path: str) -> str | None:
        """Return /name.html for a pretty URL /name whose file exists, else None."""
        if path.endswith("/") or "." in path.rsplit("/", 1)[-1]:
            return None
        if not self.dev:
            return path + ".html" if path + ".html" in self.files else None
        file = (self.publish / (path.lstrip("/") + ".html")).resolve()
        return path + ".html" if file.is_relative_to(self.publish) and file.is_file() else None

    def routed(self, environ, start_response):
        """What no static file answers: the redirect rules, then the 404 page."""
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        hit = match_redirect(self.site.redirects, path)
        return self.redirected(environ, start_response, path, *hit) if hit else \
            self.page_404(start_response)

    def redirected(self, environ, start_response, path: str, rule: dict, target: str):
        """Answer a path by the redirect rule it matched: a 3xx, a function or a file."""
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
        known = name in self.functions or self.dev and name.isidentifier() and (
            self.site.functions / name / "__init__.py").is_file()
        if not known:
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


def _error_task_class(site: Site, max_body: int):
    """Return waitress's ErrorTask answering with the JSON error body and [[headers]]: a body
    over the limit with the function's own payload_too_large."""
    from waitress.task import ErrorTask

    class SiteErrorTask(ErrorTask):
        def execute(self):
            e = self.request.error
            code = getattr(e, "api_code", re.sub(r"\W+", "_", e.reason.lower()).strip("_"))
            message = e.body if hasattr(e, "api_code") else e.reason.lower()
            if e.code == 413:
                code, message = "payload_too_large", (f"the body is over {max_body} bytes, "
                                                      "the most accepted")
            body = error_body(code, message)
            self.status = f"{e.code} {e.reason}"
            self.response_headers.extend([("Content-Type", "application/json"),
                                          *[(k, str(v)) for k, v in
                                            headers_for(site.headers, "/").items()]])
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    return SiteErrorTask


def _channel_class(site: Site, max_body: int):
    """Return waitress's HTTPChannel refusing a request whose length is given twice and
    noting when each request began to arrive (for the request deadline)."""
    from waitress.channel import HTTPChannel
    from waitress.parser import HTTPRequestParser
    from waitress.utilities import BadRequest

    class ConflictingLengths(BadRequest):
        api_code = "conflicting_lengths"

    class Parser(HTTPRequestParser):
        def parse_header(self, header_plus):
            super().parse_header(header_plus)
            # RFC 9112 6.3: both framings at once is how requests are smuggled past a proxy
            # that reads the other one; refused, not resolved.
            if self.chunked and "CONTENT_LENGTH" in self.headers:
                self.error = ConflictingLengths("the request has both Content-Length and "
                                                "Transfer-Encoding: chunked; send one")
                self.completed = True

    class Channel(HTTPChannel):
        error_task_class = _error_task_class(site, max_body)
        parser_class = Parser
        request_started = 0.0

        def received(self, data):
            if self.request is None:  # these bytes begin a request
                self.request_started = time.time()
            return super().received(data)

    return Channel


def _deadline(server, timeout: float) -> None:
    """Make the server also close a connection whose request has been arriving for longer
    than timeout seconds, however often its bytes come (waitress closes idle ones only)."""
    idle = server.maintenance

    def maintenance(now):
        idle(now)
        for channel in list(server.active_channels.values()):
            if channel.request is not None and now - channel.request_started > timeout:
                channel.will_close = True

    server.maintenance = maintenance


def check_settings(site: Site) -> None:
    """Raise SystemExit naming the variable if a function's settings are bad."""
    for package in sorted(site.functions.glob("*/settings.py")):
        module = importlib.import_module(f"{package.parent.name}.settings")
        try:
            module.from_env()
        except module.SettingsError as exc:
            raise SystemExit(f"serve.py: cannot start, a setting is bad: {exc}") from None


def make_server(host: str, port: int, config: Path, *, dev: bool = False,
                function: str | None = None, request_timeout: float = REQUEST_TIMEOUT,
                **options):
    """Return a waitress server running the site that config describes (not yet serving), or
    with function, only that function's WSGI app, its model loaded first."""
    from waitress.server import create_server
    site = load_site(config)
    for key, value in site.environment.items():  # as netlify dev does; the shell's own win
        os.environ.setdefault(key, value)
    sys.path.insert(0, str(site.functions))
    check_settings(site)
    options = {**SERVER_OPTIONS, **options}
    if function:
        wsgi = importlib.import_module(f"{function}.wsgi")
        app = wsgi.warm_app()  # loads the model now: no request waits for it
        limit = importlib.import_module(f"{function}.settings").from_env().max_body_bytes
        options["max_request_body_size"] = limit + 1
    else:
        app = NetlifySite(site, dev=dev)
    server = create_server(app, host=host, port=port, **options)
    server.channel_class = _channel_class(site, options["max_request_body_size"] - 1)
    _deadline(server, request_timeout)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the site and its Python functions locally.")
    parser.add_argument("port", nargs="?", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", type=Path, default=ROOT / "netlify.toml")
    parser.add_argument("--timeout", type=int, default=SERVER_OPTIONS["channel_timeout"],
                        help="seconds an idle connection is kept, and the most a request may "
                             "take to arrive whole (default %(default)s)")
    parser.add_argument("--dev", action="store_true",
                        help="development: site files edited while it runs are served as they "
                             "are now (whitenoise autorefresh; slower)")
    parser.add_argument("--function-only", metavar="NAME",
                        help="serve only this function's WSGI app (e.g. predict), its model "
                             "loaded before it listens: self-hosting the API")
    parser.add_argument("--threads", type=int, default=SERVER_OPTIONS["threads"],
                        help="requests handled at once (default %(default)s)")
    args = parser.parse_args()
    # Before NumPy is imported: one BLAS thread per process, as on Lambda (deploy/template.yaml).
    # The requests' threads are the parallelism; BLAS threads per request would only contend.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        server = make_server(args.host, args.port, args.config, dev=args.dev,
                             function=args.function_only, request_timeout=args.timeout,
                             channel_timeout=args.timeout, threads=args.threads,
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
