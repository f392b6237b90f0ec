#!/usr/bin/env bash
# Set up (first time) and run the site and the API on http://127.0.0.1:8888 with the served
# model: MODEL_DIR if set, else [build.environment] MODEL_DIR in netlify.toml (the committed model/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MODEL_DIR="${MODEL_DIR:-$(.venv/bin/python scripts/build_lambda.py --print-model-dir)}"
export MODEL_DIR
exec .venv/bin/python scripts/serve.py "${PORT:-8888}"
