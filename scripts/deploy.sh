#!/usr/bin/env bash
# Deploy both halves, in order, from a laptop or from CI (.github/workflows/deploy.yml runs
# the same steps). What goes live is what passed, and it can be undone in one command:
#   build     the Lambda bundle of the served model (netlify.toml's MODEL_DIR, or $MODEL_DIR)
#   function  deploy the AWS stack (deploy/template.yaml) with that bundle, publish the
#             function as a new version and point the alias `candidate` at it; the public
#             URL still serves the alias `live`, unchanged
#   site      build and upload two Netlify drafts (neither live): one with /api/* proxied to
#             the candidate's URL, to test; one proxied to the live URL, to publish
#   smoke     check the test draft: the page, /api/health, /api/model and one prediction,
#             answered by the new version through the draft's proxy
#   publish   only for this run's smoked draft: move `live` to the new version (the old one
#             is kept as the alias `previous`), publish the draft, check the live site; if
#             any of it fails, both are put back as they were
#   rollback  put the previous version and the previous site back, and check the live site
# With no step, build to publish run in order. `--destroy` deletes the AWS stack (the
# Netlify site stays: it was created by hand and may carry a custom domain).
#
# Needs: AWS credentials (any way the AWS CLI accepts) and a region (AWS_REGION,
# AWS_DEFAULT_REGION or the AWS CLI's config), the AWS CLI and SAM CLI, Node 22+, Python 3.12,
# and NETLIFY_AUTH_TOKEN and NETLIFY_SITE_ID for the site steps.
# Settings: STACK_NAME (default dect-model); ARTIFACT_BUCKET (where bundles are uploaded,
# from deploy/bootstrap.yaml; without it SAM creates and uses its own managed bucket);
# SAM_PARAMETERS (extra "Key=Value ..." overrides of the template's parameters);
# SMOKE_WAIT (seconds the smoke test retries, default 60).
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

