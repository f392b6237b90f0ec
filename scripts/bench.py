"""Benchmark the function side by side with its floor and a plain Flask baseline, in one run.

The floor is the least any Python code can do for the same answer: json.loads, one
predict_proba on the array, json.dumps. The baseline is scripts/baseline_flask.py, a plain
Flask app serving the same pickle, on gunicorn with the same workers as the function's WSGI
entry (predict.wsgi:app). Calls are interleaved (every case once a round; the 1,000-row
requests to the servers in turn; cold starts in turn) so that the machine's noise hits all
alike; every figure is a median and every ratio is against a figure from the same run.

    python scripts/bench.py [--quick]

Needs requirements-bench.txt (Flask, gunicorn) and Debian's wrk. `--quick` only proves the
benchmark still runs (a second or so per figure); it checks no thresholds.
"""
from __future__ import annotations

import argparse
import compileall
import csv
import http.client
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "netlify" / "functions"), str(ROOT / "scripts")]
import load  # noqa: E402  (wrk's output parser and /proc memory reader)

WORKERS = 2  # gunicorn sync workers, for the function's WSGI entry and for Flask alike
MANIFEST = json.loads((ROOT / "model" / "manifest.json").read_text())
NAMES = [f["name"] for f in MANIFEST["features"]]
# The rows of model/sample.csv, in turn: a batch's rows differ and end in different leaves.
with open(ROOT / "model" / "sample.csv", newline="") as f:
    SAMPLE = [{n: float(r[n]) for n in NAMES} for r in csv.DictReader(f)]

# Fresh process -> first answer, then resident memory after 50 warm answers.
COLD_CHILD = """
import json, sys, time
start = time.perf_counter()
kind, root, body = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path[:0] = [root + "/netlify/functions", root + "/scripts"]
if kind == "function":
    import predict
    event = {"httpMethod": "POST", "path": "/api/predict", "body": body,
             "headers": {"content-type": "application/json"}}
    answer = lambda: predict.handler(event)
elif kind == "floor":
    import pickle
    import numpy as np
    manifest = json.load(open(root + "/model/manifest.json"))
    names = [f["name"] for f in manifest["features"]]
    model = pickle.load(open(root + "/model/" + manifest["artifact"]["file"], "rb"))
    def answer():
        rows = json.loads(body)["instances"]
        X = np.array([[r[n] for n in names] for r in rows], dtype=float)
        return json.dumps({"p": model.predict_proba(X).tolist()})
else:
    import baseline_flask
    client = baseline_flask.app.test_client()
    answer = lambda: client.post("/api/predict", data=body, content_type="application/json")
answer()
first = time.perf_counter() - start
for _ in range(50):
    answer()
rss = [l for l in open("/proc/self/status") if l.startswith("VmRSS:")][0].split()[1]
print(json.dumps({"first_s": first, "rss_mb": int(rss) / 1024}))
"""


def body_of(rows: int, *, lists: bool = False) -> str:
    """Return a JSON body of rows as objects, or as lists of values in the model's order."""
    picked = [SAMPLE[i % len(SAMPLE)] for i in range(rows)]
    return json.dumps({"instances": [[r[n] for n in NAMES] for r in picked] if lists
                       else picked})


def ms(fn) -> float:
    """Return how long one call of fn takes, in ms."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def cold(kind: str) -> dict:
    out = subprocess.run([sys.executable, "-c", COLD_CHILD, kind, str(ROOT), body_of(1)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def in_process(rounds: int) -> dict:
    """Return the median ms of the function and the floor, one row and 1,000: every case
    called once a round, in turn, so that a burst of the machine's noise hits all alike."""
    import pickle

    import baseline_flask
    import numpy as np

    from predict.app import build_app
    from predict.wsgi import make_app
    app = build_app()
    model = pickle.loads((ROOT / "model" / MANIFEST["artifact"]["file"]).read_bytes())

    def event(rows, explain, lists=False):
        return {"httpMethod": "POST", "path": "/api/predict", "body": body_of(rows, lists=lists),
                "headers": {"content-type": "application/json"},
                "queryStringParameters": None if explain else {"explain": "false"}}

    def floor(body):
        rows = json.loads(body)["instances"]
        X = np.array([[r[n] for n in NAMES] for r in rows], dtype=float)
        return json.dumps({"p": model.predict_proba(X).tolist()})

    groups = []  # (rounds, {case: call}), one row and 1,000
    for rows, n in ((1, rounds * 20), (1000, rounds)):
        label = f"{rows} row{'s' if rows > 1 else ''}"
        cases = {f"function, {label}{'' if explain else ', no explanation'}":
                 lambda ev=event(rows, explain): app.handle_event(ev)
                 for explain in (True, False)}
        cases[f"floor, {label}"] = lambda b=body_of(rows): floor(b)
        groups.append((n, cases))
    for explain in (True, False):  # MLflow's usual shape: each row a list in the model's order
        groups[1][1][f"function, 1000 rows as lists{'' if explain else ', no explanation'}"] = \
            lambda ev=event(1000, explain, lists=True): app.handle_event(ev)
    # The same 1,000-row request through each WSGI app, with no server or socket between.
    for shape, lists in (("", False), (" as lists", True)):
        body = body_of(1000, lists=lists).encode()
        for name, wsgi in (("function", make_app(app)), ("Flask", baseline_flask.app)):
            groups[1][1][f"{name} through WSGI, 1000 rows{shape}, no explanation"] = \
                lambda wsgi=wsgi, body=body: wsgi_post(wsgi, body)
    samples: dict[str, list[float]] = {}
    for n, cases in groups:
        for fn in cases.values():
            fn()  # warm
        for _ in range(n):
            for name, fn in cases.items():
                samples.setdefault(name, []).append(ms(fn))
    return {name: statistics.median(values) for name, values in samples.items()}


