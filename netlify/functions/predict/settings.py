"""The function's settings: declared once, typed, defaulted, read from the environment once.

Owns: each setting's name, type, default and one-line meaning, and the checks that turn a
bad value into a SettingsError naming the variable, the problem and what is accepted.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

_HERE = Path(__file__).resolve()
# model/ beside the package in the Lambda bundle; the repository's model/ when run from a checkout
DEFAULT_MODEL_DIRS = (_HERE.parents[1] / "model", _HERE.parents[3] / "model")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """An environment variable has a value the function cannot run with."""

    def __init__(self, name: str, problem: str, accepted: str):
        super().__init__(f"{name}: {problem}; accepted: {accepted}")
        self.name = name


def default_model_dir() -> Path:
    return next((d for d in DEFAULT_MODEL_DIRS if d.is_dir()), DEFAULT_MODEL_DIRS[-1])


@dataclass(frozen=True)
class Settings:
    # The directory holding manifest.json and the pickle it names.
    model_dir: Path = field(default_factory=default_model_dir)
    # The most rows one prediction request may carry.
    max_rows: int = 1000
    # The largest request body accepted, in bytes (Lambda's own limit is 6 MB).
    max_body_bytes: int = 1024 * 1024
    # The largest answer, in bytes as Lambda carries it (the body written as a JSON string in
    # its response envelope, with the headers): Lambda refuses one over 6 MB (6,291,456 bytes).
    max_response_bytes: int = 6_000_000
    # Origins allowed to call the API from a browser; "*" allows every origin.
    cors_origins: tuple[str, ...] = ("*",)
    # The level of the function's log lines (one per invocation at INFO).
    log_level: int = logging.INFO
    # Extra "module.Name" globals a model's pickle may name, beyond scikit-learn's own.
    trusted_globals: tuple[str, ...] = ()
    # Seconds a request waits for the model to load (unpickle, audit) before it answers 503;
    # the load goes on in the background and a later request finds it done.
    model_load_timeout: int = 20

    def limits(self) -> dict:
        """Return the request limits, as /api/health reports them."""
        return {"max_rows": self.max_rows, "max_body_bytes": self.max_body_bytes,
                "max_response_bytes": self.max_response_bytes}


ENV_NAMES = {f.name: f.name.upper() for f in fields(Settings)}


def _digits(text: str) -> bool:
    """Return whether text is ASCII digits only: str.isdigit also takes "²" and "٣", which
    int() then refuses or reads as another number."""
    return text.isascii() and text.isdigit()


def _positive_int(name: str, text: str) -> int:
    accepted = "a whole number of at least 1, digits only (e.g. 1000)"
    if not _digits(text.strip()):
        raise SettingsError(name, "not a whole number" if text.strip() else "empty", accepted)
    value = int(text.strip())
    if value < 1:
        raise SettingsError(name, "must be at least 1", accepted)
    return value


def _log_level(name: str, text: str) -> int:
    accepted = ", ".join(LOG_LEVELS) + " (any case) or a number from 0 to 50"
    text = text.strip()
    if _digits(text) and int(text) <= 50:
        return int(text)
    level = logging.getLevelName(text.upper())
    if text.upper() in LOG_LEVELS and isinstance(level, int):
        return level
    raise SettingsError(name, "not a log level", accepted)


def _origins(name: str, text: str) -> tuple[str, ...]:
    origins = tuple(o.strip() for o in text.split(",") if o.strip())
    if not origins:
        raise SettingsError(name, "empty", "*, or comma-separated origins like https://a.org")
    return origins


def _model_dir(name: str, text: str) -> Path:
    if not text.strip():
        raise SettingsError(name, "empty", "a directory holding manifest.json")
    return Path(text)


def _globals(name: str, text: str) -> tuple[str, ...]:
    names = tuple(g.strip() for g in text.split(",") if g.strip())
    for g in names:
        module, _, attr = g.rpartition(".")
        if not module or not attr.isidentifier():
            raise SettingsError(name, "an entry is not module.Name",
                                "comma-separated module.Name globals, e.g. mypkg.features.Scaler")
    return names


PARSERS = {"model_dir": _model_dir, "max_rows": _positive_int, "max_body_bytes": _positive_int,
           "max_response_bytes": _positive_int, "model_load_timeout": _positive_int,
           "cors_origins": _origins, "log_level": _log_level, "trusted_globals": _globals}


def from_env(environ: dict | None = None) -> Settings:
    """Given the environment (default os.environ), return the Settings; SettingsError if bad."""
    environ = os.environ if environ is None else environ
    values = {}
    for key, env in ENV_NAMES.items():
        if env in environ:
            values[key] = PARSERS[key](env, environ[env])
    return Settings(**values)
