"""The function's core: a route table, the routes, and `App`, which answers one Request.

Owns: routes and methods (with each operation's id and summary, from which the OpenAPI
paths are built), request limits, and `finish`: the answer's size limit, security headers,
CORS, the model version, Server-Timing and the one log line per invocation (metrics.py).
Every ApiError becomes the one JSON error body here. The Lambda entry `handler(event,
context)` and the WSGI `app(environ, start_response)` are thin adapters over the one App
the process builds from its environment.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

from . import metrics
from .errors import (ApiError, BadRequest, InvalidSetting, MethodNotAllowed, NotFound,
                     PayloadTooLarge, ResponseTooLarge, UnsupportedMediaType, detail, error_body,
                     mlflow_error_body)
from .events import carried_bytes, lambda_response, request_from_event
from .inputs import read_rows
from .model import ModelStore
from .openapi import EXPLAIN_VALUES, openapi_document
from .scoring import leaf_shares, results_csv, score
from .settings import Settings, SettingsError, from_env
from .web import Request, Response, header_value

ROUTE_PREFIXES = ("/.netlify/functions/predict", "/api")
JSON_TYPES = ("", "application/json", "application/x-www-form-urlencoded")  # curl -d sends the last
PREFLIGHT_HEADERS = "Content-Type, Accept, If-None-Match"
# Every answer carries these, on every host: Netlify applies netlify.toml's headers only to
# what it serves itself, not to what it proxies to Lambda. An answer is JSON or CSV, never a
# page: it may load nothing and be framed nowhere.
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
                    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer"}

log = logging.getLogger("predict")
_started = time.time()


def route_of(path: str) -> str:
    """Given a request path, return the route within the function ('/predict', ...)."""
    for prefix in ROUTE_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            path = path[len(prefix):]
            break
    return "/" + path.strip("/")


def health(app: App, req: Request, timing: dict) -> Response:
    """Ready (200) only when a prediction would succeed: the model loads (this call loads it if
    it is not loaded yet) and what it needs imports; else the 503 naming why."""
    manifest = app.store.manifest()
    warm = app.store.is_loaded()
    app.load_model(timing)
    return Response.json(200, {"status": "ok", "ready": True, "warm": warm,
                               "model": {"name": manifest.get("name"),
                                         "version": manifest.get("version"), "loaded": True},
                               "limits": app.settings.limits(),
                               "uptime_s": round(time.time() - _started, 1)},
                         {"Cache-Control": "no-store"})


def model_card(app: App, req: Request, timing: dict) -> Response:
    manifest = app.store.manifest()
    etag = f'"{manifest["artifact"]["sha256"]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    tags = [t.strip().removeprefix("W/") for t in req.headers.get("if-none-match", "").split(",")]
    if etag in tags or "*" in tags:
        return Response(304, headers)
    return Response.json(200, manifest, headers)


def openapi(app: App, req: Request, timing: dict) -> Response:
    doc = openapi_document(app.store.manifest(), ROUTES, max_rows=app.settings.max_rows,
                           max_body_bytes=app.settings.max_body_bytes)
    return Response.json(200, doc, {"Cache-Control": "no-cache"})


def _scored(app: App, req: Request, timing: dict, explain: str, *,
            shown: bool = True) -> tuple[dict, str, list[dict]]:
    """Given a prediction request and its explain value ('true', 'false', '1' or '0', checked
    here), return the manifest, the input's format and one result per row (explained only
    when asked and shown: a CSV answer has no place for explanations)."""
    limit = app.settings.max_body_bytes
    if len(req.body) > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes, the most accepted; "
                              "split the rows over several requests")
    if explain not in EXPLAIN_VALUES:
        raise BadRequest(f"query parameter 'explain' must be one of {', '.join(EXPLAIN_VALUES)}",
                         code="invalid_parameter",
                         details=[detail("explain", "invalid_parameter",
                                         "expected true, false, 1 or 0")])
    media = req.media_type
    if media not in JSON_TYPES and media != "text/csv" and not media.endswith("+json"):
        raise UnsupportedMediaType("expected Content-Type application/json or text/csv")
    manifest = app.store.manifest()
    # Validate against the manifest first: a bad request never pays for loading the model.
    X, warnings, fmt = read_rows(req.body, media, manifest["features"], app.settings.max_rows)
    loaded = app.load_model(timing)
    start = time.perf_counter()
    results = score(loaded, X, warnings, explain=shown and explain in ("true", "1"))
    timing["predict"] = (time.perf_counter() - start) * 1000
    timing["rows"] = len(results)
    timing["scored"] = (manifest, X, results)  # for the log line's metrics
    return manifest, fmt, results


def _predictions(results: list[dict]) -> list:
    """One label or value per row: what MLflow's clients read."""
    return [r.get("label", r.get("value")) for r in results]


