"""The real netlify-cli (`netlify dev`) fronting the local Python runtime, as a developer runs it."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import build

from support import ROOT, copy_checkout, example, manifest

pytestmark = pytest.mark.netlify
NETLIFY = ROOT / "node_modules" / ".bin" / "netlify"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, body=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@contextlib.contextmanager
def netlify(*args: str, port: int, cwd=ROOT, env: dict | None = None):
    """Run a long-lived netlify-cli command; yield its URL once it answers, stop it after."""
    env = {**os.environ, "CI": "1", "NO_UPDATE_NOTIFIER": "1", **(env or {})}
    proc = subprocess.Popen([str(NETLIFY), *args, "--port", str(port)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if fetch(url + "/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"netlify {args[0]} did not answer within 90 s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def netlify_dev():
    target = free_port()
    with netlify("dev", "--offline", "--internal-disable-edge-functions",
                 "--target-port", str(target),
                 "--command", f"{ROOT / '.venv' / 'bin' / 'python'} scripts/serve.py {target}",
                 port=free_port(), env={"PREDICT_DEV_TARGET": f"http://127.0.0.1:{target}"}) as url:
        yield url


def test_netlify_dev_serves_the_site_with_its_headers(netlify_dev):
    status, headers, body = fetch(netlify_dev + "/")
    assert status == 200 and b"<html" in body
    assert headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_netlify_dev_sends_each_security_header_once_the_functions_on_the_api(netlify_dev):
    import http.client
    from urllib.parse import urlsplit
    url = urlsplit(netlify_dev)
    for path, csp in (("/api/health", "default-src 'none'"), ("/", "default-src 'self'")):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        names = [k.lower() for k, _ in answer.getheaders()]
        for header in ("content-security-policy", "x-content-type-options", "x-frame-options",
                       "referrer-policy"):
            assert names.count(header) == 1, (path, header)
        assert answer.getheader("Content-Security-Policy").startswith(csp)


def test_netlify_dev_routes_api_to_the_python_function(netlify_dev):
    status, headers, body = fetch(netlify_dev + "/api/predict", {"features": example("benign")})
    assert status == 200
    assert json.loads(body)["predictions"] == ["benign"]
    assert headers["X-Model-Version"] == "1.0.0"


def test_netlify_dev_serves_mlflow_invocations_and_ping_at_the_root(netlify_dev):
    names = [f["name"] for f in manifest()["features"]]
    row = example("benign")
    split = {"index": [0], "columns": names, "data": [[row[n] for n in names]]}
    status, _, body = fetch(netlify_dev + "/invocations", {"dataframe_split": split})
    assert (status, json.loads(body)) == (200, {"predictions": ["benign"]})
    assert fetch(netlify_dev + "/ping")[0] == 200


def test_netlify_dev_passes_function_errors_through(netlify_dev):
    status, _, body = fetch(netlify_dev + "/api/predict", {"features": {}})
    assert status == 400
    assert json.loads(body)["error"]["code"] == "missing_feature"


def copy_site(folder):
    """Copy what Netlify's build and deploy read into folder, as a fresh checkout has it."""
    copy_checkout(folder, ("netlify.toml", "site", "scripts/build.py"))


def test_netlify_build_points_api_at_the_lambda_function(tmp_path):
    copy_site(tmp_path)
    env = {**os.environ, "CI": "1", "NO_UPDATE_NOTIFIER": "1",
           "PREDICT_FUNCTION_URL": "https://abc.lambda-url.eu-west-1.on.aws"}
    out = subprocess.run([str(NETLIFY), "build", "--offline"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-2000:]
    assert (tmp_path / "site" / "_redirects").read_text() == \
        build.redirects_for("https://abc.lambda-url.eu-west-1.on.aws")
    assert "/api/*  https://abc.lambda-url.eu-west-1.on.aws/api/:splat  200!\n" in \
        (tmp_path / "site" / "_redirects").read_text()
    env.pop("PREDICT_FUNCTION_URL")
    failed = subprocess.run([str(NETLIFY), "build", "--offline"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=180)
    assert failed.returncode != 0
    assert "PREDICT_FUNCTION_URL is not set" in failed.stdout + failed.stderr


def test_the_production_build_proxies_api_to_the_function_and_passes_the_smoke_test(
        tmp_path, runtime):
    # `netlify serve` builds for production and serves the result as Netlify would; the local
    # runtime stands in for the Lambda Function URL. The deploy's own smoke test then runs
    # through the site's proxy, as it does after a real deploy.
    copy_site(tmp_path)
    with netlify("serve", "--offline", "--internal-disable-edge-functions", port=free_port(),
                 cwd=tmp_path, env={"PREDICT_FUNCTION_URL": runtime.url}) as url:
        assert (tmp_path / "site" / "_redirects").read_text() == build.redirects_for(runtime.url)
        assert fetch(url + "/ping")[0] == 200  # MLflow's path at the site's root, proxied too
        smoke = subprocess.run([sys.executable, str(ROOT / "scripts" / "smoke.py"), url,
                                "--wait", "0"], capture_output=True, text=True, timeout=120)
    assert smoke.returncode == 0, smoke.stderr
    assert "ok: model dect_model" in smoke.stdout


def test_netlify_dev_forwards_csv_conditional_requests_and_status(netlify_dev):
    rows = (ROOT / "model" / "sample.csv").read_text()
    req = urllib.request.Request(netlify_dev + "/api/predict?explain=false", data=rows.encode(),
                                 headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/csv")
        assert r.read().decode().startswith("row,prediction,share_of_training_samples_in_leaf_benign")
    _, headers, _ = fetch(netlify_dev + "/api/model")
    req = urllib.request.Request(netlify_dev + "/api/model",
                                 headers={"If-None-Match": headers["ETag"]})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 304
