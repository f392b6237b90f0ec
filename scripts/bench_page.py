"""Where people wait on the page, measured in Chromium (Playwright) against the local runtime.

1. The first check after reading: per round, a fresh local runtime (the model not loaded);
   open the home page, read for 4 s, press "Check this sample" and time the click to the
   answer on screen, then the same click again on the now warm page. Medians of the rounds.
2. A 50,000-row CSV (about 13 MB) on "Check many samples": the click to "50000 of 50000
   rows checked", against a plain Python loop sending the same rows in 1,000-row chunks with
   4 requests in flight, interleaved round by round on the same runtime; and the browser's
   memory for it: the renderer's JS heap (CDP Performance.getMetrics, JSHeapUsedSize) and the
   renderer processes' resident memory, before the file and after its results and download.

    .venv/bin/python scripts/bench_page.py [--rounds 3] [--rows 50000 (0: no file)] [--reading 4]

Times in the page are taken by the page's clock (performance.now) from the click to the
answer's section shown. Figures for docs/benchmarks.md; never a timed test.
"""
from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from support import LocalRuntime, manifest  # noqa: E402

READING_S = 4.0
CHUNK_ROWS = 1000
IN_FLIGHT = 4
# Click to answer, timed in the page: a capture listener notes the click, an observer the
# moment the answer's section is no longer hidden.
CLOCK = """
window.answerTimes = [];
document.addEventListener("click", (e) => {
  if (e.target.id === "predict-button") window.clickedAt = performance.now();
}, true);
new MutationObserver(() => {
  const result = document.getElementById("result");
  if (result && !result.hidden && window.clickedAt) {
    window.answerTimes.push(performance.now() - window.clickedAt);
    window.clickedAt = 0;
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["hidden"] });
"""


def first_check_after_reading(browser, rounds: int, reading_s: float) -> dict:
    cold, warm, woke = [], [], []
    for _ in range(rounds):
        runtime = LocalRuntime()  # a fresh process: the model is not loaded
        try:
            context = browser.new_context(base_url=runtime.url, bypass_csp=True)  # for wait_for_function
            page = context.new_page()
            page.add_init_script(CLOCK)
            page.goto("/")
            page.wait_for_selector("#predict-button", state="visible")
            time.sleep(reading_s)
            for _ in range(2):
                page.click("#predict-button")
                page.wait_for_function("window.answerTimes.length && !window.clickedAt")
            first, second = page.evaluate("window.answerTimes")
            cold.append(first)
            warm.append(second)
            woke.append(page.evaluate("""performance.getEntriesByType("resource")
                .find((e) => e.name.endsWith("/api/health")).responseEnd"""))
            context.close()
        finally:
            runtime.stop()
    return {"after_reading_ms": cold, "warm_ms": warm, "wake_answered_ms": woke}


def write_rows(path: Path, rows: int) -> list[list[float]]:
    """Write `rows` rows like the training data (its rows, jittered by up to 1%); return them."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    names = [f["name"] for f in manifest()["features"]]
    columns = [list(data.feature_names).index(n) for n in names]
    rng = np.random.default_rng(0)
    X = data.data[rng.integers(0, len(data.data), rows)][:, columns]
    X = X * rng.uniform(0.99, 1.01, X.shape)
    values = [[float(f"{v:.6g}") for v in row] for row in X]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(values)
    return values


def python_loop(port: int, values: list[list[float]]) -> float:
    """Seconds for a plain loop: 1,000-row chunks, 4 requests in flight, answers in order."""
    def send(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", "/api/predict?explain=false", body=json.dumps({"instances": chunk}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        conn.close()
        if resp.status != 200:
            raise SystemExit(f"bench_page: HTTP {resp.status}")
        return answer["predictions"]
    chunks = [values[i:i + CHUNK_ROWS] for i in range(0, len(values), CHUNK_ROWS)]
    start = time.perf_counter()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        predictions = [p for answer in pool.map(send, chunks) for p in answer]
    seconds = time.perf_counter() - start
    assert len(predictions) == len(values)
    return seconds


def descendants(pid: int) -> list[int]:
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def renderer_rss_mb() -> float:
    """Resident memory of this process's Chromium renderers, in MB."""
    total = 0
    for pid in descendants(os.getpid()):
        try:
            if b"--type=renderer" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def heap_mb(cdp) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["JSHeapUsedSize"] / 2**20


