"""The real Lambda bundle, as AWS would run it: unzipped in a fresh folder, Python 3.12 with
nothing but the bundle (and the runtime client) on sys.path, driven by the real AWS runtime
client, awslambdaric, against a stand-in Runtime API. Only AWS itself is missing."""
import json
import os
import subprocess
import sys
import zipfile

import pytest

import build_lambda
import fitted
import package_model
from lambda_runtime import RuntimeApi
from support import ROOT, event, example

AWSLAMBDARIC = "awslambdaric==4.2.2"  # the runtime client Lambda's python3.12 image runs


@pytest.fixture(scope="module")
def python312():
    try:
        return build_lambda.lambda_python()
    except SystemExit as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def unzipped(tmp_path_factory, python312):
    """Build the bundle with its Lambda wheels and bytecode, then unzip it into a fresh folder."""
    out = tmp_path_factory.mktemp("dist")
    archive = build_lambda.build(out, ROOT / "model", deps=True)
    task = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(archive) as z:
        z.extractall(task)
    return task


@pytest.fixture(scope="module")
def runtime_client(tmp_path_factory):
    """awslambdaric and its dependencies, as wheels for Lambda's Python and platform."""
    target = tmp_path_factory.mktemp("var-runtime")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--target", str(target), "--platform", "manylinux2014_x86_64",
                    "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:",
                    AWSLAMBDARIC], check=True)
    return target


def files_of(folder):
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_the_bundle_fits_lambda_and_carries_bytecode_for_python_312(unzipped):
    size = sum(p.stat().st_size for p in unzipped.rglob("*") if p.is_file())
    assert size < build_lambda.LAMBDA_LIMIT
    sources = [p for p in unzipped.rglob("*.py")]
    missing = [p for p in sources
               if not (p.parent / "__pycache__" / f"{p.stem}.cpython-312.pyc").is_file()]
    assert len(sources) > 1000 and missing == []
    assert (unzipped / "model" / "manifest.json").is_file()
    assert list((unzipped / "numpy" / "_core").glob("_multiarray_umath.cpython-312-*.so"))


def test_the_bundle_names_no_path_of_the_machine_that_built_it(unzipped):
    # bytecode names /var/task/...; pip's console scripts (#! this venv's Python) are left out
    here = [str(ROOT).encode(), sys.prefix.encode()]
    found = [p for p in unzipped.rglob("*")
             if p.is_file() and any(h in p.read_bytes() for h in here)]
    assert found == []
    assert not (unzipped / "bin").exists()


# Reports every module compiled from source inside the bundle: with good bytecode there is none.
AUDIT = ("import sys\n"
         "def hook(name, args, root=sys.argv[1]):\n"
         "    if name == 'compile' and str(args[1]).startswith(root):\n"
         "        print('COMPILED', args[1], file=sys.stderr)\n"
         "sys.addaudithook(hook)\n"
         "sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
         "from awslambdaric.__main__ import main\n"
         "main(['awslambdaric', 'predict.handler'])\n")


