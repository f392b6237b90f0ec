"""Finding, verifying and loading the served model: lazily, once per store, thread-safe.

Owns: `ModelStore`, which reads and checks the manifest, confines the artifact to the model
directory, checks the pickle's SHA-256 and the scikit-learn version, unpickles it through
the restricted unpickler and its audit, and keeps the loaded model warm. The load runs in a
thread of its own and a request waits for it a bounded time. A test builds a fresh store.
"""
from __future__ import annotations

import copy
import gc
import hashlib
import json
import logging
import os
import stat
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import ModelUnavailable
from .manifest import Manifest, ManifestError, check_manifest
from .settings import Settings, from_env

MANIFEST_FILE = "manifest.json"

log = logging.getLogger("predict")


@dataclass(frozen=True)
class LoadedModel:
    estimator: Any
    manifest: Manifest
    load_ms: float

    @cached_property
    def feature_names(self) -> list[str]:
        """The manifest's feature names, in the order the model takes its columns."""
        return [f["name"] for f in self.manifest["features"]]

    @cached_property
    def class_names(self) -> list[str]:
        """The estimator's classes as text, the keys of each answer's probabilities."""
        return [str(c) for c in self.estimator.classes_]


def model_dir() -> Path:
    """Return the directory of the served model under the current environment."""
    return from_env().model_dir


@contextmanager
def _collector_paused():
    """Pause the cyclic garbage collector while scikit-learn is imported and the model
    unpickled; once loaded, freeze what is in memory.

    That import brings some 1,600 modules and 120,000 objects that live as long as the
    process. The collector would walk them again and again as they arrive (about 0.1 s of
    a 1.2 s cold start, measured with gc.callbacks) and in every full collection after
    (about 70 ms each on a warm process). Frozen, they are never walked again (Python's
    documented gc.disable / gc.freeze pattern)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if enabled:
            gc.enable()


def _broken(reason: str) -> ModelUnavailable:
    log.error(json.dumps({"event": "model_unavailable", "reason": reason}))
    return ModelUnavailable("the model is not available: " + reason)


def _read_artifact(path: Path, artifact: dict) -> bytes:
    """Return the bytes of the model file, refusing anything but a regular file no larger than
    the manifest says (opened without blocking: a FIFO or a device cannot hold the load)."""
    name = artifact["file"][:100]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        raise _broken(f"the model file '{name}' is missing") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _broken(f"the model file '{name}' is not a regular file")
        limit = artifact.get("bytes")
        if isinstance(limit, int) and info.st_size > limit:
            raise _broken(f"the model file '{name}' has {info.st_size} bytes, more than the "
                          f"{limit} the manifest states")
        chunks, left = [], info.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise _broken(f"the model file '{name}' cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


class ModelStore:
    """The served model of one model directory: its manifest and estimator, each read once."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._manifest: Manifest | None = None
        self._model: LoadedModel | None = None
        self._loading: threading.Thread | None = None
        self._failure: Exception | None = None

    def manifest(self) -> Manifest:
        """Return the checked manifest, read once; ModelUnavailable if it cannot be trusted."""
        if self._manifest is None:
            path = self.settings.model_dir / MANIFEST_FILE
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise _broken(f"cannot read {MANIFEST_FILE} ({type(exc).__name__})") from None
            try:
                self._manifest = check_manifest(doc)
            except ManifestError as exc:
                raise _broken(str(exc)) from None
        return self._manifest

    def is_loaded(self) -> bool:
        """Return whether the model is loaded (warm)."""
        return self._model is not None

    def get(self, *, timeout: float | None = None) -> tuple[LoadedModel, dict]:
        """Return the loaded model and what this call spent on it, for Server-Timing and logs.

        Loads once, in a thread of its own, even when many threads ask at the same moment: the
        call that started the load gets {"cold": True, "load": ms}, the ones that waited for it
        {"wait": ms}, a warm call {}. A call waits at most `timeout` seconds (default: the
        model_load_timeout setting), then answers ModelUnavailable while the load goes on: a
        stuck load (a hung network share) never holds a request or a lock.
        """
        if self._model is not None:
            return self._model, {}
        wait = self.settings.model_load_timeout if timeout is None else timeout
        start = time.perf_counter()
        manifest = self.manifest()
        if not self._lock.acquire(timeout=wait):
            raise _broken(f"the model did not load within {wait:g} s")
        try:
            started = self._loading is None and self._model is None
            if started:
                self._failure = None
                self._loading = threading.Thread(target=self._load_in_background,
                                                 args=(manifest,), name="model-load",
                                                 daemon=True)
                self._loading.start()
            loading = self._loading
        finally:
            self._lock.release()
        if loading is not None:
            loading.join(max(0.0, wait - (time.perf_counter() - start)))
        if self._model is None:
            failure = self._failure
            if failure is not None and (loading is None or not loading.is_alive()):
                raise copy.copy(failure)  # one exception object per waiting thread
            raise _broken(f"the model did not load within {wait:g} s; it is still loading")
        if started:
            return self._model, {"cold": True, "load": self._model.load_ms}
        return self._model, {"wait": (time.perf_counter() - start) * 1000}

    def _load_in_background(self, manifest: Manifest) -> None:
        try:
            self._model = self._load(manifest)
        except ModelUnavailable as exc:
            self._failure = exc
        except Exception as exc:  # a bug, not a bad model: logged with its traceback
            log.exception("model load failed")
            self._failure = _broken(f"the model failed to load ({type(exc).__name__})")
        finally:
            with self._lock:
                self._loading = None

    def _artifact_path(self, manifest: Manifest) -> Path:
        base = self.settings.model_dir.resolve()
        path = (base / manifest["artifact"]["file"]).resolve()
        if not path.is_relative_to(base) or path == base:
            raise _broken("the manifest's artifact file is outside the model directory")
        return path

    def _load(self, manifest: Manifest) -> LoadedModel:
        start = time.perf_counter()
        artifact = manifest["artifact"]
        path = self._artifact_path(manifest)
        data = _read_artifact(path, artifact)
        if hashlib.sha256(data).hexdigest() != artifact["sha256"]:
            raise _broken("the model file does not match the SHA-256 in the manifest")
        with _collector_paused():
            estimator = self._unpickle(manifest, data)
        check_against_manifest(estimator, manifest)
        load_ms = (time.perf_counter() - start) * 1000
        log.info(json.dumps({"event": "model_loaded", "model": manifest.get("name"),
                             "version": manifest.get("version"), "load_ms": round(load_ms, 1)}))
        return LoadedModel(estimator, manifest, load_ms)

    def _unpickle(self, manifest: Manifest, data: bytes):
        """Given the checked pickle, return the estimator through the restricted unpickler;
        ModelUnavailable if this runtime's scikit-learn or the pickle itself is wrong."""
        from .deferred import DEFERRED, defer
        for name in DEFERRED:  # imported by scikit-learn, used by few models: see deferred.py
            defer(name)
        import sklearn  # heavy: only here, on the first request that needs the model

        wanted = manifest["versions"].get("scikit-learn")
        if sklearn.__version__ != wanted:
            raise _broken(f"the model was written by scikit-learn {str(wanted)[:20]}, "
                          f"this runtime has {sklearn.__version__}")
        from .unpickle import ForbiddenGlobal, Refused, restricted_loads
        try:
            return restricted_loads(data, extra=self.settings.trusted_globals)
        except ForbiddenGlobal as exc:
            raise _broken(f"{exc}; refused to unpickle it") from None
        except Refused as exc:
            raise _broken(f"refused to serve the pickle: {exc}") from None
        except Exception as exc:  # a truncated or foreign pickle fails in many ways
            raise _broken(f"the model file cannot be unpickled ({type(exc).__name__})") from None


