"""Self-hosting as the README documents it, met by hostile clients over 127.0.0.1: the
waitress command (scripts/serve.py --function-only predict) and gunicorn, each with a warm
model, limits that hold and chunked bodies read; and scripts/run.sh's and --dev's behaviour."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from support import MODEL_DIR, ROOT, LocalRuntime, call, chunked, event, example, exchange

BODY = json.dumps({"features": example("malignant")}).encode()
POST = b"POST /api/predict?explain=false HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
VERSION = "2.0 – beta"  # not latin-1: header values must still be valid
LIMIT = 20000
GUNICORN = Path(sys.executable).parent / "gunicorn"


@pytest.fixture(scope="module")
def odd_model(tmp_path_factory):
    """The committed model, its manifest saying version "2.0 – beta"."""
    folder = tmp_path_factory.mktemp("odd") / "model"
    shutil.copytree(MODEL_DIR, folder)
    doc = json.loads((folder / "manifest.json").read_text())
    doc["version"] = VERSION
    (folder / "manifest.json").write_text(json.dumps(doc))
    return folder


@pytest.fixture(scope="module")
def waitress(odd_model):
    """The README's self-hosting command, a 2 s timeout and a 20,000-byte body limit."""
    rt = LocalRuntime(env={"MODEL_DIR": str(odd_model), "MAX_BODY_BYTES": str(LIMIT)},
                      args=["--function-only", "predict", "--timeout", "2"])
    yield rt.port
    rt.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn(odd_model):
    """gunicorn as the README names it: two sync workers forked from a preloaded, warm app."""
    port = free_port()
    proc = subprocess.Popen(
        [str(GUNICORN), "--preload", "--workers", "2", "--timeout", "30", "--bind",
         f"127.0.0.1:{port}", "--limit-request-field_size", "65536", "predict.wsgi:warm_app()"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": "netlify/functions", "MODEL_DIR": str(odd_model),
             "MAX_BODY_BYTES": str(LIMIT)})
    for line in proc.stderr:  # gunicorn logs "Booting worker" once it accepts connections
        if "Booting worker" in line:
            break
    yield port
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(params=["waitress", "gunicorn"])
def server(request):
    return request.getfixturevalue(request.param)


