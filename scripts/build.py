"""Netlify's build step: point /api/* at the Python function running on AWS Lambda.

Netlify Functions have no Python runtime, so in production the function runs on AWS
Lambda behind a Function URL (docs/deploy.md). This writes site/_redirects with a 200
proxy rule to PREDICT_FUNCTION_URL; Netlify reads _redirects before netlify.toml, so the
rule wins over the local-runtime one and the browser stays same-origin.

    PREDICT_FUNCTION_URL=https://<id>.lambda-url.<region>.on.aws python3 scripts/build.py
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

SITE = Path(__file__).resolve().parents[1] / "site"


LOOPBACK = ("127.0.0.1", "localhost")  # a local stand-in for the function, in checks


def redirects_for(function_url: str) -> str:
    """Given the Lambda Function URL, return the _redirects text that proxies the API to it."""
    url = urlsplit(function_url)
    local = url.scheme == "http" and url.hostname in LOOPBACK
    if not (url.scheme == "https" or local) or not url.netloc:
        raise ValueError("PREDICT_FUNCTION_URL must be an https:// URL")
    base = f"{url.scheme}://{url.netloc}"
    # MLflow's clients call /invocations and /ping at the site's root; the function serves both
    return (f"/api/*  {base}/api/:splat  200!\n"
            f"/invocations  {base}/invocations  200!\n"
            f"/ping  {base}/ping  200!\n")


def main() -> int:
    function_url = os.environ.get("PREDICT_FUNCTION_URL", "")
    if not function_url:
        print("PREDICT_FUNCTION_URL is not set: /api/* would have no Python function behind it "
              "on Netlify. Deploy the function first: bash scripts/deploy.sh (docs/deploy.md).", file=sys.stderr)
        return 1
    try:
        (SITE / "_redirects").write_text(redirects_for(function_url), encoding="utf-8")
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"/api/* -> {function_url} (site/_redirects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