def _differ(what: str, manifest_says: list[str], model_has: list[str]) -> ModelUnavailable:
    """Name the first place where the manifest's list and the model's differ (texts cut short)."""
    if len(manifest_says) != len(model_has):
        return _broken(f"the manifest has {len(manifest_says)} {what}, the model "
                       f"{len(model_has)}")
    i = next(i for i, (a, b) in enumerate(zip(manifest_says, model_has)) if a != b)
    return _broken(f"the manifest's {what} differ from the model's: number {i + 1} is "
                   f"'{manifest_says[i][:100]}' in the manifest, '{model_has[i][:100]}' in the "
                   "model")


def check_against_manifest(estimator, manifest: Manifest) -> None:
    """Given the unpickled object and its manifest, raise ModelUnavailable naming the mismatch
    unless it is a fitted estimator of the manifest's task taking the manifest's features (their
    count, and their names in order where the model knows them) and giving its labels, and
    the packages its input needs import."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    kind = type(estimator).__name__[:100]
    if not callable(getattr(estimator, "predict", None)) or not hasattr(estimator, "get_params"):
        raise _broken(f"the model file holds a {kind}, not a scikit-learn estimator with predict()")
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise _broken(f"the model file holds a {kind} that is not fitted") from None
    except TypeError:  # check_is_fitted refuses what is not an estimator
        raise _broken(f"the model file holds a {kind}, not a scikit-learn estimator") from None
    task = manifest["task"]
    if not (is_classifier(estimator) if task == "classification" else is_regressor(estimator)):
        raise _broken(f"the manifest says {task}; the model file holds a {kind}, which is not a "
                      f"{'classifier' if task == 'classification' else 'regressor'}")
    names = [f["name"] for f in manifest["features"]]
    count = getattr(estimator, "n_features_in_", None)
    if count is not None and count != len(names):
        raise _broken(f"the manifest has {len(names)} features; the model takes {count}")
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None and [str(n) for n in fitted_names] != names:
        raise _differ("features", names, [str(n) for n in fitted_names])
    columns = (manifest.get("input") or {}).get("columns")
    if columns is not None and list(columns) != names:
        raise _differ("input columns", [str(c) for c in columns], names)
    if task == "classification":
        labels = [str(c) for c in estimator.classes_]
        if [str(c) for c in manifest.get("labels", [])] != labels:
            raise _differ("labels", [str(c) for c in manifest.get("labels", [])], labels)
        if "classes" in manifest and manifest["classes"] != estimator.classes_.tolist():
            raise _broken("the manifest's classes differ from the model's classes_")
    from .frames import check_requirements
    check_requirements(manifest)
