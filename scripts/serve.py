"""A local Netlify-compatible runtime: the site, its redirects and headers, and Python functions.

Reads netlify.toml; serves the publish directory; applies [[redirects]] (placeholders,
splats, 200 rewrites, 301/302 redirects, 404 rules) and [[headers]]; calls the Python
function packages in the functions directory under /.netlify/functions/<name>/... with
Netlify-shaped (Lambda v1) events, keeping each one imported (warm) between requests.

    python scripts/serve.py [PORT] [--host 127.0.0.1] [--config netlify.toml]
"""
from __future__ import annotations

import argparse
import base64
import importlib
import logging
import mimetypes
import re
import sys
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_PREFIX = "/.netlify/functions/"
MAX_PAYLOAD = 6 * 1024 * 1024  # Netlify/Lambda synchronous payload limit
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml",
              "application/x-www-form-urlencoded", "image/svg+xml")
mimetypes.add_type("text/javascript", ".js")


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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "netlify-local-python"
    site: Site

    def log_message(self, fmt, *args):  # one short line per request on stderr
        sys.stderr.write(f"{self.log_date_time_string()} {fmt % args}\n")

    def __getattr__(self, name: str):
        # Every method (GET, POST, ..., TRACE) goes to dispatch: the function answers 405 itself.
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def dispatch(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.send(400, b"Bad Content-Length\n", {"Content-Type": "text/plain",
                                                     "Connection": "close"})
            return
        if length > MAX_PAYLOAD:
            self.send(413, b"Payload too large: the limit for a function is 6 MB\n",
                      {"Content-Type": "text/plain", "Connection": "close"})
            return
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        path, query = url.path, url.query
        if not path.startswith(FUNCTIONS_PREFIX) and self.static_file(path) is None:
            hit = match_redirect(self.site.redirects, path)
            if hit:
                rule, target = hit
                status = int(rule.get("status", 301))
                if status in (301, 302, 303, 307, 308):
                    self.send(status, b"", {"Location": target})
                    return
                if not target.startswith("/"):
                    self.send(502, b"Proxying to another host is not supported locally\n",
                              {"Content-Type": "text/plain"})
                    return
                self.serve(target.split("?")[0], path, query, body, status=status)
                return
        self.serve(path, path, query, body)

    def serve(self, target: str, original: str, query: str, body: bytes, *, status: int = 200):
        if target.startswith(FUNCTIONS_PREFIX):
            self.call_function(target, original, query, body)
            return
        file = self.static_file(target)
        if file is None:
            missing = self.site.publish / "404.html"
            data = missing.read_bytes() if missing.is_file() else b"Not Found\n"
            self.send(404, data, {"Content-Type": "text/html; charset=utf-8"}, original)
            return
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if ctype.startswith("text/"):
            ctype += "; charset=utf-8"
        self.send(status, file.read_bytes(), {"Content-Type": ctype}, original)

    def static_file(self, path: str) -> Path | None:
        """Return the publish-dir file a path names (index.html, pretty URLs), or None."""
        base = self.site.publish.resolve()
        candidate = (base / unquote(path).lstrip("/")).resolve()
        if candidate == base:
            candidate = base / "index.html"
        if not candidate.is_relative_to(base):
            return None
        for file in (candidate, candidate / "index.html", candidate.with_name(candidate.name + ".html")):
            if file.is_file():
                return file
        return None

    def call_function(self, target: str, original: str, query: str, body: bytes):
        name = target[len(FUNCTIONS_PREFIX):].split("/")[0]
        if not (self.site.functions / name / "__init__.py").is_file():
            self.send(404, b"Function not found\n", {"Content-Type": "text/plain"})
            return
        module = importlib.import_module(name)  # imported once per process: warm afterwards
        ctype = self.headers.get("Content-Type", "")
        text = not body or ctype.startswith(TEXT_TYPES) or not ctype
        try:
            body_text = body.decode("utf-8") if text else base64.b64encode(body).decode()
        except UnicodeDecodeError:
            text, body_text = False, base64.b64encode(body).decode()
        multi_query = parse_qs(query, keep_blank_values=True)
        event = {
            "httpMethod": self.command, "path": original, "rawUrl": self.url(original, query),
            "rawQuery": query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "multiValueHeaders": {k.lower(): self.headers.get_all(k) for k in self.headers},
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()},
            "multiValueQueryStringParameters": multi_query,
            "body": body_text, "isBase64Encoded": not text,
        }
        result = module.handler(event, Context(name))
        data = result.get("body") or ""
        data = base64.b64decode(data) if result.get("isBase64Encoded") else data.encode("utf-8")
        self.send(int(result.get("statusCode", 200)), data, result.get("headers") or {}, original)

    def url(self, path: str, query: str) -> str:
        host = self.headers.get("Host", "localhost")
        return f"http://{host}{path}" + (f"?{query}" if query else "")

    def send(self, status: int, data: bytes, headers: dict, original: str | None = None):
        merged = headers_for(self.site.headers, original) if original else {}
        merged.update(headers)  # what the response set itself wins over [[headers]]
        self.send_response(status)
        for key, value in merged.items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(data)


def make_server(host: str, port: int, config: Path) -> ThreadingHTTPServer:
    """Return a threaded HTTP server running the site that config describes (not yet serving)."""
    site = load_site(config)
    sys.path.insert(0, str(site.functions))
    handler = type("SiteHandler", (Handler,), {"site": site})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the site and its Python functions locally.")
    parser.add_argument("port", nargs="?", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", type=Path, default=ROOT / "netlify.toml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        server = make_server(args.host, args.port, args.config)
    except OSError as exc:
        sys.exit(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); "
                 "is it already running? Choose another port: PORT=8890 bash scripts/run.sh")
    print(f"Serving on http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