def big_file(browser, runtime, path: Path, rows: int) -> dict:
    context = browser.new_context(base_url=runtime.url, accept_downloads=True, bypass_csp=True)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    cdp.send("HeapProfiler.enable")
    page.goto("/batch.html")
    page.wait_for_selector("#file", state="visible")
    before = {"heap": heap_mb(cdp), "rss": renderer_rss_mb()}
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#score:enabled")
    start = page.evaluate("performance.now()")
    page.click("#score")
    page.wait_for_function(f"document.getElementById('results-summary').textContent.startsWith('{rows} of {rows} rows checked')",
                           timeout=300_000, polling=50)
    seconds = (page.evaluate("performance.now()") - start) / 1000
    after = {"heap": heap_mb(cdp), "rss": renderer_rss_mb()}
    with page.expect_download() as download:
        page.click("#download")
    lines = sum(1 for _ in open(download.value.path(), encoding="utf-8"))
    assert lines == rows + 1, lines
    downloaded = {"heap": heap_mb(cdp), "rss": renderer_rss_mb()}
    laid_out = page.locator("#results-table tbody tr").count()
    context.close()
    return {"seconds": seconds, "before": before, "after": after, "downloaded": downloaded, "rows_laid_out": laid_out}


def report_reading(reading: dict, reading_s: float) -> None:
    med = statistics.median
    cold, warm = med(reading["after_reading_ms"]), med(reading["warm_ms"])
    print(f"first check after {reading_s:g} s of reading, fresh runtime: median {cold:.0f} ms "
          f"(rounds: {', '.join(f'{t:.0f}' for t in reading['after_reading_ms'])})")
    print(f"warm check: median {warm:.0f} ms (rounds: {', '.join(f'{t:.0f}' for t in reading['warm_ms'])})")
    print(f"ratio after reading / warm: {cold / warm:.2f}x; the wake (GET /api/health) answered "
          f"{med(reading['wake_answered_ms']):.0f} ms after the page started loading (median; "
          f"rounds: {', '.join(f'{t:.0f}' for t in reading['wake_answered_ms'])})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--reading", type=float, default=READING_S, help="seconds of reading")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        reading = first_check_after_reading(browser, args.rounds, args.reading)
        report_reading(reading, args.reading)
        if not args.rows:
            return
        path = Path(tmp) / "rows.csv"
        values = write_rows(path, args.rows)
        size_mb = path.stat().st_size / 2**20
        runtime = LocalRuntime()
        try:
            python_loop(runtime.port, values[:CHUNK_ROWS])  # warm the model
            pages, loops = [], []
            for _ in range(args.rounds):
                pages.append(big_file(browser, runtime, path, args.rows))
                loops.append(python_loop(runtime.port, values))
        finally:
            runtime.stop()
        browser.close()
    med = statistics.median
    page_s, loop_s = [r["seconds"] for r in pages], loops
    print(f"{args.rows} rows ({size_mb:.1f} MB) on the batch page, click to results: median {med(page_s):.2f} s "
          f"(rounds: {', '.join(f'{s:.2f}' for s in page_s)})")
    print(f"Python loop, {CHUNK_ROWS}-row chunks, {IN_FLIGHT} in flight: median {med(loop_s):.2f} s "
          f"(rounds: {', '.join(f'{s:.2f}' for s in loop_s)})")
    print(f"ratio page / loop: {med(page_s) / med(loop_s):.2f}x; rows laid out: {pages[-1]['rows_laid_out']}")
    for key, label in (("after", "after the results"), ("downloaded", "after the download")):
        heap = med([r[key]["heap"] - r["before"]["heap"] for r in pages])
        rss = med([r[key]["rss"] - r["before"]["rss"] for r in pages])
        print(f"renderer growth {label}: JS heap +{heap:.0f} MB ({heap / size_mb:.1f}x the file), "
              f"resident +{rss:.0f} MB ({rss / size_mb:.1f}x the file)")


if __name__ == "__main__":
    main()
