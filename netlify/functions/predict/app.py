"""The function's entry: `handler(event, context)` routes one HTTP event to its work.

Owns: routes and methods, request limits, CORS, response headers (model version,
Server-Timing, caching), and the one structured log line per invocation. Every ApiError
becomes the one JSON error body here.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

from . import model
from .errors import (ApiError, BadRequest, MethodNotAllowed, NotFound, PayloadTooLarge,
                     UnsupportedMediaType, detail, error_body)
from .events import Request, json_response, request_from_event, response
from .inputs import read_rows
from .openapi import EXPLAIN_VALUES, openapi_document
from .scoring import results_csv, score

MAX_ROWS = int(os.environ.get("MAX_ROWS", "1000"))
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", str(1024 * 1024)))
CORS_ORIGINS = [o.strip() for o in os.environ.get("CORS_ORIGINS", "*").split(",") if o.strip()]
ROUTE_PREFIXES = ("/.netlify/functions/predict", "/api")
JSON_TYPES = ("", "application/json", "application/x-www-form-urlencoded")  # curl -d sends the last

log = logging.getLogger("predict")
# Lambda's root logger lets only warnings through; the per-invocation lines are INFO.
log.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
_started = time.time()


def route_of(path: str) -> str:
    """Given a request path, return the route within the function ('/predict', ...)."""
    for prefix in ROUTE_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            path = path[len(prefix):]
            break
    return "/" + path.strip("/")


def health(req: Request, timing: dict) -> dict:
    manifest = model.get_manifest()
    return json_response(200, {"status": "ok", "warm": model.is_loaded(),
                               "model": {"name": manifest.get("name"),
                                         "version": manifest.get("version"),
                                         "loaded": model.is_loaded()},
                               "uptime_s": round(time.time() - _started, 1)},
                         {"Cache-Control": "no-store"})


def model_card(req: Request, timing: dict) -> dict:
    manifest = model.get_manifest()
    etag = f'"{manifest.get("artifact", {}).get("sha256", "")}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    tags = [t.strip().removeprefix("W/") for t in req.headers.get("if-none-match", "").split(",")]
    if etag in tags or "*" in tags:
        return response(304, "", headers)
    return json_response(200, manifest, headers)


def openapi(req: Request, timing: dict) -> dict:
    doc = openapi_document(model.get_manifest(), max_rows=MAX_ROWS, max_body_bytes=MAX_BODY_BYTES)
    return json_response(200, doc, {"Cache-Control": "no-cache"})


def predict(req: Request, timing: dict) -> dict:
    if len(req.body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is {len(req.body)} bytes; at most {MAX_BODY_BYTES} "
                              "are accepted, split the rows over several requests")
    explain = req.query.get("explain", "true")
    if explain not in EXPLAIN_VALUES:
        raise BadRequest(f"query parameter 'explain' must be one of {', '.join(EXPLAIN_VALUES)}",
                         code="invalid_parameter",
                         details=[detail("explain", "invalid_parameter",
                                         "expected true, false, 1 or 0")])
    media = req.media_type
    if media not in JSON_TYPES and media != "text/csv" and not media.endswith("+json"):
        raise UnsupportedMediaType("expected Content-Type application/json or text/csv, "
                                   f"received {media[:60]}")
    manifest = model.get_manifest()
    # Validate against the manifest first: a bad request never pays for loading the model.
    X, warnings, fmt = read_rows(req.body, media, manifest["features"], MAX_ROWS)
    was_loaded = model.is_loaded()
    loaded = model.get_model()
    if not was_loaded:
        timing["load"] = loaded.load_ms
        timing["cold"] = True
    start = time.perf_counter()
    results = score(loaded, X, warnings, explain=explain in ("true", "1"))
    timing["predict"] = (time.perf_counter() - start) * 1000
    timing["rows"] = len(results)
    headers = {"Cache-Control": "no-store"}
    if "text/csv" in req.headers.get("accept", ""):
        return response(200, results_csv(results, manifest.get("labels") or []),
                        {"Content-Type": "text/csv; charset=utf-8", **headers})
    return json_response(200, {"model": {"name": manifest.get("name"),
                                         "version": manifest.get("version")},
                               "format": fmt,
                               "predictions": [r.get("label", r.get("value")) for r in results],
                               "results": results}, headers)


def invocations(req: Request, timing: dict) -> dict:
    """MLflow's scoring route: /predict's input (no explanations), answered as {"predictions"}."""
    inner = dataclasses.replace(req, query={"explain": "false"},
                                headers={**req.headers, "accept": "application/json"})
    answer = json.loads(predict(inner, timing)["body"])
    return json_response(200, {"predictions": answer["predictions"]}, {"Cache-Control": "no-store"})


def ping(req: Request, timing: dict) -> dict:
    """MLflow's readiness route: 200 when the model can be served (its manifest is readable)."""
    model.get_manifest()
    return response(200, "\n", {"Content-Type": "text/plain", "Cache-Control": "no-store"})


