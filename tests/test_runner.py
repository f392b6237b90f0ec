"""The workflow's test step as GitHub's runner takes it: not root, and only the tools the
ubuntu-24.04 image lists (actions/runner-images, images/ubuntu/Ubuntu2404-Readme.md):
Chromium at /usr/bin/chromium, Node and npm, Python with venv, git, curl; no wrk. Needs root
here to become another user; on a non-root machine (the runner itself) it skips."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support import ROOT, copy_checkout

# Tools on the runner image that setup.sh or the suite may call (wrk is not among them).
RUNNER_TOOLS = ("bash", "sh", "env", "id", "dirname", "cat", "ls", "mkdir", "rm", "cp", "mv",
                "grep", "sed", "tar", "gzip", "unzip", "zip", "git", "curl", "jq", "make",
                "node", "npm", "npx", "chromium", "sudo", "apt-get", "dpkg")
RUNNER_UID = 1001  # the image's `runner` user

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="becoming a non-root user needs root (this is the runner)")


@pytest.fixture(scope="module")
def system_python():
    """A Python of the suite's own minor version that any user may run (the runner's
    setup-python stand-in), so the venv can see the suite's installed packages."""
    python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not python.exists():
        pytest.skip(f"no {python} for a non-root user (pyenv's lives under /root)")
    return python


def runner_bin(folder: Path, python: Path, *, without=()) -> Path:
    folder.mkdir()
    for tool in RUNNER_TOOLS:
        found = shutil.which(tool)
        if found and tool not in without:
            (folder / tool).symlink_to(found)
    (folder / "python3").symlink_to(python)
    return folder


def as_runner(command: list[str], cwd: Path, path: Path, home: Path):
    return subprocess.run(["setpriv", f"--reuid={RUNNER_UID}", f"--regid={RUNNER_UID}",
                           "--clear-groups", "env", "-i", f"HOME={home}", f"PATH={path}",
                           *command], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def checkout(system_python):
    """A checkout owned by the runner user, its .venv made by that user with the suite's
    packages visible (so pip finds every pin satisfied and downloads nothing), and npm's
    packages already installed (so `npm ci` is skipped, as after the first run)."""
    # not under pytest's base temp folder, which only root may enter
    top = Path(tempfile.mkdtemp(prefix="runner-"))
    repo = copy_checkout(top / "repo", ("scripts", "tests", "netlify", "model", "site",
                                        "netlify.toml", "pyproject.toml", "package.json",
                                        "package-lock.json") + tuple(
        p.name for p in ROOT.glob("requirements*.txt")))
    (repo / "node_modules").symlink_to(ROOT / "node_modules")
    os.utime(repo / "package-lock.json", (0, 0))
    home = top / "home"
    home.mkdir()
    subprocess.run(["chown", "-R", f"{RUNNER_UID}:{RUNNER_UID}", str(top)], check=True)
    tools = runner_bin(top / "bin", system_python)
    made = as_runner(["python3", "-m", "venv", ".venv"], repo, tools, home)
    assert made.returncode == 0, made.stderr
    site = next((repo / ".venv" / "lib").glob("python3.*/site-packages"))
    suite_site = next(p for p in sys.path if p.endswith("site-packages") and ".venv" in p)
    (site / "suite.pth").write_text(suite_site + "\n")
    yield repo, home, top
    shutil.rmtree(top)


def test_setup_dev_passes_as_the_runner_without_wrk_and_the_load_tests_skip(checkout):
    repo, home, top = checkout
    tools = top / "bin"
    assert not (tools / "wrk").exists() and (tools / "chromium").exists()
    setup = as_runner(["bash", "scripts/setup.sh", "--dev"], repo, tools, home)
    assert setup.returncode == 0, setup.stderr
    assert "the load tests will skip" in setup.stderr
    run = as_runner([".venv/bin/python", "-m", "pytest", "-p", "no:cacheprovider", "-rs",
                     "tests/test_http.py::test_a_short_load_run_has_no_errors_and_no_failed_answers"],
                    repo, tools, home)
    assert run.returncode == 0, run.stdout[-2000:]
    assert "1 skipped" in run.stdout and "needs Debian's wrk" in run.stdout


def test_setup_dev_without_chromium_says_what_to_install(checkout, system_python):
    repo, home, top = checkout
    tools = runner_bin(top / "bin-no-chromium", system_python, without=("chromium",))
    setup = as_runner(["bash", "scripts/setup.sh", "--dev"], repo, tools, home)
    assert setup.returncode == 1
    assert "sudo apt-get install chromium" in setup.stderr