def predict(app: App, req: Request, timing: dict) -> Response:
    as_csv = "text/csv" in req.headers.get("accept", "")
    manifest, fmt, results = _scored(app, req, timing, req.query.get("explain", "true"),
                                     shown=not as_csv)
    headers = {"Cache-Control": "no-store"}
    if as_csv:
        leaf_share = leaf_shares(app.load_model(timing).estimator)  # loaded: _scored used it
        return Response.text(200, results_csv(results, manifest.get("labels") or [],
                                              leaf_share=leaf_share),
                             "text/csv; charset=utf-8", headers)
    return Response.json(200, {"model": {"name": manifest.get("name"),
                                         "version": manifest.get("version")},
                               "format": fmt, "predictions": _predictions(results),
                               "results": results}, headers)


def invocations(app: App, req: Request, timing: dict) -> Response:
    """MLflow's scoring route: /predict's input (no explanations), answered as {"predictions"}."""
    _, _, results = _scored(app, req, timing, "false")
    return Response.json(200, {"predictions": _predictions(results)},
                         {"Cache-Control": "no-store"})


def ping(app: App, req: Request, timing: dict) -> Response:
    """MLflow's readiness route: 200 when a prediction would succeed (the model loads), else
    the 503 naming why."""
    app.load_model(timing)
    return Response.text(200, "\n", "text/plain", {"Cache-Control": "no-store"})


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    operation_id: str
    summary: str
    work: Callable[[App, Request, dict], Response]


ROUTES = (
    Route("/health", "GET", "health", "Is the model ready (loads it if needed: 503 naming why "
          "a prediction would fail); was it warm; the request limits", health),
    Route("/model", "GET", "model", "The model card (manifest): features, labels, metrics, "
          "versions", model_card),
    Route("/openapi.json", "GET", "openapi", "This document", openapi),
    Route("/predict", "POST", "predict", "Predict one or many rows", predict),
    # MLflow's scoring server paths, for its clients (also at the site's root)
    Route("/invocations", "POST", "invocations", "MLflow's scoring route: the same input, "
          "answered as {\"predictions\": [...]}", invocations),
    Route("/ping", "GET", "ping", "MLflow's readiness check: 200 when a prediction would "
          "succeed, else 503", ping),
)


def _methods(routes: list[Route]) -> list[str]:
    methods = [r.method for r in routes]
    if "GET" in methods:
        methods.append("HEAD")
    return [*methods, "OPTIONS"]


