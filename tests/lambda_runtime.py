"""A minimal AWS Lambda Runtime API, for tests only: hands out events, collects the answers.

It speaks the endpoints the real runtime client (awslambdaric) calls: next invocation,
invocation response and error, init error, and SnapStart's restore next (the snapshot is
"taken" and "restored" at once; `restored` says it was asked) (API version 2018-06-01). Each event is
given once; after the last, `next` holds the client until the test stops it.
"""
from __future__ import annotations

import json
import queue
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    """Serve `events` on 127.0.0.1 to one runtime client; `results` maps request id to answer."""

    def __init__(self, events: list[dict]):
        self.pending: queue.Queue = queue.Queue()
        self.order: list[str] = []
        for ev in events:
            request_id = str(uuid.uuid4())
            self.order.append(request_id)
            self.pending.put((request_id, ev))
        self.results: dict[str, tuple[str, object]] = {}
        self.init_error: object = None
        self.restored = False
        self.done = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == PREFIX + "/restore/next":
                    api.restored = True
                    return self.answer(200, {})
                if self.path != PREFIX + "/invocation/next":
                    return self.answer(404, {"errorMessage": "unknown path"})
                try:
                    request_id, ev = api.pending.get(timeout=120)
                except queue.Empty:
                    return self.answer(500, {"errorMessage": "no more events"})
                body = json.dumps(ev).encode()
                self.send_response(200)
                for name, value in (("Lambda-Runtime-Aws-Request-Id", request_id),
                                    ("Lambda-Runtime-Deadline-Ms", "9999999999999"),
                                    ("Lambda-Runtime-Invoked-Function-Arn",
                                     "arn:aws:lambda:eu-west-1:000000000000:function:predict"),
                                    ("Lambda-Runtime-Trace-Id", "Root=1-0-0"),
                                    ("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body)))):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"null")
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = payload
                    api.done.set()
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response",
                                                                                      "error"):
                    api.results[parts[1]] = (parts[2], payload)
                    if len(api.results) == len(api.order):
                        api.done.set()
                else:
                    return self.answer(404, {"errorMessage": "unknown path"})
                self.answer(202, {"status": "OK"})

            def answer(self, status: int, doc: dict):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answers(self) -> list[tuple[str, object]]:
        """Return (kind, payload) per event, in the order the events were given."""
        return [self.results.get(r, ("missing", None)) for r in self.order]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