def wsgi_post(wsgi, body: bytes) -> bytes:
    """POST a JSON body to /api/predict?explain=false of a WSGI app; return the answer."""
    status = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/predict",
               "QUERY_STRING": "explain=false", "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr}
    chunks = wsgi(environ, lambda line, headers: status.append(line))
    data = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    if not status[0].startswith("200"):
        raise SystemExit(f"bench: {status[0]} from a WSGI app")
    return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(kind: str) -> tuple[subprocess.Popen, int]:
    """Start one HTTP server on a free port; return it once it answers."""
    port = free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}",
                "--chdir", str(ROOT), "--log-level", "warning"]
    command = {
        "function on gunicorn": [*gunicorn, "--pythonpath", "netlify/functions",
                                 "predict.wsgi:app"],
        "Flask on gunicorn": [*gunicorn, "--pythonpath", "scripts", "baseline_flask:app"],
        "local runtime (waitress)": [sys.executable, str(ROOT / "scripts" / "serve.py"),
                                     str(port)],
    }[kind]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            post(port, body_of(1))
            return proc, port
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"bench: {kind} did not start")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=20)


def post(port: int, body: str, *, explain: bool = False) -> bytes:
    """POST rows to /api/predict (Flask's baseline explains nothing either way)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", f"/api/predict?explain={str(explain).lower()}", body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise SystemExit(f"bench: HTTP {resp.status} from port {port}")
    return data


def group_rss_mb(proc: subprocess.Popen) -> float:
    """Return the resident memory of a server and its workers (its process group), in MB."""
    total = 0.0
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == proc.pid:  # field 5: the process group
                total += load.rss_mb(int(status.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return total


def http_figures(kinds: tuple[str, ...], seconds: int, repeat: int) -> dict[str, dict]:
    """Return per server its HTTP figures: 1,000-row requests interleaved across the servers,
    then wrk at 1 and 8 connections on each in turn, then its resident memory."""
    servers = {}
    try:
        for kind in kinds:
            servers[kind] = start_server(kind)
        big = body_of(1000)
        for _, port in servers.values():
            for _ in range(WORKERS * 5):  # every worker warm, for one row and for many
                post(port, body_of(1))
                post(port, big)
                post(port, big, explain=True)
        out: dict[str, dict] = {kind: {} for kind in kinds}
        for explain in (False, True):
            batch: dict[str, list[float]] = {kind: [] for kind in kinds}
            for _ in range(repeat):
                for kind, (_, port) in servers.items():
                    batch[kind].append(ms(lambda: post(port, big, explain=explain)))
            for kind in kinds:
                out[kind][f"1,000 rows over HTTP, {'with explanation (Flask: none)' if explain else 'no explanation'}, ms"] \
                    = statistics.median(batch[kind])
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(load.LUA % body_of(1))
            script.flush()
            for c in (1, 8):
                for kind, (_, port) in servers.items():
                    run = subprocess.run(["wrk", f"-t{min(c, 2)}", f"-c{c}", f"-d{seconds}s",
                                          "--timeout", "10s", "--latency", "-s", script.name,
                                          f"http://127.0.0.1:{port}/api/predict?explain=false"],
                                         capture_output=True, text=True, check=True)
                    figures = load.parse_wrk(run.stdout)
                    out[kind][f"HTTP c={c}, req/s"] = figures["rps"]
                    out[kind][f"HTTP c={c}, p50 ms"] = figures["p50"]
                    out[kind][f"HTTP c={c}, errors"] = (figures["socket_errors"]
                                                        + figures["non_2xx"])
        for kind, (proc, _) in servers.items():
            out[kind]["resident memory after warm-up, MB"] = group_rss_mb(proc)
        return out
    finally:
        for proc, _ in servers.values():
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="prove it runs; rough figures")
    parser.add_argument("--lambda-runs", type=int, default=0, help="also build the Lambda bundle "
                        "and time its cold start under Python 3.12 (scripts/bench_lambda.py)")
    args = parser.parse_args()
    rounds, repeat, seconds, colds = (3, 3, 1, 1) if args.quick else (40, 10, 3, 16)
    # Every cold start reads compiled bytecode, as the Lambda bundle ships it and as the
    # installed packages have it (a machine may set PYTHONDONTWRITEBYTECODE).
    compileall.compile_dir(ROOT / "netlify" / "functions", quiet=1)
    compileall.compile_file(ROOT / "scripts" / "baseline_flask.py", quiet=1)

    cold_runs: dict[str, list[dict]] = {"function": [], "floor": [], "flask": []}
    kinds = list(cold_runs)
    for i in range(colds):  # interleaved, each round starting with the next kind: the first
        for kind in kinds[i % 3:] + kinds[:i % 3]:  # process of a round runs slower here
            cold_runs[kind].append(cold(kind))
    first = {k: statistics.median(r["first_s"] for r in v) for k, v in cold_runs.items()}
    least = {k: min(r["first_s"] for r in v) for k, v in cold_runs.items()}
    rss = {k: statistics.median(r["rss_mb"] for r in v) for k, v in cold_runs.items()}

    warm = in_process(rounds)
    servers = http_figures(("function on gunicorn", "Flask on gunicorn",
                            "local runtime (waitress)"), seconds, repeat * 3)

    print(f"## bench.py{' --quick' if args.quick else ''}: medians; ratios against the floor "
          "or the Flask baseline of this run\n")
    print("| figure | function | floor | Flask | function / floor | function / Flask |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, figures in (("median", first), ("fastest", least)):
        print(f"| cold start, fresh process to first answer, {label} of {colds}, s | "
              f"{figures['function']:.2f} | {figures['floor']:.2f} | {figures['flask']:.2f} | "
              f"{figures['function'] / figures['floor']:.2f}x | "
              f"{figures['function'] / figures['flask']:.2f}x |")
    print(f"| resident memory after 50 warm answers, MB | {rss['function']:.0f} | "
          f"{rss['floor']:.0f} | {rss['flask']:.0f} | {rss['function'] / rss['floor']:.2f}x | "
          f"{rss['function'] / rss['flask']:.2f}x |")
    for rows, label in ((1, "1 row"), (1000, "1000 rows")):
        floor = warm[f"floor, {label}"]
        for suffix in ("", ", no explanation"):
            ms = warm[f"function, {label}{suffix}"]
            print(f"| in-process, {label}{suffix or ', with explanation'}, ms | {ms:.3f} | "
                  f"{floor:.3f} | | {ms / floor:.2f}x | |")
    floor = warm["floor, 1000 rows"]
    for suffix in ("", ", no explanation"):
        ms = warm[f"function, 1000 rows as lists{suffix}"]
        print(f"| in-process, 1000 rows as lists{suffix or ', with explanation'} (floor: as "
              f"objects), ms | {ms:.3f} | {floor:.3f} | | {ms / floor:.2f}x | |")
    for shape in ("", " as lists"):
        through = (warm[f"function through WSGI, 1000 rows{shape}, no explanation"],
                   warm[f"Flask through WSGI, 1000 rows{shape}, no explanation"])
        print(f"| in-process through WSGI, 1000 rows{shape}, no explanation, ms | "
              f"{through[0]:.3f} | | {through[1]:.3f} | | {through[0] / through[1]:.2f}x |")
    fn, fl = servers["function on gunicorn"], servers["Flask on gunicorn"]
    for key in fn:
        ratio = f"{fn[key] / fl[key]:.2f}x" if fl[key] else ""
        print(f"| {key} (gunicorn, {WORKERS} workers) | {fn[key]:.2f} | | {fl[key]:.2f} | | "
              f"{ratio} |")
    local = servers["local runtime (waitress)"]
    for key, value in local.items():
        print(f"| {key} (local runtime, waitress) | {value:.2f} | | | | |")
    if args.lambda_runs:
        import bench_lambda
        print()
        bench_lambda.main(["--runs", str(args.lambda_runs)])


if __name__ == "__main__":
    main()
