"""Compare the inputs the function saw in a time window with its training data, per feature.

Each prediction's log line counts, per numeric feature, how many inputs fell in each band
of the training data's quantiles (below min, min-p5, p5-p25, p25-median, median-p75,
p75-p95, p95-max, above max: predict/metrics.py). In training those bands hold 0, 5, 20,
25, 25, 20, 5 and 0% of the values; this sums the window's counts, measures how far they
are from that (the population stability index, PSI: under 0.1 no drift, 0.1 to 0.25 some,
over 0.25 strong, the usual reading) and says it in words, worst first.

Log lines from a file or stdin, as `aws logs filter-log-events` prints them (JSON) or one
a line (Lambda's text format, or bare JSON):

    aws logs filter-log-events --log-group-name /aws/lambda/dect-model-predict \\
      --start-time $(date -d '7 days ago' +%s000) --filter-pattern '{ $.event = "invocation" }' \\
      > window.json
    python scripts/drift.py window.json [--model-dir model]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

from build_lambda import served_model_dir

# The share of training values in each band (predict/metrics.py BANDS)
EXPECTED = (0.0, 0.05, 0.20, 0.25, 0.25, 0.20, 0.05, 0.0)
EDGE_NAMES = ("the smallest value seen in training", "the training's 5th percentile",
              "its 25th percentile", "its median", "its 75th percentile",
              "its 95th percentile", "the largest value seen in training")
SOME, STRONG = 0.1, 0.25  # PSI thresholds
MIN_VALUES = 30  # fewer values than this say nothing about drift
FLOOR = 0.005  # the share PSI uses for an empty band (and the training's empty outer bands)


def log_lines(text: str) -> list[dict]:
    """Given log text (filter-log-events JSON, or one line per event), return the invocation
    lines that carry inputs."""
    try:
        doc = json.loads(text)
        messages = [e.get("message", "") for e in doc.get("events", [])] \
            if isinstance(doc, dict) and "events" in doc else [text]
    except ValueError:
        messages = text.splitlines()
    lines = []
    for message in messages:
        for raw in message.splitlines():
            start = raw.find("{")
            if start < 0:
                continue
            try:
                line = json.loads(raw[start:])
            except ValueError:
                continue
            if isinstance(line, dict) and line.get("event") == "invocation" and "inputs" in line:
                lines.append(line)
    return lines


def psi(seen: list[float]) -> float:
    """The population stability index of these band shares against the training's."""
    return sum((s - e) * math.log(s / e) for s, e in
               zip((max(s, FLOOR) for s in seen), (max(e, FLOOR) for e in EXPECTED)))


def describe(feature: dict, counts: list[int]) -> tuple[float, str]:
    """Given a feature and its band counts, return (PSI, what a model owner reads)."""
    name = feature.get("label") or feature["name"]
    unit = f" ({feature['unit']})" if feature.get("unit") else ""
    n = sum(counts)
    if n < MIN_VALUES:
        return -1.0, f"{name}{unit}: {n} values, too few to say anything about drift."
    shares = [c / n for c in counts]
    index = psi(shares)
    verdict = ("like the training data" if index < SOME else
               "somewhat different from the training data" if index < STRONG else
               "very different from the training data")
    words = [f"{name}{unit}: {n:,} values, {verdict} (PSI {index:.2f})."]
    if index >= SOME:
        above = sum(shares[4:]) - 0.5
        words.append(f"They run {'higher' if above > 0 else 'lower'} than in training: "
                     f"{sum(shares[4:]):.0%} were above {EDGE_NAMES[3]} (50% in training).")
        band = max(range(len(shares)), key=lambda i: shares[i] - EXPECTED[i])
        if 0 < band < 7:
            words.append(f"Most over-represented: between {EDGE_NAMES[band - 1]} and "
                         f"{EDGE_NAMES[band]}, {shares[band]:.0%} of values "
                         f"({EXPECTED[band]:.0%} in training).")
    outside = counts[0] + counts[7]
    if outside:
        words.append(f"{outside:,} value{'s' if outside > 1 else ''} ({outside / n:.1%}) "
                     f"{'were' if outside > 1 else 'was'} outside the range seen in training "
                     f"({feature['min']:g} to {feature['max']:g}): predictions for them are "
                     "less reliable.")
    return index, " ".join(words)


def report(lines: list[dict], manifest: dict) -> str:
    """Given invocation log lines and the served model's manifest, return the drift report."""
    version = manifest.get("version")
    mine = [x for x in lines if (x.get("model") or {}).get("version") == version]
    totals: dict[str, list[int]] = {}
    for line in mine:
        for name, counts in line["inputs"].items():
            into = totals.setdefault(name, [0] * len(EXPECTED))
            for i, c in enumerate(counts[:len(EXPECTED)]):
                into[i] += c
    out = []
    times = sorted(x["_aws"]["Timestamp"] for x in mine if "Timestamp" in x.get("_aws", {}))
    window = ""
    if times:
        first, last = (datetime.fromtimestamp(t / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")
                       for t in (times[0], times[-1]))
        window = f" from {first} to {last} UTC"
    rows = sum(x.get("rows", 0) for x in mine)
    out.append(f"Model {manifest.get('name')} {version}: {len(mine):,} prediction requests, "
               f"{rows:,} rows{window}.")
    if len(lines) > len(mine):
        out.append(f"({len(lines) - len(mine):,} requests to other model versions left out.)")
    found = []
    for feature in manifest["features"]:
        if feature["name"] in totals:
            found.append(describe(feature, totals[feature["name"]]))
    drifted = [text for index, text in found if index >= SOME]
    if not found:
        out.append("No inputs to compare: no prediction requests in these lines.")
    elif drifted:
        out.append(f"{len(drifted)} of {len(found)} features drifted from the training data:")
    else:
        out.append(f"None of the {len(found)} features drifted from the training data.")
    out += ["  " + text for _, text in sorted(found, key=lambda f: -f[0])]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("logs", nargs="?", default="-", help="a file of log lines ('-': stdin)")
    parser.add_argument("--model-dir", type=Path, help="default: the served model")
    args = parser.parse_args()
    text = sys.stdin.read() if args.logs == "-" else Path(args.logs).read_text(encoding="utf-8")
    model_dir = args.model_dir or served_model_dir()
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    print(report(log_lines(text), manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
