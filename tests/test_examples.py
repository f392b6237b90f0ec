"""Every documented example runs as written: each code block of the developers page, of
README.md and of docs/*.md (curl, Python, and JavaScript saved as a plain .js file for Node)
against a real local runtime, answering the documented status with a prediction in it.

Markdown examples are fenced ```sh, ```python or ```js blocks that call the local runtime
(`localhost:8888/api/...`, `/invocations`, `/ping`); the developers page marks its blocks
with <code class="language-...">, and a block other blocks read as a file with data-file.
A comment line above a curl command may state its status ("HTTP 400"); else it is 200."""
import csv
import io
import json
import re
import shutil
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from support import ROOT, manifest

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(sh|bash|shell|python|py|js|javascript)[ \t]*\n(.*?)^```", re.S | re.M)
LANGS = {"bash": "sh", "shell": "sh", "py": "python", "javascript": "js"}
LOCAL = re.compile(r"(?:https?://)?localhost:8888(?=/(?:api/|invocations|ping))")
PREDICTING = re.compile(r"/(?:predict|invocations)\b")
LABELS = [str(label) for label in manifest()["labels"]]


def markdown_examples():
    """Return (where, lang, code) for each fenced block of the docs that calls the runtime."""
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in FENCE.finditer(text):
            lang, code = LANGS.get(match[1], match[1]), match[2]
            if LOCAL.search(code):
                line = text[:match.start()].count("\n") + 1
                found.append((f"{path.name}:{line}", lang, code))
    return found


EXAMPLES = markdown_examples()


def curl_commands(code):
    """Return (command text, documented status) for each curl command of a shell block."""
    lines = code.splitlines()
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith("curl ")]
    out = []
    for k, i in enumerate(starts):
        above = lines[i - 1].lstrip() if i else ""
        said = re.search(r"\bHTTP (\d{3})\b", above) if above.startswith("#") else None
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        out.append(("\n".join(lines[i:end]), int(said[1]) if said else 200))
    return out


def has_prediction(text):
    return any(re.search(rf"\b{re.escape(label)}\b", text) for label in LABELS)


def run_example(lang, code, url, cwd, scratch):
    """Run one block as written in cwd (the local URL made the runtime's), with scratch as
    curl's home; return a list of problems."""
    code = LOCAL.sub(url, code)
    if lang == "sh":
        # The block runs as a script, as written; curl reads $CURL_HOME/.curlrc, which makes
        # it add a marked status line after each answer.
        commands = curl_commands(code)
        (scratch / ".curlrc").write_text('write-out = "\\n@@ %{http_code}\\n"\n')
        out = subprocess.run(["bash", "-e", "-c", code], cwd=cwd, capture_output=True, text=True,
                             timeout=120, env={"PATH": "/usr/bin:/bin", "CURL_HOME": str(scratch)})
        parts = re.split(r"\n@@ (\d{3})\n", out.stdout)
        answers = list(zip(parts[0::2], parts[1::2]))
        if out.returncode != 0 or not commands or len(answers) != len(commands):
            return [f"exit {out.returncode}, {len(answers)} answers to {len(commands)} curl commands: {out.stderr[-300:]!r}"]
        problems = []
        for (command, status), (body, got) in zip(commands, answers):
            body = body.strip()
            if got != str(status):
                problems.append(f"{command[:80]}: HTTP {got}, expected {status}")
            elif status >= 400:
                if "error" not in json.loads(body):
                    problems.append(f"{command[:80]}: no error body")
            elif PREDICTING.search(command.split("\n")[0]):
                if body.startswith("{"):
                    ok = json.loads(body).get("predictions") and has_prediction(body)
                else:  # a CSV answer
                    ok = len(list(csv.reader(io.StringIO(body)))) > 1 and has_prediction(body)
                if not ok:
                    problems.append(f"{command[:80]}: no prediction in {body[:120]!r}")
        return problems
    runner = {"python": ([sys.executable], "example.py"), "js": ([shutil.which("node") or "node"], "example.js")}
    command, name = runner[lang]
    (cwd / name).write_text(code)
    out = subprocess.run([*command, name], cwd=cwd, capture_output=True, text=True, timeout=60)
    status = out.stdout.split(maxsplit=1)[0] if out.stdout.strip() else ""
    if out.returncode != 0 or (status.isdigit() and status != "200") or not has_prediction(out.stdout):
        return [f"{lang}: exit {out.returncode}, out {out.stdout[:200]!r}, err {out.stderr[-300:]!r}"]
    return []


def test_the_docs_have_an_example_for_every_route():
    text = " ".join(code for _, _, code in EXAMPLES)
    for route in ("/api/health", "/api/model", "/api/openapi.json", "/api/predict", "/invocations"):
        assert f"localhost:8888{route}" in text, route
    assert sum(len(curl_commands(code)) for _, lang, code in EXAMPLES if lang == "sh") >= 7


@pytest.mark.parametrize("where, lang, code", EXAMPLES, ids=[w for w, _, _ in EXAMPLES])
def test_each_documented_example_runs_as_written(runtime, tmp_path, where, lang, code):
    host = runtime.url.removeprefix("http://")
    # The docs' examples read files of the checkout (model/sample.csv): run them there.
    assert run_example(lang, code, host, ROOT if lang == "sh" else tmp_path, tmp_path) == []


@pytest.mark.browser
def test_each_example_of_the_developers_page_runs_as_written(browser, runtime, tmp_path):
    context = browser.new_context(base_url=runtime.url)
    pg = context.new_page()
    pg.goto("/developers.html")
    expect(pg.locator("#try")).to_be_visible(timeout=20_000)
    blocks = pg.evaluate("""[...document.querySelectorAll('pre code[class^="language-"]')]
        .map((c) => ({lang: c.className.slice(9), file: c.dataset.file || null, code: c.textContent}))""")
    context.close()
    assert {"sh", "python", "js", "csv"} <= {b["lang"] for b in blocks}
    assert any("/api/invocations" in b["code"] and "-X POST" in b["code"] for b in blocks)
    for b in blocks:
        if b["file"]:
            (tmp_path / b["file"]).write_text(b["code"])
    problems = [p for b in blocks if not b["file"] for p in run_example(b["lang"], b["code"], runtime.url, tmp_path, tmp_path)]
    assert problems == []
