"""Benchmark the Lambda bundle's cold start under Python 3.12 against its own floor.

A cold start on Lambda is a fresh Python process: this starts fresh processes of Lambda's
Python with nothing but the bundle on sys.path and times each from spawn to the first
answer, interleaved so noise hits all alike:

- floor: a process that only unpickles the bundle's model and calls predict_proba;
- bundle: `import predict` then one prediction through `predict.handler`, as Lambda runs it;
- model at init: the same, but the model loaded before the first event, as loading it in
  Lambda's init phase would (on an on-demand cold start both phases precede the answer);
- no bytecode: the bundle with its __pycache__ removed (what it was before).

Wall and CPU seconds per run (min and median); Lambda gives a function a share of one
vCPU in proportion to its memory (1,769 MB = one vCPU), so CPU seconds / share estimates
the wait there.

    python scripts/bench_lambda.py [--runs 10] [--bundle dist/lambda]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_lambda  # noqa: E402

ROOT = build_lambda.ROOT
FLOOR = """
import json, pickle, sys, time
sys.path[:0] = [sys.argv[1]]
import numpy as np
manifest = json.load(open(sys.argv[1] + "/model/manifest.json"))
row = [[manifest["examples"][0]["features"][f["name"]] for f in manifest["features"]]]
with open(sys.argv[1] + "/model/" + manifest["artifact"]["file"], "rb") as f:
    model = pickle.load(f)
model.predict_proba(np.asarray(row, dtype=float))
"""
HANDLER = """
import json, sys, time
sys.path[:0] = [sys.argv[1]]
import predict
if sys.argv[2:] == ["init"]:  # what Lambda's init phase would do: load before the first event
    from predict.app import default_app
    default_app().store.get()
event = {"version": "2.0", "rawPath": "/api/predict", "rawQueryString": "",
         "headers": {"content-type": "application/json"}, "isBase64Encoded": False,
         "requestContext": {"http": {"method": "POST", "path": "/api/predict"}},
         "body": json.dumps({"features": json.load(open(sys.argv[1] + "/model/manifest.json"))["examples"][0]["features"]})}
answer = predict.handler(event)
if answer["statusCode"] != 200:
    raise SystemExit(answer["body"])
"""
# Appended to each child: when it answered, on the parent's clock, and its CPU seconds so far.
ANSWERED = "\nprint(time.perf_counter(), time.process_time())\n"
VARIANTS = {"floor": (FLOOR, ()), "bundle": (HANDLER, ()), "model at init": (HANDLER, ("init",)),
            "no bytecode": (HANDLER, ())}


def run_once(python: str, code: str, bundle: Path, args: tuple = ()) -> tuple[float, float]:
    """Run one fresh process; return (wall seconds, CPU seconds) from spawn to its first
    answer (not to its exit: an interpreter's teardown is no part of a cold start)."""
    start = time.perf_counter()  # CLOCK_MONOTONIC: the child's clock too
    out = subprocess.run([python, "-I", "-S", "-B", "-c", code + ANSWERED, str(bundle), *args],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    answered, cpu = map(float, out.stdout.split()[-2:])
    return answered - start, cpu


def measure(bundle: Path, python: str, runs: int) -> dict[str, dict[str, float]]:
    """Return, per variant, min and median wall and CPU seconds over `runs` fresh processes."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "lambda"
        shutil.copytree(bundle, plain, ignore=shutil.ignore_patterns("__pycache__"))
        where = {name: plain if name == "no bytecode" else bundle for name in VARIANTS}
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
        names = list(VARIANTS)
        for i in range(runs):  # each round starts with the next variant: the first process
            for name in names[i % len(names):] + names[:i % len(names)]:  # of a round is slower
                code, args = VARIANTS[name]
                samples[name].append(run_once(python, code, where[name], args))
    return {name: {"wall_min": min(w for w, _ in s), "wall_median": statistics.median(w for w, _ in s),
                   "cpu_min": min(c for _, c in s), "cpu_median": statistics.median(c for _, c in s)}
            for name, s in samples.items()}


def report(figures: dict[str, dict[str, float]], memory_mb: int = 1769) -> None:
    """Print the table with ratios to the floor and the Lambda estimate at memory_mb."""
    share = min(memory_mb / 1769, 1.0)
    floor = figures["floor"]["cpu_min"]
    print(f"cold start under Python 3.12, fresh process to first answer ({memory_mb} MB on "
          f"Lambda = {share:.2f} vCPU)")
    print(f"{'':15} {'wall min':>9} {'wall med':>9} {'CPU min':>8} {'CPU med':>8} "
          f"{'x floor':>8} {'Lambda est.':>11}")
    for name, f in figures.items():
        print(f"{name:15} {f['wall_min']:8.2f}s {f['wall_median']:8.2f}s {f['cpu_min']:7.2f}s "
              f"{f['cpu_median']:7.2f}s {f['cpu_min'] / floor:7.2f}x {f['cpu_min'] / share:10.2f}s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--bundle", type=Path, help="an unzipped bundle (default: build one)")
    parser.add_argument("--memory", type=int, default=1769, help="Lambda memory size in MB")
    args = parser.parse_args(argv)
    python = build_lambda.lambda_python()
    if args.bundle is None:
        out = Path(tempfile.mkdtemp())
        build_lambda.build(out, build_lambda.served_model_dir(), deps=True)
        args.bundle = out / "lambda"
    report(measure(args.bundle, python, args.runs), args.memory)


if __name__ == "__main__":
    main()
