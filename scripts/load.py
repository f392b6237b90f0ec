"""Load the local runtime with wrk over 127.0.0.1 and print a table: errors, latency, memory.

Starts scripts/serve.py on a free port, warms it, then runs one bounded `wrk` per
concurrency (keep-alive, POST /api/predict with one row). Reports req/s, p50/p99, socket
errors (connect, read, write, timeout), non-2xx answers, the handler's own time (from
Server-Timing) and the runtime's resident memory after warm-up and after the runs.

    python scripts/load.py [--duration 20] [--connections 1 8 64 256] [--explain false]

Needs Debian's wrk (bash scripts/setup.sh --dev installs it). Exit status 1 if any run
had an error or a non-2xx answer.
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[%s]]
"""


def rss_mb(pid: int) -> float:
    """Return a process's resident memory in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict:
    """Given wrk --latency output, return req/s, p50/p99 (ms), socket errors and non-2xx."""
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        # anchored: "95.50%" ends the Stdev column of wrk's thread stats, too
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)\s*$", out, re.M).group(1)),
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)\s*$", out, re.M).group(1)),
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out))
        else 0,
    }


def handler_ms(host: str, port: int, body: bytes, path: str, n: int = 50) -> float:
    """Return the median of the function's own time (Server-Timing total) over n warm calls."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    times = []
    for _ in range(n):
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        timing = resp.getheader("Server-Timing")
        times.append(float(re.search(r"total;dur=([\d.]+)", timing).group(1)))
    conn.close()
    return statistics.median(times)


def run(duration: int, connections: list[int], explain: str) -> tuple[list[dict], dict]:
    """Start the runtime, load it once per concurrency, stop it; return rows and memory."""
    if not shutil.which("wrk"):
        sys.exit("load.py needs wrk: bash scripts/setup.sh --dev (or apt-get install wrk)")
    manifest = json.loads((ROOT / "model" / "manifest.json").read_text())
    body = json.dumps({"features": manifest["examples"][0]["features"]})
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "serve.py"), "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().split()[-1].rstrip("/")
        host, port = url.removeprefix("http://").split(":")
        path = f"/api/predict?explain={explain}"
        own = handler_ms(host, int(port), body.encode(), path)  # also the warm-up
        memory = {"warm_mb": rss_mb(proc.pid), "handler_ms": own}
        rows = []
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(LUA % body)
            script.flush()
            for c in connections:
                out = subprocess.run(["wrk", f"-t{min(c, 2)}", f"-c{c}", f"-d{duration}s",
                                      "--timeout", "10s", "--latency", "-s", script.name,
                                      url + path], capture_output=True, text=True, check=True)
                rows.append({"connections": c, **parse_wrk(out.stdout)})
        memory["after_mb"] = rss_mb(proc.pid)
        return rows, memory
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--explain", choices=["true", "false"], default="true")
    args = parser.parse_args(argv)
    rows, memory = run(args.duration, args.connections, args.explain)
    print(f"handler's own time (Server-Timing total, median of 50 warm calls): "
          f"{memory['handler_ms']:.2f} ms")
    print("| connections | requests | req/s | p50 ms | p99 ms | socket errors | non-2xx |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['connections']} | {r['requests']} | {r['rps']:.0f} | {r['p50']:.2f} | "
              f"{r['p99']:.2f} | {r['socket_errors']} | {r['non_2xx']} |")
    growth = (memory["after_mb"] / memory["warm_mb"] - 1) * 100
    print(f"resident memory: {memory['warm_mb']:.0f} MB after warm-up, {memory['after_mb']:.0f} MB "
          f"after the runs ({growth:+.1f}%)")
    return 1 if any(r["socket_errors"] or r["non_2xx"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
