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
