#!/usr/bin/env bash
# Set up (first time, or when a requirements file or setup.sh changed) and run the site and
# the API on http://127.0.0.1:8888 with the served model: MODEL_DIR if set, else
# [build.environment] MODEL_DIR in netlify.toml (the committed model/), which serve.py reads.
# Extra arguments go to scripts/serve.py (e.g. --dev: site files edited are served as they are).
set -euo pipefail
cd "$(dirname "$0")/.."
# The installer runs only when what it installs from changed since it last succeeded here
# (remove .venv/.setup-stamp to force it): pip takes longer than the runtime's start.
want="$(cat scripts/setup.sh requirements*.txt | sha256sum)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$want" ]; then
  bash scripts/setup.sh
  echo "$want" > .venv/.setup-stamp
fi
exec .venv/bin/python scripts/serve.py "${PORT:-8888}" "$@"
