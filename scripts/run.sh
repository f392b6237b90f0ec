#!/usr/bin/env bash
# Set up (first time) and run the site and the API on http://127.0.0.1:8888 with the committed model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/serve.py "${PORT:-8888}"
