"""scripts/bench.py --quick still runs and prints every figure (no thresholds: timings belong
to the benchmark, not the tests)."""
import importlib.util
import shutil
import subprocess
import sys

import pytest

from support import ROOT

FIGURES = ["cold start, fresh process to first answer, median",
           "cold start, fresh process to first answer, fastest",
           "resident memory after 50 warm answers",
           "in-process, 1 row, with explanation", "in-process, 1 row, no explanation",
           "in-process, 1000 rows, with explanation", "in-process, 1000 rows, no explanation",
           "in-process through WSGI, 1000 rows, no explanation",
           "in-process, 1000 rows as lists, no explanation (floor: as objects)",
           "in-process through WSGI, 1000 rows as lists, no explanation",
           "1,000 rows over HTTP, no explanation", "1,000 rows over HTTP, with explanation",
           "HTTP c=1, req/s", "HTTP c=1, p50 ms", "HTTP c=8, req/s"]


@pytest.mark.skipif(not (shutil.which("wrk") and importlib.util.find_spec("flask")
                         and importlib.util.find_spec("gunicorn")),
                    reason="needs requirements-bench.txt and Debian's wrk")
def test_the_quick_benchmark_prints_every_figure_without_errors():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    for figure in FIGURES:
        assert f"| {figure}" in out.stdout
    errors = [line for line in out.stdout.splitlines() if "errors" in line]
    assert errors and all("| 0.00 |" in line for line in errors)
