"""Benchmark starting up: `bash scripts/run.sh` to its first answer, and self-hosting right
after a start, against baselines in the same run.

- start-up: fresh processes, each timed from spawn to its first prediction (POST
  /api/predict answered 200, which loads the model), interleaved: the floor (a bare waitress
  whose app unpickles the model on its first request and answers predict_proba as JSON: a
  Python server and nothing else), `scripts/serve.py` alone, and `bash scripts/run.sh` once
  set up (the installer's stamp is current);
- self-hosting warm: each server started, sent GET /api/health until it answers, then at
  once 4 concurrent one-row predictions: the slowest of the 4 (what the unluckiest of the
  first visitors waits), per command the median of the rounds;
- throughput: wrk at 8 and 64 connections on the README's waitress command and on gunicorn
  with 2 workers (keep-alive, one row with its explanation).

    python scripts/bench_start.py [--rounds 8] [--seconds 5]

Needs requirements-bench.txt (gunicorn) and Debian's wrk.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import load  # noqa: E402  (wrk's output parser)

PY = sys.executable
BODY = json.dumps({"features": json.loads((ROOT / "model" / "manifest.json").read_text())
                   ["examples"][0]["features"]})
FLOOR = """
import json, pickle, sys, waitress
manifest = json.load(open("model/manifest.json"))
names = [f["name"] for f in manifest["features"]]
model = None
def app(environ, start_response):
    global model
    if model is None:
        import numpy as np
        model = pickle.load(open("model/" + manifest["artifact"]["file"], "rb"))
    row = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
    X = np.asarray([[row["features"][n] for n in names]], dtype=float)
    body = json.dumps({"p": model.predict_proba(X).tolist()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), _quiet=True)
