"""What the function does for production on every host: answers that fit Lambda's 6 MB,
security headers set by the function itself, and its log line in CloudWatch's embedded
metric format (EMF)."""
import http.client
import json
import logging
import subprocess
import sys
from collections import Counter
from urllib.parse import urlsplit

import numpy as np
import pytest

from support import ROOT, app, call, event, example, manifest

LAMBDA_LIMIT = 6 * 1024 * 1024  # Lambda's synchronous response payload limit
SECURITY = {"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
            "Referrer-Policy"}


def far_rows(n, factor=50.0):
    """n rows with every value far above the range seen in training (one warning a value)."""
    return [{k: v * factor for k, v in example().items()} for _ in range(n)]


def predict_event(rows, explain="true", **kw):
    return event("POST", "/api/predict", body={"instances": rows}, query={"explain": explain},
                 **kw)


def test_an_answer_over_lambdas_limit_is_a_413_saying_what_to_ask_for_instead():
    # issue 18: 1,000 rows, every value out of range, explanations on: 6.77 MB on Lambda
    status, _, body = call(predict_event(far_rows(1000)))
    assert status == 413
    assert body["error"]["code"] == "response_too_large"
    message = body["error"]["message"]
    assert "explain=false" in message and "fewer rows" in message
    fewer = int(message.split("about ")[1].split()[0])
    # the rows it suggests fit, as Lambda writes the answer
    resp = app().handle_event(predict_event(far_rows(fewer)), None)
    assert resp["statusCode"] == 200
    assert len(json.dumps(resp)) < LAMBDA_LIMIT


def test_the_largest_answers_that_pass_fit_in_lambdas_response_as_json():
    # the measure against the world: the Lambda response dict written as JSON, as the runtime
    # client sends it (JSON and CSV answers, ASCII and not)
    for ev in (predict_event(far_rows(1000), explain="false"),
               predict_event(far_rows(700)),
               predict_event(far_rows(1000), headers={"accept": "text/csv"})):
        resp = app().handle_event(ev, None)
        assert resp["statusCode"] == 200
        assert len(json.dumps(resp)) < LAMBDA_LIMIT


def test_the_size_measure_is_never_below_what_lambda_carries():
    from predict.events import carried_bytes, lambda_response
    from predict.web import Response
    bodies = [b'{"a":"x\\"y","b":"\\\\"}', "r\u00e9sum\u00e9 \u2713 \U0001f600".encode(),
              b"row,prediction\n0,benign\r\n1,\x01\x1f\t", bytes(range(256)),
              json.dumps({"k": ["v" * 10] * 1000}).encode()]
    for body in bodies:
        resp = Response(200, {"Content-Type": "text/plain", "X-Long": "v" * 300}, body)
        exact = len(json.dumps(lambda_response(resp)))
        assert exact <= carried_bytes(resp) <= exact * 1.05 + 200, body[:20]


