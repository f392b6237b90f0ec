import pytest

import support
from predict import model


@pytest.fixture(autouse=True)
def fresh_model(monkeypatch):
    """Each test starts cold, on the committed model unless it sets MODEL_DIR itself."""
    monkeypatch.delenv("MODEL_DIR", raising=False)
    model.reset()
    yield
    model.reset()


@pytest.fixture(scope="session")
def runtime():
    """The local Netlify-compatible runtime serving the committed model."""
    server = support.LocalRuntime()
    yield server
    server.stop()
