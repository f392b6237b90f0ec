"""Benchmark the function: cold vs warm, batch size, explanations, memory, HTTP under load.

Every figure is a ratio against a baseline measured in the same run, so runs on different
machines compare. Bounded: a few seconds of work, loopback only.

    python scripts/bench.py [--requests 300] [--clients 4]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "netlify" / "functions"))
COLD_CHILD = """
import json, resource, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import predict
imported = time.perf_counter()
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
predict.handler(json.loads(sys.argv[2]))
first = time.perf_counter()
warm = []
for _ in range(50):
    t = time.perf_counter(); predict.handler(json.loads(sys.argv[2])); warm.append(time.perf_counter() - t)
print(json.dumps({"import": imported - start, "first": first - imported, "warm": sorted(warm)[25],
                  "rss_import_kb": rss_import,
                  "rss_loaded_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def predict_event(rows: list[dict], *, explain: bool = True) -> dict:
    return {"httpMethod": "POST", "path": "/api/predict", "headers": {"content-type": "application/json"},
            "queryStringParameters": None if explain else {"explain": "false"},
            "body": json.dumps({"instances": rows})}


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cold_vs_warm(row: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", COLD_CHILD, str(ROOT / "netlify" / "functions"),
                          json.dumps(predict_event([row]))], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def http_load(url: str, body: bytes, requests: int, clients: int) -> dict:
    latencies, errors, lock = [], [], threading.Lock()

    def worker(n):
        for _ in range(n):
            req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    r.read()
            except OSError as exc:
                errors.append(type(exc).__name__)
            with lock:
                latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker, args=(requests // clients,)) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    return {"requests": len(latencies), "errors": len(errors), "per_s": len(latencies) / wall,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    manifest = json.loads((ROOT / "model" / "manifest.json").read_text())
    row = manifest["examples"][0]["features"]

    cold = cold_vs_warm(row)
    print(f"cold start: import {cold['import'] * 1000:.0f} ms, first prediction (loads sklearn + "
          f"pickle) {cold['first'] * 1000:.0f} ms, warm {cold['warm'] * 1000:.2f} ms "
          f"-> cold/warm = {cold['first'] / cold['warm']:.0f}x")
    print(f"memory (max RSS): after import {cold['rss_import_kb'] / 1024:.0f} MB, after the model "
          f"loaded {cold['rss_loaded_kb'] / 1024:.0f} MB -> {cold['rss_loaded_kb'] / cold['rss_import_kb']:.1f}x")

    from predict import handler
    handler(predict_event([row]))  # warm up in this process
    one = median_seconds(lambda: handler(predict_event([row])), 200)
    batch = [row] * 1000
    many = median_seconds(lambda: handler(predict_event(batch)), 10)
    quiet = median_seconds(lambda: handler(predict_event(batch, explain=False)), 10)
    print(f"per row: 1-row request {one * 1e6:.0f} us, in a 1000-row request {many * 1e3:.1f} us "
          f"-> batching is {one / (many / 1000):.0f}x cheaper per row")
    print(f"explanations: 1000 rows with {many * 1000:.0f} ms, without {quiet * 1000:.0f} ms "
          f"-> explain costs {many / quiet:.1f}x")

    import serve
    server = serve.make_server("127.0.0.1", 0, ROOT / "netlify.toml")
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{server.effective_port}/api/predict"
    body = json.dumps({"features": row}).encode()
    http_load(url, body, 20, 1)  # warm
    single = http_load(url, body, args.requests // 2, 1)
    loaded = http_load(url, body, args.requests, args.clients)
    server.close()
    print(f"HTTP via the local runtime: 1 client {single['per_s']:.0f} req/s (p50 "
          f"{single['p50_ms']:.1f} ms); {args.clients} clients {loaded['per_s']:.0f} req/s (p50 "
          f"{loaded['p50_ms']:.1f} ms, p95 {loaded['p95_ms']:.1f} ms, errors {loaded['errors']}) "
          f"-> {loaded['per_s'] / single['per_s']:.2f}x")
    print(f"max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
