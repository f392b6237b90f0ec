#!/usr/bin/env bash
# Deploy both halves, in order, from a laptop or from CI (.github/workflows/deploy.yml runs
# the same steps):
#   build     the Lambda bundle of the served model (netlify.toml's MODEL_DIR, or $MODEL_DIR)
#   function  deploy the AWS stack (deploy/template.yaml) with the bundle
#   site      read the Function URL from the stack's outputs, build the site with /api/*
#             proxied to it, and deploy it to Netlify (production)
#   smoke     check the live site: the page, /api/health and one prediction through the proxy
# With no step, all four run. `--destroy` deletes the AWS stack (the Netlify site stays:
# it was created by hand, and may carry a custom domain; the command to delete it is printed).
#
# Needs: AWS credentials (any way the AWS CLI accepts), the AWS CLI and SAM CLI, Node 20+,
# Python 3.12, and NETLIFY_AUTH_TOKEN and NETLIFY_SITE_ID for the site steps.
# Settings: STACK_NAME (default dect-model), AWS_REGION, SAM_PARAMETERS (extra
# "Key=Value ..." overrides of the template's parameters, e.g. "ReservedConcurrency=0").
set -euo pipefail
cd "$(dirname "$0")/.."
STACK_NAME="${STACK_NAME:-dect-model}"
PY="${PYTHON:-python3}"

need() { command -v "$1" >/dev/null || { echo "deploy: '$1' is not installed ($2)" >&2; exit 2; }; }
need_env() { [ -n "${!1:-}" ] || { echo "deploy: set $1 ($2)" >&2; exit 2; }; }

function_url() {
  aws cloudformation describe-stacks --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='FunctionUrl'].OutputValue" --output text
}

step_build() {
  "$PY" scripts/build_lambda.py
}

step_function() {
  need aws "https://aws.amazon.com/cli/"
  need sam "pip install aws-sam-cli"
  [ -d dist/lambda/predict ] || { echo "deploy: no bundle in dist/lambda; run the build step" >&2; exit 2; }
  # shellcheck disable=SC2086  # SAM_PARAMETERS is a list of Key=Value words
  sam deploy --template-file deploy/template.yaml --stack-name "$STACK_NAME" \
    --capabilities CAPABILITY_IAM --resolve-s3 --no-confirm-changeset \
    --no-fail-on-empty-changeset ${SAM_PARAMETERS:+--parameter-overrides $SAM_PARAMETERS}
}

step_site() {
  need_env NETLIFY_AUTH_TOKEN "a Netlify personal access token"
  need_env NETLIFY_SITE_ID "the site's API ID, Netlify: Site configuration > General"
  [ -x node_modules/.bin/netlify ] || npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  local url
  url="$(function_url)"
  case "$url" in https://*) ;; *) echo "deploy: the stack $STACK_NAME has no FunctionUrl output" >&2; exit 1;; esac
  echo "deploy: /api/* -> $url"
  # Netlify's build runs here (scripts/build.py writes site/_redirects); the upload takes the
  # built folder as it is, so its JSON answer is all that reaches stdout.
  PREDICT_FUNCTION_URL="$url" node_modules/.bin/netlify build --offline --context production
  node_modules/.bin/netlify deploy --no-build --prod --dir site --site "$NETLIFY_SITE_ID" \
    --message "$(git rev-parse --short HEAD 2>/dev/null || echo local)" --json \
    > dist/netlify-deploy.json
  # the CLI may log a line before its JSON answer: read the last JSON object it printed
  "$PY" -c 'import json,sys; t="\n"+open(sys.argv[1]).read(); d=json.loads(t[t.rfind("\n{"):])
print(d.get("url") or d["deploy_url"])' dist/netlify-deploy.json > dist/site-url.txt
  echo "deploy: site live at $(cat dist/site-url.txt)"
}

step_smoke() {
  local site="${SITE_URL:-$(cat dist/site-url.txt)}"
  "$PY" scripts/smoke.py "$site"
}

destroy() {
  need sam "pip install aws-sam-cli"
  sam delete --stack-name "$STACK_NAME" --no-prompts
  echo "deploy: stack $STACK_NAME deleted. The Netlify site stays; to delete it too:"
  echo "  npx netlify sites:delete \"\$NETLIFY_SITE_ID\" --force"
}

mkdir -p dist
case "${1:-all}" in
  --destroy) destroy ;;
  build|function|site|smoke) "step_$1" ;;
  all) step_build; step_function; step_site; step_smoke ;;
  *) echo "usage: bash scripts/deploy.sh [build|function|site|smoke|--destroy]" >&2; exit 2 ;;
esac
