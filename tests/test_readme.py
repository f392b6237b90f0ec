"""The README's promises: its run command serves the site, it stays short, and it and the pages of
docs/ link to files that exist (tests/test_examples.py runs their examples)."""
import json
import os
import re
import socket
import subprocess
import urllib.request

from support import ROOT

README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(path):
    """The anchors GitHub makes of a Markdown file's headings (outside code blocks)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


def test_every_relative_link_of_the_docs_reaches_a_file_and_heading():
    checked = 0
    for path in DOCS:
        for target in LINK.findall(path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file) if file else path
            assert dest.is_file(), f"{path.name}: {target}"
            assert not anchor or anchor in anchors(dest), f"{path.name}: {target}"
            checked += 1
    assert checked >= 9


def test_the_readme_stays_short_and_links_every_page_of_the_docs():
    text = README.read_text()
    assert len(text.splitlines()) <= 120
    for page in DOCS[1:]:
        assert f"](docs/{page.name})" in text, page.name
    assert "](docs/answer-page.png)" in text


def test_the_run_command_serves_the_site_and_api():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PORT": str(port)})
    try:
        assert proc.stdout.readline().strip() == f"Serving on http://127.0.0.1:{port}/"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert b"<html" in r.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=30) as r:
            assert json.load(r)["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
