"""Benchmark the Lambda bundle's cold start under Python 3.12 against its own floor.

A cold start on Lambda is a fresh Python process: this starts fresh processes of Lambda's
Python with nothing but the bundle on sys.path and times each from spawn to the first
answer, interleaved so noise hits all alike:

- floor: a process that only unpickles the bundle's model and calls predict_proba, with
  the environment Lambda gives any function (OpenBLAS starts a thread per core);
- floor, 1 BLAS thread: the same with OPENBLAS_NUM_THREADS=1;
- bundle: `import predict` then one prediction through `predict.handler`, as Lambda runs it
  with deploy/template.yaml's environment (OPENBLAS_NUM_THREADS=1);
- bundle, scipy.stats eager: the same, scipy.stats imported first (no deferral, see
  predict/deferred.py);
- bundle, all BLAS threads: the bundle without OPENBLAS_NUM_THREADS;
- model at init: the bundle, the model loaded before the first event, as loading it in
  Lambda's init phase would (on an on-demand cold start both phases precede the answer);
- no bytecode: the bundle with its __pycache__ removed (what it was before).

Every handler variant's answer must be the same bytes (checked: the run stops otherwise).

Wall and CPU seconds per run (min and median); Lambda gives a function a share of one
vCPU in proportion to its memory (1,769 MB = one vCPU), so CPU seconds / share estimates
the wait there.

    python scripts/bench_lambda.py [--runs 10] [--bundle dist/lambda]
"""
from __future__ import annotations

import argparse
import os
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
import hashlib, json, sys, time
sys.path[:0] = [sys.argv[1]]
if "eager" in sys.argv[2:]:
    import scipy.stats
import predict
if "init" in sys.argv[2:]:  # what Lambda's init phase would do: load before the first event
    from predict.app import default_app
    default_app().store.get()
event = {"version": "2.0", "rawPath": "/api/predict", "rawQueryString": "",
         "headers": {"content-type": "application/json"}, "isBase64Encoded": False,
         "requestContext": {"http": {"method": "POST", "path": "/api/predict"}},
         "body": json.dumps({"features": json.load(open(sys.argv[1] + "/model/manifest.json"))["examples"][0]["features"]})}
answer = predict.handler(event)
if answer["statusCode"] != 200:
    raise SystemExit(answer["body"])
print(hashlib.sha256(answer["body"].encode()).hexdigest())
"""
# Appended to each child: when it answered, on the parent's clock, and its CPU seconds so far.
ANSWERED = "\nprint(time.perf_counter(), time.process_time())\n"
ONE_BLAS = {"OPENBLAS_NUM_THREADS": "1"}  # deploy/template.yaml's Environment
# name: (code, arguments, environment added)
VARIANTS = {"floor": (FLOOR, (), {}), "floor, 1 BLAS thread": (FLOOR, (), ONE_BLAS),
            "bundle": (HANDLER, (), ONE_BLAS),
            "bundle, scipy.stats eager": (HANDLER, ("eager",), ONE_BLAS),
            "bundle, all BLAS threads": (HANDLER, (), {}),
            "model at init": (HANDLER, ("init",), ONE_BLAS), "no bytecode": (HANDLER, (), ONE_BLAS)}
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run_once(python: str, code: str, bundle: Path, args: tuple = (),
             env: dict | None = None) -> tuple[float, float, str]:
    """Run one fresh process; return (wall seconds, CPU seconds) from spawn to its first
    answer (not to its exit: an interpreter's teardown is no part of a cold start), and what
    it printed before (a handler's answer's SHA-256)."""
    environ = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    start = time.perf_counter()  # CLOCK_MONOTONIC: the child's clock too
    out = subprocess.run([python, "-I", "-S", "-B", "-c", code + ANSWERED, str(bundle), *args],
                         capture_output=True, text=True, env={**environ, **(env or {})})
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    *printed, answered, cpu = out.stdout.split()
    return float(answered) - start, float(cpu), " ".join(printed)


def measure(bundle: Path, python: str, runs: int) -> dict[str, dict[str, float]]:
    """Return, per variant, min and median wall and CPU seconds over `runs` fresh processes."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "lambda"
        shutil.copytree(bundle, plain, ignore=shutil.ignore_patterns("__pycache__"))
        where = {name: plain if name == "no bytecode" else bundle for name in VARIANTS}
        samples: dict[str, list[tuple[float, float, str]]] = {name: [] for name in VARIANTS}
        names = list(VARIANTS)
        for i in range(runs):  # each round starts with the next variant: the first process
            for name in names[i % len(names):] + names[:i % len(names)]:  # of a round is slower
                code, args, env = VARIANTS[name]
                samples[name].append(run_once(python, code, where[name], args, env))
    answers = {p for name, s in samples.items() if VARIANTS[name][0] is HANDLER for _, _, p in s}
    if len(answers) != 1:
        raise SystemExit(f"the handler variants answered differently: {sorted(answers)}")
    return {name: {"wall_min": min(w for w, _, _ in s),
                   "wall_median": statistics.median(w for w, _, _ in s),
                   "cpu_min": min(c for _, c, _ in s),
                   "cpu_median": statistics.median(c for _, c, _ in s)}
            for name, s in samples.items()}


def report(figures: dict[str, dict[str, float]], memory_mb: int = 1769) -> None:
    """Print the table with ratios to the floor and the Lambda estimate at memory_mb."""
    share = min(memory_mb / 1769, 1.0)
    floor = figures["floor"]["cpu_min"]
    print(f"cold start under Python 3.12, fresh process to first answer ({memory_mb} MB on "
          f"Lambda = {share:.2f} vCPU)")
    print(f"{'':26} {'wall min':>9} {'wall med':>9} {'CPU min':>8} {'CPU med':>8} "
          f"{'x floor':>8} {'wall med x floor':>16} {'Lambda est.':>11}")
    for name, f in figures.items():
        print(f"{name:26} {f['wall_min']:8.2f}s {f['wall_median']:8.2f}s {f['cpu_min']:7.2f}s "
              f"{f['cpu_median']:7.2f}s {f['cpu_min'] / floor:7.2f}x "
              f"{f['wall_median'] / figures['floor']['wall_median']:15.2f}x "
              f"{f['cpu_min'] / share:10.2f}s")


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