class App:
    """The function for one set of settings: its model store and the answer to each Request."""

    def __init__(self, settings: Settings, *, routes: tuple[Route, ...] = ROUTES):
        self.settings = settings
        self.store = ModelStore(settings)
        self.routes = routes

    def load_model(self, timing: dict):
        """Return the loaded model, noting in timing whether this request loaded or waited."""
        loaded, spent = self.store.get()
        timing.update(spent)
        return loaded

    def dispatch(self, req: Request, timing: dict) -> Response:
        """Given a request, return the route's response; ApiError for what it cannot answer."""
        route = route_of(req.path)
        here = [r for r in self.routes if r.path == route]
        if not here:
            raise NotFound("no route here; the routes are "
                           + ", ".join(dict.fromkeys("/api" + r.path for r in self.routes)))
        allowed = _methods(here)
        if req.method == "OPTIONS":
            return Response(204, {"Allow": ", ".join(allowed),
                                  "Access-Control-Allow-Methods": ", ".join(allowed),
                                  "Access-Control-Allow-Headers": PREFLIGHT_HEADERS,
                                  "Access-Control-Max-Age": "600"})
        method = "GET" if req.method == "HEAD" else req.method
        match = next((r for r in here if r.method == method), None)
        if match is None:
            raise MethodNotAllowed(allowed)
        resp = match.work(self, req, timing)
        if req.method == "HEAD":
            resp.headers["Content-Length"] = str(len(resp.body))
            resp.body = b""
        return resp

    def __call__(self, req: Request, *, request_id: str | None = None) -> Response:
        """Given a request, return its response with the common headers; logs one line."""
        timing = new_timing(request_id)
        try:
            resp = self.dispatch(req, timing)
        except ApiError as err:
            resp = error_response(err, req)
        except Exception:  # a bug: log it whole, answer the one error shape without details
            log.exception("unhandled error")
            resp = error_response(ApiError("internal error; it has been logged"), req)
        return self.finish(req, resp, timing)

    def cors_headers(self, req: Request) -> dict:
        """Return the CORS headers for this request's Origin under the CORS_ORIGINS setting."""
        origins = self.settings.cors_origins
        origin = req.headers.get("origin", "")
        if "*" in origins:
            allowed = "*"
        elif origin in origins:
            allowed = origin
        else:
            return {"Vary": "Origin"}
        return {"Access-Control-Allow-Origin": allowed, "Vary": "Origin",
                "Access-Control-Expose-Headers": "ETag, Server-Timing, X-Model-Version"}

    def bounded(self, resp: Response, timing: dict) -> Response:
        """Return the response, or a 413 saying what to ask for when it is over the limit."""
        limit = self.settings.max_response_bytes
        if carried_bytes(resp, limit=limit) <= limit:
            return resp
        size = carried_bytes(resp)
        timing.pop("scored", None)  # no row was answered: no answers to count
        rows = timing.get("rows", 0)
        fewer = (f"send fewer rows (about {max(1, rows * limit // size * 9 // 10)} at a time) "
                 "or ask without explanations (?explain=false)" if rows else "ask for less")
        return error_response(ResponseTooLarge(
            f"the answer would be {size:,} bytes, over the {limit:,} an answer may carry; "
            + fewer))

    def finish(self, req: Request | None, resp: Response, timing: dict) -> Response:
        """Bound the response's size; add security headers, CORS, the model version and
        Server-Timing; log the invocation."""
        resp = self.bounded(resp, timing)
        resp.headers = {**SECURITY_HEADERS, **resp.headers}
        if req is not None:
            resp.headers.update(self.cors_headers(req))
        try:
            resp.headers["X-Model-Version"] = header_value(str(self.store.manifest().get("version")))
        except ApiError:
            pass
        total = (time.perf_counter() - timing["start"]) * 1000
        parts = [f"{k};dur={timing[k]:.1f}" for k in ("load", "wait", "predict") if k in timing]
        resp.headers["Server-Timing"] = ", ".join([*parts, f"total;dur={total:.1f}"])
        log_invocation(req, resp.status, timing, total)
        return resp

    def handle_event(self, event: object, context: object = None) -> dict:
        """Given a Lambda/Netlify HTTP event, return the Lambda proxy response dict."""
        request_id = getattr(context, "aws_request_id", None)
        try:
            req = request_from_event(event)
        except ApiError as err:
            return lambda_response(self.finish(None, error_response(err), new_timing(request_id)))
        return lambda_response(self(req, request_id=request_id))


