"""Helpers shared by the tests: event builders, calling the handler, running the local runtime."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "model"


def copy_checkout(folder: Path, parts: tuple[str, ...]) -> Path:
    """Copy these files and folders of the repository into folder, as a checkout has them."""
    for part in parts:
        source, target = ROOT / part, folder / part
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    return folder


def manifest() -> dict:
    return json.loads((MODEL_DIR / "manifest.json").read_text())


def example(label: str | None = None) -> dict:
    """Return a copy of the committed manifest's example features (of one class, if given)."""
    for ex in manifest()["examples"]:
        if label is None or ex.get("label") == label:
            return dict(ex["features"])
    raise KeyError(label)


def event(method: str = "GET", path: str = "/api/health", *, body=None, headers=None,
          query=None, version: str = "netlify") -> dict:
    """Build an HTTP event as Netlify (v1), API Gateway REST (v1) or a Function URL (v2) sends it."""
    if body is not None and not isinstance(body, (str, bytes)):
        body = json.dumps(body)
        headers = {"content-type": "application/json", **(headers or {})}
    if isinstance(body, bytes):
        body = body.decode()
    headers = headers or {}
    if version == "v2":
        from urllib.parse import urlencode
        return {"version": "2.0", "rawPath": path, "rawQueryString": urlencode(query or {}),
                "headers": headers, "body": body, "isBase64Encoded": False,
                "requestContext": {"http": {"method": method, "path": path}}}
    ev = {"httpMethod": method, "path": path, "headers": headers,
          "queryStringParameters": query, "body": body, "isBase64Encoded": False}
    if version == "rest":
        ev.update(resource="/{proxy+}", multiValueHeaders={k: [v] for k, v in headers.items()},
                  requestContext={"stage": "prod", "httpMethod": method})
    return ev


_apps: dict = {}


def app():
    """Return the function's App for the current environment: one per test and setting.

    A test that sets MODEL_DIR (or any setting) gets a fresh App, with a cold model store,
    on its next call; conftest forgets them all between tests.
    """
    from predict.app import build_app
    from predict.settings import ENV_NAMES
    key = tuple(os.environ.get(name) for name in ENV_NAMES.values())
    if key not in _apps:
        _apps[key] = build_app()
    return _apps[key]


def forget_apps() -> None:
    _apps.clear()


def call(ev: dict, core=None):
    """Call the function with an event; return (status, headers, parsed JSON body or text)."""
    resp = (core or app()).handle_event(ev, None)
    body = resp["body"]
    if body and resp["headers"].get("Content-Type", "").startswith("application/json"):
        body = json.loads(body)
    return resp["statusCode"], resp["headers"], body


class LocalRuntime:
    """scripts/serve.py in a child process on an ephemeral port of 127.0.0.1."""

    def __init__(self, env: dict | None = None, args: list[str] = ()):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "serve.py"), "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline()
        if not line.startswith("Serving on "):
            self.stop()
            raise RuntimeError(f"serve.py did not start: {line!r}")
        self.url = line.split()[-1].rstrip("/")
        self.host, port = self.url.removeprefix("http://").split(":")
        self.port = int(port)

    def request(self, path: str, *, method: str = "GET", body=None, headers=None):
        """Return (status, headers, body bytes) of one real HTTP request."""
        data = body.encode() if isinstance(body, str) else body
        if body is not None and not isinstance(body, (str, bytes)):
            data = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def json(self, path: str, **kwargs):
        status, headers, data = self.request(path, **kwargs)
        return status, headers, json.loads(data)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def exchange(port: int, data: bytes, *, timeout: float = 20) -> http.client.HTTPResponse:
    """Send raw bytes to 127.0.0.1:port on a new connection; return the parsed response (body
    read)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(data)
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    resp.body = resp.read()
    sock.close()
    return resp


def chunked(body: bytes, size: int = 100) -> bytes:
    """Return body in HTTP/1.1 chunked transfer coding, in chunks of size bytes."""
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"