def test_the_model_is_loaded_before_the_first_request(server):
    resp = exchange(server, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert json.loads(resp.body)["warm"] is True
    resp = exchange(server, POST + f"Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY)
    assert "load;dur=" not in resp.getheader("Server-Timing")


def test_a_chunked_body_is_read(server):
    resp = exchange(server, POST + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(BODY))
    assert resp.status == 200
    assert json.loads(resp.body)["predictions"] == ["malignant"]


def test_a_request_with_both_lengths_is_a_400(server):
    resp = exchange(server, POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                    + chunked(BODY))
    assert resp.status == 400


def test_a_version_that_is_not_latin_1_is_sent_percent_encoded(server):
    resp = exchange(server, b"GET /api/model HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert resp.status == 200
    assert resp.getheader("X-Model-Version") == "2.0 %E2%80%93 beta"
    assert unquote(resp.getheader("X-Model-Version")) == json.loads(resp.body)["version"]


@pytest.mark.parametrize("version", [VERSION, "1.0\r\nSet-Cookie: a=b", "naïve 100%"])
def test_the_handler_sends_any_version_as_a_valid_header(monkeypatch, tmp_path, version):
    shutil.copytree(MODEL_DIR, tmp_path / "model")
    doc = json.loads((tmp_path / "model" / "manifest.json").read_text())
    (tmp_path / "model" / "manifest.json").write_text(json.dumps({**doc, "version": version}))
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "model"))
    status, headers, _ = call(event("POST", "/api/predict", body={"features": example()}))
    value = headers["X-Model-Version"]
    assert status == 200
    assert value.isascii() and value.isprintable()
    assert unquote(value) == version


def test_the_waitress_command_refuses_both_lengths_naming_them(waitress):
    resp = exchange(waitress, POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                    + chunked(BODY))
    assert json.loads(resp.body)["error"]["code"] == "conflicting_lengths"


def test_a_chunked_upload_over_the_limit_is_refused_before_it_is_all_sent(waitress):
    """An endless chunked upload: waitress answers 413 once the limit has arrived and closes,
    so the client cannot make it store more than the limit."""
    sock = socket.create_connection(("127.0.0.1", waitress), timeout=30)
    sock.sendall(POST + b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    endless = 100 * 2**20  # far more than the socket buffers of both ends hold
    sent = 0
    try:
        while sent < endless:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert sent < endless  # cut off, not read to the end
    try:  # its 413 may be lost: a socket closed with bytes unread sends a reset after it
        resp = http.client.HTTPResponse(sock)
        resp.begin()
    except ConnectionResetError:
        sock.close()
        return
    assert resp.status == 413
    assert json.loads(resp.read())["error"]["code"] == "payload_too_large"
    sock.close()


def test_a_declared_length_over_the_limit_is_refused_without_the_body(waitress):
    resp = exchange(waitress, POST + b"Content-Length: 1000000000\r\n\r\n")
    assert resp.status == 413
    assert json.loads(resp.body)["error"] == {
        "code": "payload_too_large", "details": [],
        "message": f"the body is over {LIMIT} bytes, the most accepted"}


def test_a_client_sending_a_byte_every_half_second_is_cut_off_at_the_timeout(waitress):
    """The timeout (2 s) holds for a request that keeps arriving, not only an idle one: a
    request line of 200 bytes sent a byte every 0.5 s would take 100 s."""
    sock = socket.create_connection(("127.0.0.1", waitress), timeout=30)
    data = b"GET /api/health?" + b"a" * 200
    sent = 0
    try:
        for byte in data:
            sock.sendall(bytes([byte]))
            sent += 1
            time.sleep(0.5)
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.close()
    assert sent < len(data) // 4  # closed within about 3 s of 100 s: far before the end


def test_110_idle_connections_do_not_stop_it_answering(runtime):
    """On the runtime with its default 30 s timeout: the answer comes while the 110 idle
    connections are still open (waitress's default limit, 100, made it wait for them to
    time out)."""
    idle = [socket.create_connection((runtime.host, runtime.port), timeout=30)
            for _ in range(110)]
    try:
        resp = exchange(runtime.port, POST + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
                        + BODY)
        assert resp.status == 200
        for sock in idle:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):  # open, nothing to read: not timed out
                sock.recv(1)
    finally:
        for sock in idle:
            sock.close()


def test_the_site_runtime_serves_a_file_added_after_start_only_with_dev(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html>home</html>")
    (tmp_path / "netlify.toml").write_text('[build]\npublish = "site"\n')
    for args, status in ([], 404), (["--dev"], 200):
        server = LocalRuntime(args=["--config", str(tmp_path / "netlify.toml"), *args])
        try:
            (tmp_path / "site" / "new.html").write_text("<html>new</html>")
            assert server.request("/new.html")[0] == status
            assert server.request("/")[0] == 200
        finally:
            server.stop()
            (tmp_path / "site" / "new.html").unlink()


def test_a_published_file_still_comes_before_a_rewrite_it_matches(tmp_path):
    """The runtime sends /api/* to the function without looking for a file only when no
    published file could answer it: Netlify's order (files first) holds."""
    (tmp_path / "site" / "api").mkdir(parents=True)
    (tmp_path / "site" / "api" / "note.txt").write_text("a file")
    (tmp_path / "netlify.toml").write_text(
        '[build]\npublish = "site"\n[functions]\ndirectory = "' + str(ROOT / "netlify/functions")
        + '"\n[[redirects]]\nfrom = "/api/*"\nto = "/.netlify/functions/predict/:splat"\n'
        'status = 200\n')
    server = LocalRuntime(args=["--config", str(tmp_path / "netlify.toml")])
    try:
        assert server.request("/api/note.txt")[2] == b"a file"
        assert json.loads(server.request("/api/health")[2])["status"] == "ok"
    finally:
        server.stop()


def test_run_sh_runs_the_installer_only_when_what_it_installs_from_changed(tmp_path):
    """scripts/run.sh with a recording setup.sh and a .venv whose python records its
    arguments: the real run.sh's decision, without installing anything."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run.sh", tmp_path / "scripts" / "run.sh")
    (tmp_path / "scripts" / "setup.sh").write_text(
        "mkdir -p .venv/bin\nprintf '#!/bin/sh\\necho \"$@\" >> ran\\n' > .venv/bin/python\n"
        "chmod +x .venv/bin/python\necho setup >> ran\n")
    for name in ("requirements.txt", "requirements-local.txt"):
        shutil.copy(ROOT / name, tmp_path / name)

    def run() -> list[str]:
        (tmp_path / "ran").unlink(missing_ok=True)
        subprocess.run(["bash", "scripts/run.sh", "--dev"], cwd=tmp_path, check=True,
                       env={**os.environ, "PORT": "9999"})
        return (tmp_path / "ran").read_text().splitlines()

    assert run() == ["setup", "scripts/serve.py 9999 --dev"]
    assert run() == ["scripts/serve.py 9999 --dev"]
    with open(tmp_path / "requirements.txt", "a") as f:
        f.write("# changed\n")
    assert run() == ["setup", "scripts/serve.py 9999 --dev"]
    assert run() == ["scripts/serve.py 9999 --dev"]
