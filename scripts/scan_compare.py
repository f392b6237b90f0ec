"""Compare what pickle scanners catch on the crafted corpus (tests/crafted.py) and on benign models.

Runs picklescan, modelscan and fickling (installed in a virtualenv of their own, never the
project's: --scanners), skops' get_untrusted_types on a skops dump of each corpus entry that
is a model object (--skops: a folder holding the skops package), and this function's own
loader (the restricted unpickler and its audit), each in a child process with a timeout.
Prints a Markdown table: one row per pickle, one column per checker.

    python3 -m venv /tmp/scan && /tmp/scan/bin/pip install picklescan modelscan fickling typing_extensions
    pip install --no-deps --target /tmp/skops-lib skops
    .venv/bin/python scripts/scan_compare.py --scanners /tmp/scan/bin --skops /tmp/skops-lib
"""
from __future__ import annotations

import argparse
import os
import pickle
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "netlify" / "functions")]
TIMEOUT = 120
# Entries that are model objects plain pickle can load without harm (the harm comes at
# predict): skops can dump those; the others are opcodes no object stands for.
SKOPS_KINDS = {"dispatch", "tree", "state"}

OURS = """
import sys
from predict.unpickle import restricted_loads
try:
    restricted_loads(open(sys.argv[1], 'rb').read())
except Exception as exc:
    print('refused:', str(exc)[:60]); sys.exit(1)
print('loaded')
"""
SKOPS = """
import pickle, sys, warnings
warnings.simplefilter('ignore')
import skops.io as sio
obj = pickle.load(open(sys.argv[1], 'rb'))
sio.dump(obj, sys.argv[2])
print(sio.get_untrusted_types(file=sys.argv[2]))
"""


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess | None:
    try:
        with tempfile.TemporaryDirectory() as cwd:  # fickling writes its results there
            return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                                  cwd=cwd, **kwargs)
    except subprocess.TimeoutExpired:
        return None


def picklescan(bin_dir: Path, path: Path) -> str:
    done = _run([str(bin_dir / "picklescan"), "--path", str(path)])
    if done is None:
        return "timeout"
    dangerous = re.search(r"Dangerous globals: (\d+)", done.stdout)
    suspicious = re.search(r"Suspicious globals: (\d+)", done.stdout)
    if not dangerous:
        return "error"
    if int(dangerous.group(1)):
        return "**dangerous**"
    return "suspicious only" if int(suspicious.group(1)) else "clean"


def modelscan(bin_dir: Path, path: Path) -> str:
    done = _run([str(bin_dir / "modelscan"), "-p", str(path)])
    if done is None:
        return "timeout"
    if "No issues found" in done.stdout:
        return "clean"
    if re.search(r"(CRITICAL|HIGH|MEDIUM|LOW)", done.stdout):
        return "**flagged**"
    return "error"


def fickling(bin_dir: Path, path: Path) -> str:
    done = _run([str(bin_dir / "fickling"), "--check-safety", str(path)])
    if done is None:
        return "timeout"
    if "Traceback" in done.stderr:
        return "error"
    return "**unsafe**" if done.returncode else "clean"


def skops(lib: Path | None, path: Path, kind: str) -> str:
    if lib is None or kind not in SKOPS_KINDS | {"benign"}:
        return "n/a"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(lib)}
        done = _run([sys.executable, "-c", SKOPS, str(path), f"{tmp}/m.skops"], env=env)
    if done is None or done.returncode:
        return "timeout" if done is None else "error"
    listed = done.stdout.strip()
    return "clean" if listed == "[]" else f"**untrusted: {listed.strip('[]')[:60]}**"


def ours(path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "netlify" / "functions")}
    done = _run([sys.executable, "-c", OURS, str(path)], env=env)
    if done is None:
        return "timeout"
    if done.returncode not in (0, 1):
        return f"crashed ({done.returncode})"
    return "**refused**" if done.returncode else "loaded"


def benign() -> dict[str, bytes]:
    """Models people fit, which no checker should flag."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier, StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    import crafted
    X, y = crafted.data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "benign: committed tree": (ROOT / "model" / "dect_model.pkl").read_bytes(),
            "benign: log1p + logistic": pickle.dumps(make_pipeline(
                FunctionTransformer(np.log1p), LogisticRegression(max_iter=200)).fit(X, y)),
            "benign: stacking": pickle.dumps(StackingClassifier(
                [("lr", LogisticRegression(max_iter=200)), ("t", DecisionTreeClassifier())])
                .fit(X, y)),
            "benign: hist boosting": pickle.dumps(
                HistGradientBoostingClassifier(max_iter=5).fit(X, y)),
        }
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scanners", type=Path, required=True,
                        help="bin folder of a virtualenv with picklescan, modelscan, fickling")
    parser.add_argument("--skops", type=Path, help="a folder holding the skops package")
    args = parser.parse_args(argv)
    import crafted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = [(name, c.kind, c.data) for name, c in crafted.corpus().items()]
    rows += [(name, "benign", data) for name, data in benign().items()]
    print("| pickle | class | picklescan | modelscan | fickling | skops get_untrusted_types "
          "| this function |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, data in rows:
            path = Path(tmp) / (re.sub(r"\W+", "-", name) + ".pkl")
            path.write_bytes(data)
            cells = [picklescan(args.scanners, path), modelscan(args.scanners, path),
                     fickling(args.scanners, path),
                     skops(args.skops, path, kind), ours(path)]
            print(f"| {name} | {kind} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