ROUTES = {
    "/health": {"GET": health},
    "/model": {"GET": model_card},
    "/openapi.json": {"GET": openapi},
    "/predict": {"POST": predict},
    "/invocations": {"POST": invocations},  # MLflow's scoring server paths, for its clients
    "/ping": {"GET": ping},
}


def cors_headers(req: Request) -> dict:
    """Return the CORS headers for this request's Origin under CORS_ORIGINS."""
    origin = req.headers.get("origin", "")
    if "*" in CORS_ORIGINS:
        allowed = "*"
    elif origin in CORS_ORIGINS:
        allowed = origin
    else:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": allowed, "Vary": "Origin",
            "Access-Control-Expose-Headers": "ETag, Server-Timing, X-Model-Version"}


def _dispatch(req: Request, timing: dict) -> dict:
    methods = ROUTES.get(route_of(req.path))
    if methods is None:
        raise NotFound(f"no route here; the routes are {', '.join('/api' + r for r in ROUTES)}")
    if req.method == "OPTIONS":
        return response(204, "", {"Allow": ", ".join([*methods, "OPTIONS"]),
                                  "Access-Control-Allow-Methods": ", ".join([*methods, "OPTIONS"]),
                                  "Access-Control-Allow-Headers": "Content-Type, Accept, "
                                                                  "If-None-Match",
                                  "Access-Control-Max-Age": "600"})
    work = methods.get(req.method)
    if work is None:
        raise MethodNotAllowed(req.method, [*methods, "OPTIONS"])
    return work(req, timing)


def handler(event, context=None) -> dict:
    """Given a Netlify / API Gateway / Function URL event, return the HTTP response dict."""
    start = time.perf_counter()
    timing: dict = {"cold": False}
    req = None
    try:
        req = request_from_event(event)
        resp = _dispatch(req, timing)
    except ApiError as err:
        resp = json_response(err.status, error_body(err), err.headers)
    except Exception:  # a bug: log it whole, answer the one error shape without details
        log.exception("unhandled error")
        resp = json_response(500, error_body(ApiError("internal error; it has been logged")))
    headers = resp["headers"]
    if req is not None:
        headers.update(cors_headers(req))
    try:
        headers["X-Model-Version"] = str(model.get_manifest().get("version"))
    except ApiError:
        pass
    total = (time.perf_counter() - start) * 1000
    parts = [f"{k};dur={timing[k]:.1f}" for k in ("load", "predict") if k in timing]
    headers["Server-Timing"] = ", ".join([*parts, f"total;dur={total:.1f}"])
    log.info(json.dumps({"event": "invocation", "method": req.method[:10] if req else None,
                         "route": route_of(req.path)[:40] if req else None,
                         "status": resp["statusCode"], "cold": timing["cold"],
                         "duration_ms": round(total, 2),
                         "load_ms": round(timing["load"], 2) if "load" in timing else None,
                         "predict_ms": round(timing["predict"], 2) if "predict" in timing else None,
                         "rows": timing.get("rows", 0),
                         "request_id": getattr(context, "aws_request_id", None)}))
    return resp
