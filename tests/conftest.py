import shutil

import pytest

import support


@pytest.fixture(autouse=True)
def fresh_app(monkeypatch):
    """Each test starts cold, on the committed model unless it sets MODEL_DIR itself."""
    monkeypatch.delenv("MODEL_DIR", raising=False)
    support.forget_apps()
    yield
    support.forget_apps()


@pytest.fixture(scope="session")
def runtime():
    """The local Netlify-compatible runtime serving the committed model."""
    server = support.LocalRuntime()
    yield server
    server.stop()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium, driven by Playwright, shared by every browser test."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