output() {  # one of the stack's outputs: FunctionUrl, CandidateUrl, FunctionName
  aws cloudformation describe-stacks --region "$REGION" --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

alias_of() {  # "version<TAB>description" of one of the function's aliases; empty if none
  aws lambda get-alias --region "$REGION" --function-name "$FUNCTION" --name "$1" \
    --query "[FunctionVersion, Description]" --output text 2>/dev/null || true
}

set_alias() {  # point an alias at a version, noting the site deploy that goes with it
  aws lambda update-alias --region "$REGION" --function-name "$FUNCTION" --name "$1" \
    --function-version "$2" --description "site $3" >/dev/null 2>&1 ||
  aws lambda create-alias --region "$REGION" --function-name "$FUNCTION" --name "$1" \
    --function-version "$2" --description "site $3" >/dev/null
}

function_ready() {
  aws_region
  FUNCTION="$(output FunctionName)"
  [ -n "$FUNCTION" ] && [ "$FUNCTION" != None ] ||
    { echo "deploy: the stack $STACK_NAME has no function; run: bash scripts/deploy.sh function" >&2; exit 1; }
}

stamp() {  # what the bundle was built from: the commit and the served model's artifact
  echo "$(git rev-parse HEAD 2>/dev/null || echo no-git) $(sha256sum "$("$PY" scripts/build_lambda.py --print-model-dir)/manifest.json" | cut -c1-64)"
}

last_json() {  # the last JSON object a command printed (the CLI may log a line before it)
  "$PY" -c 'import json,sys; t="\n"+open(sys.argv[1]).read(); d=json.loads(t[t.rfind("\n{"):])
print(d.get(sys.argv[2]) or "")' "$1" "$2"
}

step_build() {
  rm -f dist/lambda.stamp  # a build that fails leaves no stamp: `function` then refuses
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
  local bucket=(--resolve-s3) live_before=""
  [ -z "${ARTIFACT_BUCKET:-}" ] || bucket=(--s3-bucket "$ARTIFACT_BUCKET" --s3-prefix "$STACK_NAME")
  if [ "$(stack_status)" != NONE ]; then FUNCTION="$(output FunctionName)"; live_before="$(alias_of live)"; fi
  # shellcheck disable=SC2086  # SAM_PARAMETERS is a list of Key=Value words
  sam deploy --template-file deploy/template.yaml --stack-name "$STACK_NAME" --region "$REGION" \
    --capabilities CAPABILITY_IAM "${bucket[@]}" --no-confirm-changeset \
    --no-fail-on-empty-changeset ${SAM_PARAMETERS:+--parameter-overrides $SAM_PARAMETERS}
  # The stack changed the unversioned function only; the public URL serves `live`.
  rm -f dist/candidate-version.txt
  function_ready
  if [ -n "$live_before" ] && [ "$(alias_of live)" != "$live_before" ]; then
    # an edit of the alias in the template makes CloudFormation point it at FirstVersion
    local was
    was="$(echo "$live_before" | cut -f1)"
    echo "deploy: the stack update moved the alias live; putting it back to version $was" >&2
    set_alias live "$was" "${live_before##*site }"
  fi
  local version
  version="$(aws lambda publish-version --region "$REGION" --function-name "$FUNCTION" \
    --description "$(git rev-parse --short HEAD 2>/dev/null || echo local)" --query Version --output text)"
  aws lambda wait published-version-active --region "$REGION" --function-name "$FUNCTION" \
    --qualifier "$version"
  aws lambda update-alias --region "$REGION" --function-name "$FUNCTION" --name candidate \
    --function-version "$version" >/dev/null
  echo "$version" > dist/candidate-version.txt
  echo "deploy: version $version published as the candidate; live is still version $(alias_of live | cut -f1)"
}

netlify_ready() {
  need_env NETLIFY_AUTH_TOKEN "a Netlify personal access token"
  need_env NETLIFY_SITE_ID "the site's API ID, Netlify: Site configuration > General"
  [ -x "$NETLIFY" ] || npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
}

draft() {  # upload site/ as a draft whose /api/* proxies to $1; print its deploy id and URL
  # Netlify's build runs here (scripts/build.py writes site/_redirects); the upload takes the
  # built folder as it is.
  PREDICT_FUNCTION_URL="$1" "$NETLIFY" build --offline --context production >&2
  "$NETLIFY" deploy --no-build --dir site --site "$NETLIFY_SITE_ID" \
    --message "$(git rev-parse --short HEAD 2>/dev/null || echo local) $2" --json > dist/netlify-draft.json
  echo "$(last_json dist/netlify-draft.json deploy_id) $(last_json dist/netlify-draft.json deploy_url)"
}

https_or_die() {
  case "$2" in https://*) ;; *) echo "deploy: the stack $STACK_NAME has no $1 output" >&2; exit 1;; esac
}

step_site() {
  rm -f dist/draft.env dist/smoked  # `publish` takes only a draft this run made and smoked
  netlify_ready
  aws_region
  [ -s dist/candidate-version.txt ] ||
    { echo "deploy: no candidate version from this run; run: bash scripts/deploy.sh function" >&2; exit 2; }
  local candidate live test publish
  candidate="$(output CandidateUrl)"; https_or_die CandidateUrl "$candidate"
  live="$(output FunctionUrl)"; https_or_die FunctionUrl "$live"
  trap 'rm -f site/_redirects' EXIT  # a laptop's `npm run dev` must not proxy to AWS after
  read -r -a test < <(draft "$candidate" "test, version $(cat dist/candidate-version.txt)")
  read -r -a publish < <(draft "$live" "to publish")
  rm -f site/_redirects
  [ -n "${test[0]:-}" ] && [ -n "${publish[0]:-}" ] || { echo "deploy: Netlify gave no deploy id" >&2; exit 1; }
  { echo "commit=$(git rev-parse HEAD 2>/dev/null || echo no-git)"
    echo "version=$(cat dist/candidate-version.txt)"
    echo "test_deploy=${test[0]}"; echo "test_url=${test[1]}"; echo "publish_deploy=${publish[0]}"
  } > dist/draft.env
  echo "deploy: test draft at ${test[1]} (/api/* -> the candidate, $candidate)"
  echo "deploy: draft to publish: ${publish[0]} (/api/* -> live, $live)"
}

draft_value() { sed -n "s/^$1=//p" dist/draft.env; }

smoke() { "$PY" scripts/smoke.py "$1" --wait "${SMOKE_WAIT:-60}"; }

step_smoke() {
  if [ -n "${SITE_URL:-}" ]; then smoke "$SITE_URL"; return; fi
  [ -s dist/draft.env ] || { echo "deploy: no draft from this run; run: bash scripts/deploy.sh site" >&2; exit 2; }
  smoke "$(draft_value test_url)"
  sha256sum dist/draft.env > dist/smoked
}

published_deploy() {  # the id of the site's live deploy (empty for a site never published)
  "$NETLIFY" api getSite --data "{\"site_id\": \"$NETLIFY_SITE_ID\"}" > dist/netlify-site.json
  "$PY" -c 'import json,sys; t="\n"+open(sys.argv[1]).read(); d=json.loads(t[t.rfind("\n{"):])
print((d.get("published_deploy") or {}).get("id") or "")' dist/netlify-site.json
}

restore_site() {  # make a deploy the live site; print the live URL
  "$NETLIFY" api restoreSiteDeploy \
    --data "{\"site_id\": \"$NETLIFY_SITE_ID\", \"deploy_id\": \"$1\"}" > dist/netlify-live.json || return 1
  local url
  url="$(last_json dist/netlify-live.json ssl_url)"
  [ -n "$url" ] || url="$(last_json dist/netlify-live.json url)"
  echo "$url"
}

switch_to() {  # live -> version $1 with site deploy $2; `previous` -> version $3, site $4
  local url
  # (called in `if`, where errexit is off: each failure returns)
  if [ -n "$3" ]; then
    set_alias previous "$3" "$4" || return 1
  else  # as before a first publish: nothing to roll back to
    aws lambda delete-alias --region "$REGION" --function-name "$FUNCTION" --name previous || return 1
  fi
  set_alias live "$1" "$2" || return 1
  if [ "$2" = none ]; then
    echo "deploy: no earlier site deploy to restore; the site stays as it is" >&2
    return 0
  fi
  url="$(restore_site "$2")" && [ -n "$url" ] || return 1
  echo "deploy: live at $url: version $1, site deploy $2"
  LIVE_URL="$url"
}

prune_versions() {  # keep the versions an alias names and the stack's first; delete the rest
  local keep versions first v
  keep=" $(alias_of live | cut -f1) $(alias_of previous | cut -f1) $(alias_of candidate | cut -f1) "
  versions="$(aws lambda list-versions-by-function --region "$REGION" --function-name "$FUNCTION" \
    --query "Versions[?Version!='\$LATEST'].Version" --output text)"
  first="$(printf '%s\n' $versions | sort -n | head -1)"
  for v in $versions; do
    case "$keep" in *" $v "*) continue ;; esac
    [ "$v" = "$first" ] && continue  # FirstVersion: the stack's own resource
    aws lambda delete-function --region "$REGION" --function-name "$FUNCTION" --qualifier "$v" ||
      echo "deploy: could not delete version $v (it stays; no harm)" >&2
  done
}

