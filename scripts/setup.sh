#!/usr/bin/env bash
# Set up what the project needs, idempotently: a .venv with the pinned packages of the local
# runtime; with --dev also the test tools, netlify-cli (npm), Debian's chromium for the
# browser tests and Debian's wrk for scripts/load.py and the load tests.
# Missing Debian packages are installed as root, or through passwordless sudo (GitHub's
# runner). Without either, a missing chromium stops here (the browser tests need it); a
# missing wrk is only reported: the tests that need it skip, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=false
[ "${1:-}" = "--dev" ] && dev=true
[ -x .venv/bin/python ] || python3 -m venv .venv
if $dev; then req=requirements-dev.txt; else req=requirements-local.txt; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
if $dev && [ ! package-lock.json -ot node_modules/.package-lock.json ]; then
  # netlify-cli, pinned by package-lock.json; no install scripts: none is needed for `netlify
  # dev`/`build`, and some would fetch or compile native parts this machine cannot reach.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
$dev || exit 0
missing=""
command -v chromium >/dev/null || missing="$missing chromium"
command -v wrk >/dev/null || missing="$missing wrk"
[ -n "$missing" ] || exit 0
if [ "$(id -u)" = 0 ]; then
  apt=(apt-get)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  apt=(sudo -n apt-get)
else
  case "$missing" in
    *chromium*) echo "The browser tests need Debian's chromium: sudo apt-get install chromium" >&2
                exit 1 ;;
  esac
  echo "wrk is missing and cannot be installed without root: the load tests will skip" \
       "(sudo apt-get install wrk to run them)" >&2
  exit 0
fi
"${apt[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq $missing >/dev/null