def new_timing(request_id: str | None) -> dict:
    """Return the record of one invocation's timings, started now."""
    return {"start": time.perf_counter(), "cold": False, "request_id": request_id}


def _ms(timing: dict, key: str) -> float | None:
    return round(timing[key], 2) if key in timing else None


def log_invocation(req: Request | None, status: int, timing: dict, total: float) -> None:
    """Write the one log line of an invocation, in CloudWatch's embedded metric format
    (metrics.py): never a value from the request's body."""
    # With no handler anywhere, Python's last resort writes warnings only: the line would go
    # nowhere (a WSGI server that does not configure logging), so it is not built.
    out = metrics.invocation_log
    if not (out.isEnabledFor(logging.INFO) and out.hasHandlers()):
        return
    fields = {"event": "invocation", "method": req.method[:10] if req else None,
              "route": route_of(req.path)[:40] if req else None,
              "status": status, "cold": timing.get("cold", False),
              "duration_ms": round(total, 2), "load_ms": _ms(timing, "load"),
              "wait_ms": _ms(timing, "wait"), "predict_ms": _ms(timing, "predict"),
              "rows": timing.get("rows", 0), "request_id": timing.get("request_id")}
    out.info(json.dumps(metrics.invocation_line(
        fields, status=status, cold=timing.get("cold", False), rows=timing.get("rows", 0),
        scored=timing.get("scored"))))


def error_response(err: ApiError, req: Request | None = None) -> Response:
    """Given an ApiError, return the one JSON error response; on MLflow's /invocations, in
    MLflow's error shape."""
    mlflow = req is not None and route_of(req.path) == "/invocations"
    return Response.json(err.status, mlflow_error_body(err) if mlflow else error_body(err),
                         err.headers)


class Misconfigured:
    """Stands in for the App when a setting is bad: every request gets a 503 naming it."""

    def __init__(self, error: SettingsError):
        self.error = error

    def __call__(self, req: Request | None, *, request_id: str | None = None) -> Response:
        resp = error_response(InvalidSetting(self.error), req)
        log_invocation(req, resp.status, new_timing(request_id), 0.0)
        return resp

    def handle_event(self, event: object, context: object = None) -> dict:
        try:
            req = request_from_event(event)
        except ApiError:
            req = None
        return lambda_response(self(req, request_id=getattr(context, "aws_request_id", None)))


def build_app(environ: dict | None = None) -> App | Misconfigured:
    """Return the App the environment describes, or a Misconfigured one naming the bad setting."""
    if "AWS_LAMBDA_FUNCTION_NAME" in (os.environ if environ is None else environ):
        metrics.write_bare_to_stdout()  # CloudWatch reads EMF from a bare JSON log event
    try:
        settings = from_env(environ)
    except SettingsError as exc:
        log.error(json.dumps({"event": "invalid_setting", "setting": exc.name,
                              "reason": str(exc)}))
        return Misconfigured(exc)
    # Lambda's root logger lets only warnings through; the per-invocation lines are INFO.
    log.setLevel(settings.log_level)
    return App(settings)


_default: App | Misconfigured | None = None
_default_lock = threading.Lock()


def default_app() -> App | Misconfigured:
    """Return this process's App, built from the environment on first use (warm afterwards)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = build_app()
    return _default


def warm() -> App | Misconfigured:
    """Return this process's App with its model loaded now, for a server or a snapshot that
    loads before taking traffic. A model that cannot load is not fatal here: it is logged,
    and readiness and predictions answer 503 naming why."""
    core = default_app()
    if isinstance(core, App):
        try:
            core.store.get()
        except ApiError:
            pass
    return core


def handler(event, context=None) -> dict:
    """Given a Netlify / API Gateway / Function URL event, return the HTTP response dict."""
    return default_app().handle_event(event, context)
