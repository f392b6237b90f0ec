"""Finding, verifying and loading the served model: lazily, once per process, thread-safe.

Owns: which model directory is served (env MODEL_DIR, default the repository's model/),
reading its manifest, checking the pickle's SHA-256 and the scikit-learn version before
unpickling, and keeping the loaded model warm. `reset()` clears the caches for tests.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelUnavailable

MODEL_DIR_ENV = "MODEL_DIR"
MANIFEST_FILE = "manifest.json"
_HERE = Path(__file__).resolve()
# model/ beside the package in the Lambda bundle; the repository's model/ when run from a checkout
DEFAULT_MODEL_DIRS = (_HERE.parents[1] / "model", _HERE.parents[3] / "model")

log = logging.getLogger("predict")
_lock = threading.Lock()
_manifest: dict | None = None
_model: LoadedModel | None = None


@dataclass(frozen=True)
class LoadedModel:
    estimator: Any
    manifest: dict
    load_ms: float


def model_dir() -> Path:
    """Return the directory of the served model, from MODEL_DIR or the default."""
    if os.environ.get(MODEL_DIR_ENV):
        return Path(os.environ[MODEL_DIR_ENV])
    return next((d for d in DEFAULT_MODEL_DIRS if d.is_dir()), DEFAULT_MODEL_DIRS[-1])


def _broken(reason: str) -> ModelUnavailable:
    log.error(json.dumps({"event": "model_unavailable", "reason": reason}))
    return ModelUnavailable("the model is not available: " + reason)


def get_manifest() -> dict:
    """Return the served model's manifest, read once; ModelUnavailable if it is unreadable."""
    global _manifest
    if _manifest is None:
        path = model_dir() / MANIFEST_FILE
        try:
            _manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _broken(f"cannot read {MANIFEST_FILE} ({type(exc).__name__})") from None
    return _manifest


def is_loaded() -> bool:
    """Return whether the model is loaded in this process (warm)."""
    return _model is not None


def get_model() -> LoadedModel:
    """Return the loaded model, loading and verifying it on first use (once, even under threads)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = _load(get_manifest())
    return _model


def _load(manifest: dict) -> LoadedModel:
    start = time.perf_counter()
    artifact = manifest.get("artifact") or {}
    path = model_dir() / str(artifact.get("file", ""))
    try:
        data = path.read_bytes()
    except OSError:
        raise _broken(f"the model file '{artifact.get('file')}' is missing") from None
    if hashlib.sha256(data).hexdigest() != artifact.get("sha256"):
        raise _broken("the model file does not match the SHA-256 in the manifest")
    import sklearn  # heavy: only here, on the first request that needs the model

    wanted = (manifest.get("versions") or {}).get("scikit-learn")
    if sklearn.__version__ != wanted:
        raise _broken(f"the model was written by scikit-learn {wanted}, "
                      f"this runtime has {sklearn.__version__}")
    estimator = pickle.loads(data)  # safe only because the SHA-256 matched our own artifact
    load_ms = (time.perf_counter() - start) * 1000
    log.info(json.dumps({"event": "model_loaded", "model": manifest.get("name"),
                         "version": manifest.get("version"), "load_ms": round(load_ms, 1)}))
    return LoadedModel(estimator, manifest, load_ms)


def reset() -> None:
    """Forget the cached manifest and model (tests; a new MODEL_DIR)."""
    global _manifest, _model
    with _lock:
        _manifest = None
        _model = None
