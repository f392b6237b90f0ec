"""Smoke-test a deployed site: the page, /api/health, /api/model and one prediction through
its proxy, and that the function's own security headers come through.

Uses the served model's own manifest (from the site's /api/model) for the example, so it
works for any packaged model. Exit 0 when all pass; 1 with the failing check otherwise.
Retries for up to a minute: a fresh deploy's first request is the function's cold start.

    python scripts/smoke.py https://<site>.netlify.app [--wait 60]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

WAIT_S = 60


def fetch(url: str, body: dict | None = None) -> tuple[int, dict, bytes]:
    """Return (status, headers with lower-case names, body) of a GET, or of a JSON POST when body is given."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json",
                                                          "User-Agent": "dect-smoke/1"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def checks(site: str) -> list[str]:
    """Given the site's base URL, return what failed (empty when all passed)."""
    site = site.rstrip("/")
    status, _, page = fetch(site + "/")
    if status != 200 or b"<html" not in page.lower():
        return [f"GET / answered {status}, not the site's page"]
    status, headers, body = fetch(site + "/api/health")
    if status != 200 or json.loads(body).get("status") != "ok":
        return [f"GET /api/health answered {status}: {body[:200]!r}"]
    if headers.get("x-content-type-options") != "nosniff":
        return ["GET /api/health came without the function's security headers"]
    status, _, body = fetch(site + "/api/model")
    if status != 200:
        return [f"GET /api/model answered {status}"]
    manifest = json.loads(body)
    features = manifest["examples"][0]["features"]
    status, headers, body = fetch(site + "/api/predict", {"features": features})
    if status != 200:
        return [f"POST /api/predict answered {status}: {body[:200]!r}"]
    predictions = json.loads(body).get("predictions")
    if not isinstance(predictions, list) or len(predictions) != 1:
        return [f"POST /api/predict gave no prediction: {body[:200]!r}"]
    print(f"smoke: {site} ok: model {manifest.get('name')} {manifest.get('version')}, "
          f"prediction {predictions[0]!r}, {headers.get('server-timing', '')}")
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("site", help="the site's base URL, https://...")
    parser.add_argument("--wait", type=float, default=WAIT_S, help="seconds to keep retrying")
    args = parser.parse_args()
    site = args.site
    if not site.startswith(("http://", "https://")):
        parser.error("the site must be an http:// or https:// URL")
    deadline = time.monotonic() + args.wait
    while True:
        try:
            failed = checks(site)
        except (OSError, ValueError, KeyError, IndexError) as exc:
            failed = [f"{type(exc).__name__}: {exc}"]
        if not failed or time.monotonic() > deadline:
            break
        time.sleep(min(5.0, args.wait))
    for problem in failed:
        print(f"smoke: FAILED {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