def test_the_same_limit_holds_locally_and_health_states_it(monkeypatch, runtime):
    status, _, body = call(event("GET", "/api/health"))
    assert body["limits"]["max_response_bytes"] == 6_000_000 < LAMBDA_LIMIT
    url = urlsplit(runtime.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("POST", "/api/predict?explain=true", json.dumps({"instances": far_rows(1000)}),
                 {"Content-Type": "application/json"})
    answer = conn.getresponse()
    assert answer.status == 413
    assert json.loads(answer.read())["error"]["code"] == "response_too_large"


@pytest.mark.parametrize("ev", [event("GET", "/api/health"), predict_event([example()]),
                                event("GET", "/api/nowhere"), event("OPTIONS", "/api/predict"),
                                event("POST", "/api/predict", body="{", version="v2")])
def test_every_answer_carries_the_security_headers_the_function_sets(ev):
    status, headers, _ = call(ev)
    assert SECURITY <= set(headers), status
    assert headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_locally_each_security_header_is_sent_once_api_and_page(runtime):
    # scripts/serve.py adds netlify.toml's [[headers]] to what the function did not set
    url = urlsplit(runtime.url)
    for path in ("/api/health", "/"):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        names = Counter(k.lower() for k, _ in answer.getheaders())
        assert all(names[h.lower()] == 1 for h in SECURITY), (path, names)
        csp = answer.getheader("Content-Security-Policy")
        assert ("default-src 'none'" in csp) == path.startswith("/api")


def invocation_lines(caplog):
    return [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "predict.invocation"]


def check_emf(line):
    """Check a log line against CloudWatch's EMF specification; return {metric: value}."""
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert isinstance(line["_aws"]["Timestamp"], int)
    assert 0 < len(directive["Metrics"]) <= 100
    for dimensions in directive["Dimensions"]:
        assert all(isinstance(line[d], str) for d in dimensions)
    values = {}
    for metric in directive["Metrics"]:
        value = line[metric["Name"]]
        assert isinstance(value, (int, float)) and not isinstance(value, bool)
        values[metric["Name"]] = value
    return values


def test_the_log_line_is_emf_with_counts_per_label_and_per_out_of_range_feature(caplog):
    caplog.set_level(logging.INFO, logger="predict")
    rows = [example("malignant"), example("benign"), example("benign"),
            {**example("benign"), "mean radius": 1000.0, "worst area": 0.0}]
    _, _, body = call(predict_event(rows))
    (line,) = invocation_lines(caplog)
    values = check_emf(line)
    assert values["Requests"] == 1 and values["Rows"] == 4 and values["ColdStarts"] == 1
    assert values["ServerErrors"] == 0
    # against the answer itself: its predictions and its warnings
    for label, n in Counter(body["predictions"]).items():
        assert values[f"Answers {label}"] == n
    warned = Counter(w["field"] for r in body["results"] for w in r["warnings"])
    assert {k: v for k, v in values.items() if k.startswith("OutOfRange ")} == \
        {f"OutOfRange {k}": v for k, v in warned.items()}
    assert line["model"] == {"name": "dect_model", "version": "1.0.0"}


def test_the_log_line_counts_inputs_per_training_band_never_the_values(caplog):
    caplog.set_level(logging.INFO, logger="predict")
    rng = np.random.default_rng(0)
    features = manifest()["features"]
    rows = [{f["name"]: float(rng.uniform(f["min"] * 0.5, f["max"] * 1.5)) for f in features}
            for _ in range(200)]
    call(predict_event(rows, explain="false"))
    (line,) = invocation_lines(caplog)
    for f in features:  # by hand: the band between the manifest's quantiles of each value
        p = f["percentiles"]
        edges = [f["min"], p["p5"], p["p25"], f["median"], p["p75"], p["p95"], f["max"]]
        expected = [0] * 8
        for r in rows:
            v = r[f["name"]]
            expected[7 if v > f["max"] else sum(v >= e for e in edges)] += 1
        assert line["inputs"][f["name"]] == expected, f["name"]
    text = json.dumps(line)
    assert not any(repr(round(v, 6))[:8] in text for v in rows[0].values())


def test_a_server_error_counts_and_a_request_with_no_rows_has_no_inputs(caplog, monkeypatch,
                                                                         tmp_path):
    caplog.set_level(logging.INFO, logger="predict")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))  # no manifest there: 503
    status, _, _ = call(predict_event([example()]))
    (line,) = invocation_lines(caplog)
    assert status == 503 and check_emf(line)["ServerErrors"] == 1 and "inputs" not in line


def test_on_lambda_the_line_is_written_bare_to_stdout_for_cloudwatch():
    # CloudWatch extracts EMF only from a log event that is the JSON object itself
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import predict; "
            "predict.handler(json.loads(sys.argv[2]), None)")
    ev = predict_event([example()])
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "netlify" / "functions"),
                          json.dumps(ev)], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_NAME": "dect-predict"})
    lines = [json.loads(t) for t in out.stdout.splitlines() if t.startswith("{")]
    (line,) = [t for t in lines if t.get("event") == "invocation"]
    assert line["Function"] == "dect-predict" and check_emf(line)["Rows"] == 1


def test_a_413_answer_counts_its_rows_asked_but_no_answers(caplog):
    caplog.set_level(logging.INFO, logger="predict")
    status, _, _ = call(predict_event(far_rows(1000)))
    (line,) = invocation_lines(caplog)
    values = check_emf(line)
    assert status == 413 and line["status"] == 413 and values["Rows"] == 1000
    assert not [k for k in values if k.startswith(("Answers ", "OutOfRange "))]
