#!/usr/bin/env bash
# Set up (first time) and run every test: unit, function, HTTP, browser.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/python -m pytest "$@"