"""
FUNCTION_ENV = {"PYTHONPATH": "netlify/functions"}
GUNICORN = [PY, "-m", "gunicorn", "--workers", "2", "--log-level", "warning"]


def starts(port: int) -> dict[str, tuple[list[str], dict]]:
    """The start-up commands: name -> (argv, environment added)."""
    return {"floor: bare waitress, pickle": ([PY, "-c", FLOOR, str(port)], {}),
            "scripts/serve.py": ([PY, "scripts/serve.py", str(port)], {}),
            "bash scripts/run.sh": (["bash", "scripts/run.sh"], {"PORT": str(port)})}


def servers(port: int) -> dict[str, tuple[list[str], dict]]:
    """The self-hosting commands: the README's two, and the two it named before."""
    bind = ["--bind", f"127.0.0.1:{port}"]
    return {
        "serve.py --function-only (README)": (
            [PY, "scripts/serve.py", str(port), "--function-only", "predict"], {}),
        "gunicorn --preload warm_app() (README)": (
            [*GUNICORN, *bind, "--preload", "predict.wsgi:warm_app()"], FUNCTION_ENV),
        "gunicorn predict.wsgi:app (before)": ([*GUNICORN, *bind, "predict.wsgi:app"],
                                                FUNCTION_ENV),
        "waitress-serve predict.wsgi:app (before)": (
            [str(Path(PY).parent / "waitress-serve"), "--host", "127.0.0.1", "--port", str(port),
             "predict.wsgi:app"], FUNCTION_ENV),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def request(port: int, method: str, path: str, body: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def first_answer(port: int, started: float, proc: subprocess.Popen, *,
                 predict: bool = False) -> float:
    """Poll GET /api/health (or POST a prediction) until it answers 200; return the time."""
    while time.monotonic() - started < 120:
        try:
            if (request(port, "POST", "/api/predict", BODY) if predict
                    else request(port, "GET", "/api/health")) == 200:
                return time.perf_counter()
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"bench_start: {proc.args} exited") from None
            time.sleep(0.01)
    raise SystemExit(f"bench_start: {proc.args} did not answer")


def start_up(rounds: int) -> dict[str, list[float]]:
    """Seconds from spawn to the first answer, per command, interleaved."""
    times: dict[str, list[float]] = {}
    for i in range(rounds):
        port = free_port()
        names = list(starts(port))
        for name in names[i % len(names):] + names[:i % len(names)]:
            port = free_port()
            argv, env = starts(port)[name]
            begin, monotonic = time.perf_counter(), time.monotonic()
            proc = spawn(argv, env)
            try:
                times.setdefault(name, []).append(
                    first_answer(port, monotonic, proc, predict=True) - begin)
            finally:
                stop(proc)
    return times


def slowest_of_four(port: int) -> float:
    """Send 4 one-row predictions at once; return the slowest's seconds (all must be 200)."""
    barrier, took, statuses = threading.Barrier(4), [], []

    def one():
        barrier.wait()
        begin = time.perf_counter()
        statuses.append(request(port, "POST", "/api/predict", BODY))
        took.append(time.perf_counter() - begin)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if statuses != [200] * 4:
        raise SystemExit(f"bench_start: answers {statuses}")
    return max(took)


def warm(rounds: int) -> dict[str, list[float]]:
    """Per self-hosting command, the slowest of 4 concurrent requests right after its first
    answer, interleaved."""
    times: dict[str, list[float]] = {}
    for i in range(rounds):
        names = list(servers(0))
        for name in names[i % len(names):] + names[:i % len(names)]:
            port = free_port()
            argv, env = servers(port)[name]
            proc = spawn(argv, env)
            try:
                first_answer(port, time.monotonic(), proc)
                times.setdefault(name, []).append(slowest_of_four(port))
            finally:
                stop(proc)
    return times


def throughput(seconds: int) -> dict[str, dict[int, dict]]:
    """wrk on the README's two self-hosting commands, warm, at 8 and 64 connections."""
    out: dict[str, dict[int, dict]] = {}
    names = [n for n in servers(0) if n.endswith("(README)")]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(load.LUA % BODY)
        script.flush()
        for name in names:
            port = free_port()
            argv, env = servers(port)[name]
            proc = spawn(argv, env)
            try:
                first_answer(port, time.monotonic(), proc)
                for _ in range(20):
                    request(port, "POST", "/api/predict", BODY)
                for c in (8, 64):
                    run = subprocess.run(["wrk", "-t2", f"-c{c}", f"-d{seconds}s", "--timeout",
                                          "10s", "--latency", "-s", script.name,
                                          f"http://127.0.0.1:{port}/api/predict"],
                                         capture_output=True, text=True, check=True)
                    out.setdefault(name, {})[c] = load.parse_wrk(run.stdout)
            finally:
                stop(proc)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    args = parser.parse_args(argv)
    up = start_up(args.rounds)
    floor = statistics.median(up["floor: bare waitress, pickle"])
    serve = statistics.median(up["scripts/serve.py"])
    print(f"start-up, spawn to first prediction answered, median of {args.rounds}, s")
    print("| command | median | fastest | slowest | x floor | x serve.py |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, t in up.items():
        med = statistics.median(t)
        print(f"| {name} | {med:.3f} | {min(t):.3f} | {max(t):.3f} | {med / floor:.2f}x | "
              f"{med / serve:.2f}x |")
    hot = warm(max(3, args.rounds // 2))
    print(f"\nright after start: slowest of 4 concurrent one-row predictions, s "
          f"(median of {max(3, args.rounds // 2)} starts; fastest-slowest)")
    print("| command | median | spread |")
    print("| --- | ---: | ---: |")
    for name, t in hot.items():
        print(f"| {name} | {statistics.median(t):.3f} | {min(t):.3f}-{max(t):.3f} |")
    rates = throughput(args.seconds)
    print(f"\nwrk, {args.seconds} s a run, one row with its explanation, keep-alive")
    print("| command | connections | req/s | p50 ms | p99 ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, by_c in rates.items():
        for c, r in by_c.items():
            print(f"| {name} | {c} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                  f"{r['socket_errors'] + r['non_2xx']} |")


if __name__ == "__main__":
    main()
