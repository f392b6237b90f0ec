#!/usr/bin/env bash
# Deploy both halves, in order, from a laptop or from CI (.github/workflows/deploy.yml runs
# the same steps):
#   build     the Lambda bundle of the served model (netlify.toml's MODEL_DIR, or $MODEL_DIR)
#   function  deploy the AWS stack (deploy/template.yaml) with that bundle
#   site      read the Function URL from the stack's outputs, build the site with /api/*
#             proxied to it, and upload it to Netlify as a draft (not live yet)
#   smoke     check the draft: the page, /api/health and one prediction through its proxy
#   publish   make that draft the live site, and check the live site the same way
# With no step, all five run. `--destroy` deletes the AWS stack (the Netlify site stays: it
# was created by hand and may carry a custom domain; the command to delete it is printed).
#
# Needs: AWS credentials (any way the AWS CLI accepts) and a region (AWS_REGION,
# AWS_DEFAULT_REGION or the AWS CLI's config), the AWS CLI and SAM CLI, Node 20+, Python 3.12,
# and NETLIFY_AUTH_TOKEN and NETLIFY_SITE_ID for the site steps.
# Settings: STACK_NAME (default dect-model); ARTIFACT_BUCKET (where bundles are uploaded,
# from deploy/bootstrap.yaml; without it SAM creates and uses its own managed bucket);
# SAM_PARAMETERS (extra "Key=Value ..." overrides of the template's parameters).
set -euo pipefail
cd "$(dirname "$0")/.."
STACK_NAME="${STACK_NAME:-dect-model}"
DEFAULT_RESERVED=10  # deploy/template.yaml's ReservedConcurrency default (a test keeps them equal)
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY="${PYTHON:-python3}"; fi
NETLIFY="${NETLIFY:-node_modules/.bin/netlify}"  # netlify-cli, pinned by package-lock.json

need() { command -v "$1" >/dev/null || { echo "deploy: '$1' is not installed ($2)" >&2; exit 2; }; }
need_env() { [ -n "${!1:-}" ] || { echo "deploy: set $1 ($2)" >&2; exit 2; }; }

aws_region() {
  # SAM CLI reads AWS_DEFAULT_REGION, the AWS CLI AWS_REGION: one region, set for both
  need aws "https://aws.amazon.com/cli/"
  REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region 2>/dev/null || true)}}"
  [ -n "$REGION" ] || { echo "deploy: set AWS_REGION (e.g. eu-west-1)" >&2; exit 2; }
  export AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION"
}

stack_status() {
  aws cloudformation describe-stacks --region "$REGION" --stack-name "$STACK_NAME" \
    --query "Stacks[0].StackStatus" --output text 2>/dev/null || echo NONE
}

function_url() {
  aws cloudformation describe-stacks --region "$REGION" --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='FunctionUrl'].OutputValue" --output text
}

stamp() {  # what the bundle was built from: the commit and the served model's artifact
  echo "$(git rev-parse HEAD 2>/dev/null || echo no-git) $(sha256sum "$("$PY" scripts/build_lambda.py --print-model-dir)/manifest.json" | cut -c1-64)"
}

last_json() {  # the last JSON object a command printed (the CLI may log a line before it)
  "$PY" -c 'import json,sys; t="\n"+open(sys.argv[1]).read(); d=json.loads(t[t.rfind("\n{"):])
print(d.get(sys.argv[2]) or "")' "$1" "$2"
}

step_build() {
  "$PY" scripts/build_lambda.py
  stamp > dist/lambda.stamp
}

check_concurrency() {
  # Lambda keeps a minimum of unreserved concurrency (100, or the whole quota of a new
  # account); a reservation below it fails the stack's creation and leaves it unusable.
  local reserved limit unreserved floor
  reserved="$(echo " ${SAM_PARAMETERS:-} " | sed -n 's/.* ReservedConcurrency=\([0-9]*\) .*/\1/p')"
  reserved="${reserved:-$DEFAULT_RESERVED}"
  [ "$reserved" -gt 0 ] || return 0
  read -r limit unreserved < <(aws lambda get-account-settings --region "$REGION" --query \
    "[AccountLimit.ConcurrentExecutions, AccountLimit.UnreservedConcurrentExecutions]" --output text)
  floor=$(( limit < 100 ? limit : 100 ))
  if [ $(( unreserved - reserved )) -lt "$floor" ]; then
    echo "deploy: this account's Lambda concurrency quota ($limit, $unreserved unreserved) cannot" \
         "reserve $reserved: ask AWS for a higher quota (Service Quotas > Lambda > Concurrent" \
         "executions), or set SAM_PARAMETERS=\"ReservedConcurrency=0\" (no cost cap)" >&2
    exit 2
  fi
}

