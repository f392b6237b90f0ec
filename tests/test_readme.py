"""The README's run command serves the site (its examples run in tests/test_examples.py)."""
import json
import os
import socket
import subprocess
import urllib.request

from support import ROOT


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
