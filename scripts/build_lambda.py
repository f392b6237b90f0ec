"""Build the AWS Lambda bundle of the Python function: dist/lambda/ and dist/predict-lambda.zip.

Netlify Functions have no Python runtime, so production runs the same handler on AWS
Lambda (runtime python3.12 on Amazon Linux 2023, glibc 2.34, x86_64; handler
`predict.handler`). The bundle holds the function package, the model directory beside it,
and the pinned requirements as wheels for that platform, and must stay under Lambda's
250 MB unzipped limit.

    python scripts/build_lambda.py [--model-dir model] [--skip-deps]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_LIMIT = 250 * 1024 * 1024
LAMBDA_PYTHON = "3.12"
LAMBDA_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux2014_x86_64")
PRUNE = ("__pycache__", "tests", "*.pyi")


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build(out: Path, model_dir: Path, *, deps: bool) -> Path:
    """Write the bundle into out/lambda and out/predict-lambda.zip; return the zip's path."""
    bundle = out / "lambda"
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.copytree(ROOT / "netlify" / "functions" / "predict", bundle / "predict",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(model_dir, bundle / "model", ignore=shutil.ignore_patterns("*.csv"))
    if deps:
        platforms = [arg for p in LAMBDA_PLATFORMS for arg in ("--platform", p)]
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(bundle),
                        *platforms, "--implementation", "cp", "--python-version", LAMBDA_PYTHON,
                        "--only-binary=:all:", "-r", str(ROOT / "requirements.txt")], check=True)
        for pattern in PRUNE:
            for path in list(bundle.rglob(pattern)):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    size = folder_size(bundle)
    if size > LAMBDA_LIMIT:
        raise SystemExit(f"the bundle is {size / 2**20:.0f} MB unzipped; Lambda allows 250 MB")
    archive = out / "predict-lambda.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(bundle.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(bundle))
    print(f"{archive}: {archive.stat().st_size / 2**20:.1f} MB zipped, "
          f"{size / 2**20:.1f} MB unzipped (limit 250 MB)")
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "model")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--skip-deps", action="store_true",
                        help="leave out the pip packages (to check the layout quickly)")
    args = parser.parse_args()
    build(args.out, args.model_dir, deps=not args.skip_deps)


if __name__ == "__main__":
    main()
