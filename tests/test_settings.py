"""Settings are read once, typed and checked: a bad value is named, never a crash or an empty reply."""
import logging
import subprocess
import sys

import pytest

from predict.app import build_app
from support import ROOT, call, event, example

GOOD = [
    ({"LOG_LEVEL": "debug"}, "log_level", logging.DEBUG),
    ({"LOG_LEVEL": "Warning"}, "log_level", logging.WARNING),
    ({"LOG_LEVEL": "10"}, "log_level", 10),
    ({"MAX_ROWS": "5"}, "max_rows", 5),
    ({"MAX_BODY_BYTES": " 2048 "}, "max_body_bytes", 2048),
    ({"CORS_ORIGINS": "https://a.org, https://b.org"}, "cors_origins",
     ("https://a.org", "https://b.org")),
]

BAD = [
    # (environment, the words a person reads)
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: not a log level; accepted: DEBUG, INFO, WARNING, ERROR, "
                            "CRITICAL (any case) or a number from 0 to 50"),
    ({"MAX_ROWS": "abc"}, "MAX_ROWS: not a whole number; accepted: a whole number of at least 1, "
                          "digits only (e.g. 1000)"),
    ({"MAX_ROWS": ""}, "MAX_ROWS: empty; accepted: a whole number of at least 1, digits only "
                       "(e.g. 1000)"),
    ({"MAX_ROWS": "1e3"}, "MAX_ROWS: not a whole number; accepted: a whole number of at least 1, "
                          "digits only (e.g. 1000)"),
    ({"MAX_ROWS": "0"}, "MAX_ROWS: must be at least 1; accepted: a whole number of at least 1, "
                        "digits only (e.g. 1000)"),
    ({"MAX_ROWS": "-1"}, "MAX_ROWS: not a whole number; accepted: a whole number of at least 1, "
                         "digits only (e.g. 1000)"),
    ({"MAX_ROWS": "²"}, "MAX_ROWS: not a whole number; accepted: a whole number of at least 1, "
                        "digits only (e.g. 1000)"),
    ({"MAX_ROWS": "١٠"}, "MAX_ROWS: not a whole number; accepted: a whole number of at least "
                         "1, digits only (e.g. 1000)"),
    ({"LOG_LEVEL": "²"}, "LOG_LEVEL: not a log level; accepted: DEBUG, INFO, WARNING, ERROR, "
                         "CRITICAL (any case) or a number from 0 to 50"),
    ({"MAX_BODY_BYTES": "1MiB"}, "MAX_BODY_BYTES: not a whole number; accepted: a whole number "
                                 "of at least 1, digits only (e.g. 1000)"),
    ({"CORS_ORIGINS": " , "}, "CORS_ORIGINS: empty; accepted: *, or comma-separated origins "
                              "like https://a.org"),
    ({"TRUSTED_GLOBALS": "os"}, "TRUSTED_GLOBALS: an entry is not module.Name; accepted: "
                                "comma-separated module.Name globals, e.g. mypkg.features.Scaler"),
]


@pytest.mark.parametrize("env, name, value", GOOD)
def test_good_values_are_read_typed(monkeypatch, env, name, value):
    for key, text in env.items():
        monkeypatch.setenv(key, text)
    assert getattr(build_app().settings, name) == value


@pytest.mark.parametrize("env, message", BAD, ids=[next(iter(e.items()))[0] + "=" +
                                                    next(iter(e.values())) for e, _ in BAD])
def test_a_bad_value_makes_every_request_a_503_naming_the_setting(monkeypatch, env, message):
    for key, text in env.items():
        monkeypatch.setenv(key, text)
    for ev in (event("GET", "/api/health"),
               event("POST", "/api/predict", body={"features": example()})):
        status, headers, body = call(ev)
        assert (status, body["error"]["code"]) == (503, "invalid_setting")
        assert body["error"]["message"] == "the function is misconfigured: " + message
        assert body["error"]["details"][0]["field"] == next(iter(env))


def test_importing_with_a_bad_setting_does_not_crash():
    code = ("import sys; sys.path.insert(0, 'netlify/functions'); import predict, json; "
            "r = predict.handler({'httpMethod': 'GET', 'path': '/api/health'}); "
            "print(r['statusCode'], json.loads(r['body'])['error']['code'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"MAX_ROWS": "abc", "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.split() == ["503", "invalid_setting"]


def test_limits_come_from_the_settings(monkeypatch):
    monkeypatch.setenv("MAX_ROWS", "2")
    monkeypatch.setenv("MAX_BODY_BYTES", "100000")
    monkeypatch.setenv("MAX_RESPONSE_BYTES", "5000000")
    assert call(event("GET", "/api/health"))[2]["limits"] == {
        "max_rows": 2, "max_body_bytes": 100000, "max_response_bytes": 5000000}
    status, _, body = call(event("POST", "/api/predict",
                                 body={"instances": [example()] * 3}))
    assert (status, body["error"]["message"]) == (
        413, "the request has 3 rows; at most 2 are accepted per request, split it")


@pytest.mark.parametrize("env, message", BAD[:3])
def test_the_local_runtime_refuses_to_start_naming_the_variable(env, message):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "serve.py"), "0"],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", **env})
    assert out.returncode != 0
    assert "Serving on" not in out.stdout
    assert out.stderr.strip().endswith("cannot start, a setting is bad: " + message)