step_function() {
  aws_region
  need sam "pip install aws-sam-cli"
  [ -d dist/lambda/predict ] || { echo "deploy: no bundle in dist/lambda; run: bash scripts/deploy.sh build" >&2; exit 2; }
  [ "$(cat dist/lambda.stamp 2>/dev/null)" = "$(stamp)" ] || {
    echo "deploy: dist/lambda was not built from this commit and model; run: bash scripts/deploy.sh build" >&2; exit 2; }
  case "$(stack_status)" in
    NONE) check_concurrency ;;
    ROLLBACK_COMPLETE)  # a first creation that failed: CloudFormation can only delete it
      echo "deploy: $STACK_NAME failed to create before; deleting it to start again"
      aws cloudformation delete-stack --region "$REGION" --stack-name "$STACK_NAME"
      aws cloudformation wait stack-delete-complete --region "$REGION" --stack-name "$STACK_NAME"
      check_concurrency ;;
  esac
  local bucket=(--resolve-s3)
  [ -z "${ARTIFACT_BUCKET:-}" ] || bucket=(--s3-bucket "$ARTIFACT_BUCKET" --s3-prefix "$STACK_NAME")
  # shellcheck disable=SC2086  # SAM_PARAMETERS is a list of Key=Value words
  sam deploy --template-file deploy/template.yaml --stack-name "$STACK_NAME" --region "$REGION" \
    --capabilities CAPABILITY_IAM "${bucket[@]}" --no-confirm-changeset \
    --no-fail-on-empty-changeset ${SAM_PARAMETERS:+--parameter-overrides $SAM_PARAMETERS}
}

netlify_ready() {
  need_env NETLIFY_AUTH_TOKEN "a Netlify personal access token"
  need_env NETLIFY_SITE_ID "the site's API ID, Netlify: Site configuration > General"
  [ -x "$NETLIFY" ] || npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
}

step_site() {
  netlify_ready
  aws_region
  local url
  url="$(function_url)"
  case "$url" in https://*) ;; *) echo "deploy: the stack $STACK_NAME has no FunctionUrl output" >&2; exit 1;; esac
  echo "deploy: /api/* -> $url"
  # Netlify's build runs here (scripts/build.py writes site/_redirects); the upload takes the
  # built folder as it is. A draft first: it goes live only after the smoke test passes.
  PREDICT_FUNCTION_URL="$url" "$NETLIFY" build --offline --context production
  "$NETLIFY" deploy --no-build --dir site --site "$NETLIFY_SITE_ID" \
    --message "$(git rev-parse --short HEAD 2>/dev/null || echo local)" --json > dist/netlify-draft.json
  last_json dist/netlify-draft.json deploy_id > dist/draft-id.txt
  last_json dist/netlify-draft.json deploy_url > dist/draft-url.txt
  echo "deploy: draft at $(cat dist/draft-url.txt)"
}

step_smoke() {
  "$PY" scripts/smoke.py "${SITE_URL:-$(cat dist/draft-url.txt)}"
}

step_publish() {
  netlify_ready
  "$NETLIFY" api restoreSiteDeploy \
    --data "{\"site_id\": \"$NETLIFY_SITE_ID\", \"deploy_id\": \"$(cat dist/draft-id.txt)\"}" \
    > dist/netlify-live.json
  local live
  live="$(last_json dist/netlify-live.json ssl_url)"
  [ -n "$live" ] || live="$(last_json dist/netlify-live.json url)"
  echo "deploy: live at $live"
  "$PY" scripts/smoke.py "$live"
}

destroy() {
  aws_region
  need sam "pip install aws-sam-cli"
  sam delete --stack-name "$STACK_NAME" --region "$REGION" --no-prompts
  echo "deploy: stack $STACK_NAME deleted (function, URL, log group, role). Still there:"
  echo "  the Netlify site:  npx netlify sites:delete \"\$NETLIFY_SITE_ID\" --force"
  echo "  the deploy role and bundle bucket, if made with deploy/bootstrap.yaml: empty the"
  echo "  bucket, then aws cloudformation delete-stack --stack-name dect-model-bootstrap"
  echo "  (without ARTIFACT_BUCKET, SAM's own stack aws-sam-cli-managed-default holds the bundles)"
}

mkdir -p dist
case "${1:-all}" in
  --destroy) destroy ;;
  build|function|site|smoke|publish) "step_$1" ;;
  all) step_build; step_function; step_site; step_smoke; step_publish ;;
  *) echo "usage: bash scripts/deploy.sh [build|function|site|smoke|publish|--destroy]" >&2; exit 2 ;;
esac
