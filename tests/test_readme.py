"""The README's promises: its curl examples work as written, and its run command serves the site."""
import json
import os
import re
import socket
import subprocess
import urllib.request

import pytest

from support import ROOT

README = (ROOT / "README.md").read_text()


def curl_examples():
    """Return (command, is_error_example) for every curl command in the README's sh blocks."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        lines = block.replace("\\\n", " ").splitlines()
        for i, line in enumerate(lines):
            if line.startswith("curl "):
                out.append((line, i > 0 and "error example" in lines[i - 1]))
    return out


EXAMPLES = curl_examples()


def test_the_readme_has_an_example_for_every_route():
    text = " ".join(cmd for cmd, _ in EXAMPLES)
    for route in ("/api/health", "/api/model", "/api/openapi.json", "/api/predict"):
        assert route in text
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("command, is_error", EXAMPLES, ids=[c[:60] for c, _ in EXAMPLES])
def test_each_curl_example_works_as_written(runtime, command, is_error):
    host = runtime.url.removeprefix("http://")
    out = subprocess.run(command.replace("localhost:8888", host), shell=True, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    if "Accept: text/csv" in command:
        header = out.stdout.splitlines()[0]
        assert header.startswith("row,prediction,probability_benign")
        return
    body = json.loads(out.stdout)
    assert ("error" in body) == is_error


def test_the_run_command_serves_the_site_and_api():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PORT": str(port)})
    try:
        assert proc.stdout.readline().strip() == f"Serving on http://127.0.0.1:{port}/"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert b"<html" in r.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=30) as r:
            assert json.load(r)["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
