"""What production runs: the same handler in a Lambda bundle, and the Netlify proxy rule to it."""
import json
import subprocess
import sys
import sysconfig
import zipfile

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
    assert rule == "/api/*  https://abc.lambda-url.eu-west-1.on.aws/api/:splat  200!\n"


@pytest.mark.parametrize("url", ["http://abc.lambda-url.eu-west-1.on.aws", "abc", ""])
def test_the_netlify_build_refuses_a_missing_or_insecure_function_url(url):
    with pytest.raises(ValueError):
        build.redirects_for(url)


def test_the_netlify_build_fails_loudly_without_a_function_url(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "build.py")], capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 1
    assert "PREDICT_FUNCTION_URL is not set" in out.stderr