step_publish() {
  netlify_ready
  function_ready
  [ -s dist/draft.env ] || { echo "deploy: no draft from this run to publish; run: bash scripts/deploy.sh site" >&2; exit 2; }
  local version publish now_version now_site now_previous
  version="$(draft_value version)"; publish="$(draft_value publish_deploy)"
  [ "$(draft_value commit)" = "$(git rev-parse HEAD 2>/dev/null || echo no-git)" ] ||
    { echo "deploy: the draft was made from another commit; run site and smoke again" >&2; exit 2; }
  [ "$(alias_of candidate | cut -f1)" = "$version" ] ||
    { echo "deploy: the candidate is no longer version $version (another deploy?); run function, site and smoke again" >&2; exit 2; }
  sha256sum --status -c dist/smoked 2>/dev/null ||
    { echo "deploy: this run's draft has not passed the smoke test; run: bash scripts/deploy.sh smoke" >&2; exit 2; }
  now_version="$(alias_of live | cut -f1)"
  now_site="$(published_deploy)"
  now_previous="$(alias_of previous)"  # "version<TAB>site <deploy id>", or empty
  echo "deploy: moving live from version $now_version to $version, the site from ${now_site:-nothing} to $publish"
  if switch_to "$version" "$publish" "$now_version" "${now_site:-none}" && smoke "$LIVE_URL"; then
    rm -f dist/draft.env dist/smoked
    prune_versions  # each version holds a bundle; Lambda's code storage per region is finite
    return 0
  fi
  echo "deploy: the live site failed; putting version $now_version and site ${now_site:-none} back" >&2
  rm -f dist/draft.env dist/smoked  # not published again without a new run's smoke test
  switch_to "$now_version" "${now_site:-none}" "$(echo "$now_previous" | cut -sf1)" \
    "${now_previous##*site }" || true
  exit 1
}

