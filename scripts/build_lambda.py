"""Build the AWS Lambda bundle of the Python function: dist/lambda/ and dist/predict-lambda.zip.

Netlify Functions have no Python runtime, so production runs the same handler on AWS
Lambda (runtime python3.12 on Amazon Linux 2023, glibc 2.34, x86_64; handler
`predict.handler`). The bundle holds the function package, the served model directory
beside it (`served_model_dir()`: MODEL_DIR, else netlify.toml's [build.environment]), the
pinned requirements as wheels for that platform (and pandas when the model's manifest
requires it), and bytecode compiled by Python 3.12:
Lambda's /var/task is read-only, so a bundle without it recompiles every module on every
cold start. The bytecode is "unchecked-hash": zip keeps file times to 2 s only, so
timestamp-checked bytecode would be judged stale and recompiled anyway. A bundle that would
pass Lambda's 250 MB with bytecode beside its sources carries the bytecode in their place.
The zip is the same bytes from any checkout path: the bytecode names each source by its
path on Lambda (/var/task/...), the entries are sorted with fixed times and modes, and pip's
console scripts (whose first line names the building Python) are left out.

    python scripts/build_lambda.py [--model-dir DIR] [--out dist] [--skip-deps] [--print-model-dir]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_LIMIT = 250 * 1024 * 1024
LAMBDA_PYTHON = "3.12"
LAMBDA_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux2014_x86_64")
PRUNE = ("__pycache__", "tests", "*.pyi")
# Optional runtime packages, put in the bundle only when the served model's manifest asks.
OPTIONAL_REQUIREMENTS = {"pandas": ROOT / "requirements-pandas.txt"}
ZIP_TIME = (2024, 1, 1, 0, 0, 0)  # fixed, so the same bundle zips to the same bytes
TASK_ROOT = "/var/task"  # where Lambda unzips the bundle: the path the bytecode names


def served_model_dir() -> Path:
    """Return the model directory that is served: MODEL_DIR, else netlify.toml's, else model/."""
    setting = os.environ.get("MODEL_DIR")
    if not setting:
        config = tomllib.loads((ROOT / "netlify.toml").read_text(encoding="utf-8"))
        setting = config.get("build", {}).get("environment", {}).get("MODEL_DIR", "model")
    return (ROOT / setting).resolve()


def lambda_python() -> str:
    """Return a Python 3.12 interpreter (Lambda's) to compile the bytecode; SystemExit if none."""
    candidates = [os.environ.get("LAMBDA_PYTHON_BIN", ""), shutil.which("python3.12") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{LAMBDA_PYTHON}.*/bin/python3.12"))
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 12)":
            return candidate
    raise SystemExit("no Python 3.12 found to compile the bundle's bytecode for Lambda's "
                     "python3.12: install it (pyenv install 3.12, or actions/setup-python) "
                     "or set LAMBDA_PYTHON_BIN")


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def requirement_files(model_dir: Path) -> list[Path]:
    """Return the requirements files the served model needs: the base one, and any optional
    one its manifest's `requires` names (e.g. ["pandas==3.1.1"] for a DataFrame model)."""
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    names = [str(r).split("==")[0].strip().lower() for r in manifest.get("requires") or []]
    unknown = [n for n in names if n not in OPTIONAL_REQUIREMENTS]
    if unknown:
        raise SystemExit(f"the manifest requires packages the bundle cannot add: {unknown}")
    return [ROOT / "requirements.txt", *(OPTIONAL_REQUIREMENTS[n] for n in names)]


def install_wheels(bundle: Path, requirements: list[Path]) -> None:
    """Install the pinned wheels for Lambda's platform and Python into the bundle, then prune."""
    platforms = [arg for p in LAMBDA_PLATFORMS for arg in ("--platform", p)]
    reqs = [arg for r in requirements for arg in ("-r", str(r))]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-compile", "--target", str(bundle), *platforms, "--implementation", "cp",
                    "--python-version", LAMBDA_PYTHON, "--only-binary=:all:", *reqs], check=True)
    for pattern in PRUNE:
        for path in list(bundle.rglob(pattern)):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    # console scripts: never run on Lambda, and their #! line is this machine's Python
    shutil.rmtree(bundle / "bin", ignore_errors=True)
    for record in bundle.glob("*.dist-info/RECORD"):
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        record.write_text("".join(x for x in lines if not re.match(r"(\.\./)*bin/", x)),
                          encoding="utf-8")


def compile_bytecode(bundle: Path, python: str, *, sourceless: bool = False) -> None:
    """Compile every module of the bundle with Lambda's Python, unchecked-hash bytecode; when
    sourceless, the bytecode takes each source's place (smaller: for bundles near the limit)."""
    for cache in list(bundle.rglob("__pycache__")):
        shutil.rmtree(cache)
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                    "unchecked-hash", "-s", str(bundle), "-p", TASK_ROOT,
                    *(["-b"] if sourceless else []), str(bundle)],
                   check=True, stdout=subprocess.DEVNULL)
    if sourceless:
        for source in list(bundle.rglob("*.py")):
            if source.with_suffix(".pyc").is_file():
                source.unlink()


def write_zip(bundle: Path, archive: Path) -> None:
    """Zip the bundle with fixed times, sorted names and modes 644 (755 if executable)."""
    files = sorted((p.relative_to(bundle).as_posix(), p) for p in bundle.rglob("*") if p.is_file())
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for name, path in files:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.external_attr = (mode | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, path.read_bytes())


def build(out: Path, model_dir: Path, *, deps: bool, bytecode: bool = True) -> Path:
    """Write the bundle into out/lambda and out/predict-lambda.zip; return the zip's path."""
    python = lambda_python() if bytecode else None
    bundle = out / "lambda"
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.copytree(ROOT / "netlify" / "functions" / "predict", bundle / "predict",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(model_dir, bundle / "model", ignore=shutil.ignore_patterns("*.csv"))
    if deps:
        install_wheels(bundle, requirement_files(model_dir))
    if python:
        compile_bytecode(bundle, python)
    size = folder_size(bundle)
    if python and size > LAMBDA_LIMIT:  # e.g. a big model's bundle, with pandas
        compile_bytecode(bundle, python, sourceless=True)
        size = folder_size(bundle)
    if size > LAMBDA_LIMIT:
        raise SystemExit(f"the bundle is {size / 2**20:.0f} MB unzipped; Lambda allows 250 MB")
    archive = out / "predict-lambda.zip"
    write_zip(bundle, archive)
    print(f"{archive}: {archive.stat().st_size / 2**20:.1f} MB zipped, "
          f"{size / 2**20:.1f} MB unzipped (limit 250 MB), model {model_dir.name}/")
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, help="default: the served model "
                        "(MODEL_DIR, else [build.environment] MODEL_DIR in netlify.toml)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--skip-deps", action="store_true",
                        help="leave out the pip packages (to check the layout quickly)")
    parser.add_argument("--print-model-dir", action="store_true",
                        help="print the served model directory and exit")
    args = parser.parse_args()
    model_dir = args.model_dir or served_model_dir()
    if args.print_model_dir:
        print(model_dir)
        return
    if not (model_dir / "manifest.json").is_file():
        raise SystemExit(f"{model_dir} has no manifest.json: package a model there first")
    build(args.out, model_dir, deps=not args.skip_deps)


if __name__ == "__main__":
    main()