def run_on_lambda(task, events, runtime_client, python312, cwd, env=None):
    """Run the unzipped bundle as Lambda does; return (answers, the process's stderr+stdout)."""
    api = RuntimeApi(events)
    before = files_of(task)
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API": api.address,
           "LAMBDA_TASK_ROOT": str(task), "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
           "AWS_LAMBDA_FUNCTION_NAME": "predict", "AWS_REGION": "eu-west-1", **(env or {})}
    proc = subprocess.Popen([python312, "-I", "-S", "-B", "-c", AUDIT, str(task),
                             str(runtime_client)],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        finished = api.done.wait(timeout=180)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
        api.close()
    assert finished, err[-3000:]
    assert api.init_error is None, api.init_error
    assert "COMPILED" not in err, [line for line in err.splitlines() if "COMPILED" in line][:5]
    assert files_of(task) == before  # /var/task is read-only on Lambda: nothing written
    answers = api.answers()
    assert [kind for kind, _ in answers] == ["response"] * len(events), answers
    assert api.restored == (env.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start")
    return [payload for _, payload in answers], out + err


def test_the_runtime_client_runs_the_bundle_under_python_312(unzipped, runtime_client, python312,
                                                             tmp_path):
    events = [event("GET", "/api/health", version="v2"),
              event("GET", "/api/model", version="v2"),
              event("POST", "/api/predict", body={"features": example("malignant")}, version="v2"),
              event("POST", "/api/predict", body={"features": {}}, version="v2")]
    (health, card, good, bad), logs = run_on_lambda(unzipped, events, runtime_client, python312,
                                                    tmp_path)
    assert health["statusCode"] == 200 and json.loads(health["body"])["status"] == "ok"
    assert card["statusCode"] == 200
    assert json.loads(card["body"])["name"] == "dect_model"
    assert good["statusCode"] == 200
    assert json.loads(good["body"])["predictions"] == ["malignant"]
    assert bad["statusCode"] == 400
    assert json.loads(bad["body"])["error"]["code"] == "missing_feature"
    assert '"event": "model_loaded"' in logs  # the function's own log line reached the logs
    # the invocation lines reach Lambda's stdout bare, as CloudWatch reads embedded metrics
    lines = [json.loads(t) for t in logs.splitlines() if t.startswith('{"event": "invocation"')]
    assert len(lines) == 4 and all(x["_aws"]["CloudWatchMetrics"] for x in lines)
    assert not any(p.name.startswith("pandas") for p in unzipped.iterdir())  # not needed here


def test_with_snapstart_the_model_is_loaded_before_the_snapshot(unzipped, runtime_client,
                                                                 python312, tmp_path):
    """The real runtime client runs the SnapStart hooks the function registers before it asks
    for the restore: the first request is then answered by a model already loaded."""
    events = [event("POST", "/api/predict", body={"features": example("malignant")},
                    version="v2")]
    (answer,), logs = run_on_lambda(unzipped, events, runtime_client, python312, tmp_path,
                                    env={"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"})
    assert json.loads(answer["body"])["predictions"] == ["malignant"]
    assert "load;dur=" not in answer["headers"]["Server-Timing"]
    assert '"event": "model_loaded"' in logs


def test_without_snapstart_the_first_request_loads_the_model(unzipped, runtime_client, python312,
                                                             tmp_path):
    events = [event("POST", "/api/predict", body={"features": example("malignant")},
                    version="v2")]
    (answer,), _ = run_on_lambda(unzipped, events, runtime_client, python312, tmp_path)
    assert "load;dur=" in answer["headers"]["Server-Timing"]


def test_a_dataframe_pipelines_bundle_carries_pandas_and_answers_as_the_estimator(
        tmp_path_factory, runtime_client, python312, tmp_path):
    # A ColumnTransformer selecting columns by name, set_output(pandas), saved with joblib
    fit = fitted.frame_regressor(tmp_path_factory.mktemp("fit"))
    served = tmp_path_factory.mktemp("served")
    manifest = package_model.package(fit.model_file, fit.data_file, served, target=fit.target)
    assert [r.split("==")[0] for r in manifest["requires"]] == ["pandas"]
    archive = build_lambda.build(tmp_path_factory.mktemp("dist"), served, deps=True)
    task = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(archive) as z:
        z.extractall(task)
    assert sum(p.stat().st_size for p in task.rglob("*") if p.is_file()) < build_lambda.LAMBDA_LIMIT
    assert (task / "pandas").is_dir()
    rows = fitted.rows(fit.frame)
    events = [event("POST", "/api/predict", body={"instances": rows}, version="v2")]
    (answer,), _ = run_on_lambda(task, events, runtime_client, python312, tmp_path)
    assert answer["statusCode"] == 200, answer["body"][:500]
    predictions = json.loads(answer["body"])["predictions"]
    assert predictions == pytest.approx(list(fit.estimator.predict(fit.frame)), rel=1e-12)


def test_the_built_zip_is_the_same_bytes_twice(tmp_path):
    first = build_lambda.build(tmp_path / "a", ROOT / "model", deps=False, bytecode=False)
    second = build_lambda.build(tmp_path / "b", ROOT / "model", deps=False, bytecode=False)
    assert first.read_bytes() == second.read_bytes()


def test_the_served_model_is_one_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("MODEL_DIR", raising=False)
    assert build_lambda.served_model_dir() == ROOT / "model"
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    assert build_lambda.served_model_dir() == tmp_path
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_lambda.py"),
                          "--out", str(tmp_path / "dist")], capture_output=True, text=True,
                         env={**os.environ, "MODEL_DIR": str(tmp_path)})
    assert out.returncode != 0 and "has no manifest.json" in out.stderr


def test_sourceless_bytecode_imports_under_python_312_with_no_source_left(tmp_path, python312):
    # the fallback for a bundle that would pass 250 MB with bytecode beside its sources
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .mod import VALUE\n")
    (package / "mod.py").write_text("VALUE = 6 * 7\n")
    build_lambda.compile_bytecode(tmp_path, python312, sourceless=True)
    assert sorted(p.name for p in package.iterdir()) == ["__init__.pyc", "mod.pyc"]
    out = subprocess.run([python312, "-I", "-B", "-c",
                          f"import sys; sys.path[:0] = [{str(tmp_path)!r}]; import pkg; "
                          "print(pkg.VALUE)"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "42"