step_rollback() {
  netlify_ready
  function_ready
  local live previous
  live="$(alias_of live)"; previous="$(alias_of previous)"
  [ -n "$previous" ] || { echo "deploy: nothing to roll back to: no version was replaced yet" >&2; exit 1; }
  # "version<TAB>site <deploy id>" each
  echo "deploy: rolling back from version ${live%%$'\t'*} to ${previous%%$'\t'*}"
  switch_to "${previous%%$'\t'*}" "${previous##*site }" "${live%%$'\t'*}" "${live##*site }"
  [ -z "${LIVE_URL:-}" ] || smoke "$LIVE_URL"
}

destroy() {
  aws_region
  need sam "pip install aws-sam-cli"
  local bucket=()
  [ -z "${ARTIFACT_BUCKET:-}" ] || bucket=(--s3-bucket "$ARTIFACT_BUCKET" --s3-prefix "$STACK_NAME")
  local sam_ok=yes status
  sam delete --stack-name "$STACK_NAME" --region "$REGION" --no-prompts "${bucket[@]}" || sam_ok=no
  status="$(stack_status)"
  if [ "$status" != NONE ]; then
    echo "deploy: the stack $STACK_NAME was NOT deleted (status: $status); see its events:" >&2
    echo "  aws cloudformation describe-stack-events --stack-name $STACK_NAME" >&2
    exit 1
  fi
  if [ "$sam_ok" = no ]; then
    echo "deploy: the stack $STACK_NAME is gone, but sam delete failed (above): its bundles" \
         "may still be in ${ARTIFACT_BUCKET:-the SAM-managed bucket}/$STACK_NAME" >&2
    exit 1
  fi
  echo "deploy: stack $STACK_NAME deleted (function, versions, URLs, alarms, log group, role). Still there:"
  echo "  the Netlify site:  npx netlify sites:delete \"\$NETLIFY_SITE_ID\" --force"
  echo "  the deploy role and bundle bucket, if made with deploy/bootstrap.yaml: empty the"
  echo "  bucket, then aws cloudformation delete-stack --stack-name dect-model-bootstrap"
  echo "  (without ARTIFACT_BUCKET, SAM's own stack aws-sam-cli-managed-default holds the bundles)"
}

mkdir -p dist
case "${1:-all}" in
  --destroy) destroy ;;
  build|function|site|smoke|publish|rollback) "step_$1" ;;
  all) step_build; step_function; step_site; step_smoke; step_publish ;;
  *) echo "usage: bash scripts/deploy.sh [build|function|site|smoke|publish|rollback|--destroy]" >&2; exit 2 ;;
esac
