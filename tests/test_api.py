"""The function's contract for developers: formats, validation, headers, explanations."""
import csv
import io
import json
import logging

import numpy as np
import pytest

from predict import app
from support import call, event, example, manifest

NAMES = [f["name"] for f in manifest()["features"]]
SECRET = 987654.321  # planted in bad bodies: must never come back


def row(**changes):
    return {**example("malignant"), **changes}


def csv_body(rows, names=NAMES):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(names)
    for r in rows:
        writer.writerow([r.get(n, "") for n in names])
    return out.getvalue()


def post(body, *, content_type="application/json", query=None, headers=None):
    raw = body if isinstance(body, str) else json.dumps(body)
    return event("POST", "/api/predict", body=raw, query=query,
                 headers={"content-type": content_type, **(headers or {})})


BAD_INPUTS = [
    # (case, event, status, code)
    ("invalid json", post('{"features": {"mean radius": 987654.321,'), 400, "invalid_json"),
    ("not an object", post([1, 2, SECRET]), 400, "invalid_format"),
    ("no format key", post({"rows": [row()]}), 400, "invalid_format"),
    ("two format keys", post({"features": row(), "instances": [row()]}), 400, "invalid_format"),
    ("extra key", post({"features": row(), "secret": SECRET}), 400, "invalid_format"),
    ("features not an object", post({"features": [SECRET]}), 400, "invalid_format"),
    ("instances not a list", post({"instances": {"a": SECRET}}), 400, "invalid_format"),
    ("instance of wrong length", post({"instances": [[SECRET, 1.0]]}), 400, "invalid_format"),
    ("instance not a row", post({"instances": [SECRET]}), 400, "invalid_format"),
    ("split without data", post({"dataframe_split": {"columns": NAMES}}), 400, "invalid_format"),
    ("split row of wrong length", post({"dataframe_split": {"columns": NAMES, "data": [[SECRET]]}}),
     400, "invalid_format"),
    ("no rows", post({"instances": []}), 400, "no_rows"),
    ("missing feature", post({"features": {k: v for k, v in row().items()
                                           if k != "mean radius"}}), 400, "missing_feature"),
    ("null feature", post({"features": row(**{"mean radius": None})}), 400, "missing_feature"),
    ("unknown feature", post({"features": row(colour=SECRET)}), 400, "unknown_feature"),
    ("text value", post({"features": row(**{"mean radius": str(SECRET)})}), 400, "invalid_type"),
    ("boolean value", post({"features": row(**{"mean radius": True})}), 400, "invalid_type"),
    ("NaN", post('{"features": ' + json.dumps(row())[:-1] + ', "mean radius": NaN}}'.replace(
        '"mean radius": ' + json.dumps(row()["mean radius"]) + ", ", "", 1)), 400, "non_finite"),
    ("Infinity", post(json.dumps({"features": row(**{"mean radius": 1.0})}).replace(
        '"mean radius": 1.0', '"mean radius": -Infinity')), 400, "non_finite"),
    ("overflow", post(json.dumps({"features": row(**{"mean radius": 1.0})}).replace(
        '"mean radius": 1.0', '"mean radius": 1e999')), 400, "non_finite"),
    ("beyond float32", post({"features": row(**{"mean radius": 1e39})}), 400, "too_large"),
    ("bad explain parameter", post({"features": row()}, query={"explain": "maybe"}), 400,
     "invalid_parameter"),
    ("bad row in a batch", post({"instances": [row(), row(**{"area error": "x"})]}), 400,
     "invalid_type"),
    ("csv bad value", post(csv_body([row(**{"mean radius": "abc"})]), content_type="text/csv"),
     400, "invalid_type"),
    ("csv missing column", post(csv_body([row()], NAMES[1:]), content_type="text/csv"), 400,
     "missing_feature"),
    ("csv ragged row", post(csv_body([row()]) + "1,2\n", content_type="text/csv"), 400,
     "invalid_csv"),
    ("csv header only", post(",".join(NAMES) + "\n", content_type="text/csv"), 400, "no_rows"),
    ("wrong content type", post({"features": row()}, content_type="application/xml"), 415,
     "unsupported_media_type"),
    ("body too large", post({"features": row(), "pad": "x" * (app.MAX_BODY_BYTES + 1)}), 413,
     "payload_too_large"),
    ("too many rows", post({"instances": [row()] * (app.MAX_ROWS + 1)}), 413, "too_many_rows"),
    ("bad base64", {**post({"features": row()}), "isBase64Encoded": True, "body": "%%%"}, 400,
     "invalid_event"),
    ("not an http event", {"Records": [{"s3": {}}]}, 400, "invalid_event"),
    ("unknown route", event("GET", "/api/secret"), 404, "not_found"),
    ("wrong method", event("GET", "/api/predict"), 405, "method_not_allowed"),
]


@pytest.mark.parametrize("case, ev, status, code", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_its_precise_status_and_code(case, ev, status, code):
    got_status, _, body = call(ev)
    assert (got_status, body["error"]["code"]) == (status, code)


@pytest.mark.parametrize("case, ev, status, code", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_every_failure_has_the_one_error_shape_and_never_echoes_input(case, ev, status, code):
    got_status, headers, body = call(ev)
    assert headers["Content-Type"] == "application/json"
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    assert str(SECRET) not in json.dumps(body)
    assert "Traceback" not in json.dumps(body)


def test_field_errors_name_the_row_and_field_of_a_batch():
    body = call(post({"instances": [row(), row(**{"area error": "x"}), row(**{"mean area": None})]}))[2]
    details = body["error"]["details"]
    assert [(d["row"], d["field"], d["code"]) for d in details] == [
        (1, "area error", "invalid_type"), (2, "mean area", "missing_feature")]
    assert body["error"]["message"].startswith("row 1, field 'area error'")


def test_wrong_method_lists_the_allowed_ones():
    _, headers, _ = call(event("DELETE", "/api/model"))
    assert headers["Allow"] == "GET, OPTIONS"


@pytest.fixture(scope="module")
def rows():
    return [ex["features"] for ex in manifest()["examples"]] + [row(**{"worst radius": 12.0})]


def test_every_input_format_gives_the_same_predictions(rows):
    expected = [call(post({"features": r}))[2]["predictions"][0] for r in rows]
    as_lists = [[r[n] for n in NAMES] for r in rows]
    bodies = [
        post({"instances": rows}),
        post({"instances": as_lists}),
        post({"inputs": as_lists}),
        post({"dataframe_records": rows}),
        post({"dataframe_split": {"columns": NAMES, "data": as_lists}}),
        post({"dataframe_split": {"columns": NAMES[::-1], "data": [r[::-1] for r in as_lists]}}),
        post(csv_body(rows), content_type="text/csv"),
        post(json.dumps({"instances": rows}), content_type="application/x-www-form-urlencoded"),
    ]
    for ev in bodies:
        status, _, body = call(ev)
        assert status == 200
        assert body["predictions"] == expected


def test_csv_in_csv_out(rows):
    status, headers, text = call(post(csv_body(rows), content_type="text/csv",
                                      headers={"accept": "text/csv"}))
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(text)))
    expected = call(post({"instances": rows}))[2]
    assert [r["prediction"] for r in table] == expected["predictions"]
    assert float(table[0]["probability_malignant"]) == pytest.approx(
        expected["results"][0]["probabilities"]["malignant"])


def test_explanations_can_be_turned_off(rows):
    body = call(post({"instances": rows}, query={"explain": "false"}))[2]
    assert all("explanation" not in r for r in body["results"])


def test_tree_contributions_add_up_to_the_predicted_probability(rows):
    for result in call(post({"instances": rows}))[2]["results"]:
        ex = result["explanation"]
        total = ex["base_value"] + sum(c["contribution"] for c in ex["contributions"])
        assert total == pytest.approx(result["probabilities"][result["label"]], abs=1e-12)
        assert ex["target"] == result["label"]
        assert all(s["op"] in ("<=", ">") for s in ex["path"])
        for step in ex["path"]:
            assert (step["value"] <= step["threshold"]) == (step["op"] == "<=")


def test_values_outside_the_training_range_are_warned_about():
    feature = next(f for f in manifest()["features"] if f["name"] == "mean radius")
    result = call(post({"features": row(**{"mean radius": feature["max"] * 3})}))[2]["results"][0]
    assert [w["field"] for w in result["warnings"]] == ["mean radius"]
    assert result["warnings"][0]["code"] == "out_of_range"


@pytest.mark.parametrize("version", ["netlify", "rest", "v2"])
def test_the_three_event_shapes_get_the_same_answer(version):
    ev = event("POST", "/api/predict", body={"features": row()}, query={"explain": "false"},
               version=version)
    status, _, body = call(ev)
    assert status == 200
    assert body["predictions"] == ["malignant"]
    assert "explanation" not in body["results"][0]


def test_base64_bodies_are_decoded():
    import base64
    ev = post({"features": row()})
    ev.update(body=base64.b64encode(ev["body"].encode()).decode(), isBase64Encoded=True)
    assert call(ev)[0] == 200


def test_model_route_has_an_etag_and_answers_304_when_unchanged():
    _, headers, _ = call(event("GET", "/api/model"))
    assert headers["ETag"] == f'"{manifest()["artifact"]["sha256"]}"'
    status, _, body = call(event("GET", "/api/model", headers={"if-none-match": headers["ETag"]}))
    assert (status, body) == (304, "")
    assert call(event("GET", "/api/model", headers={"if-none-match": '"other"'}))[0] == 200


def test_preflight_answers_cors_and_allowed_methods():
    status, headers, _ = call(event("OPTIONS", "/api/predict", headers={"origin": "https://x.org"}))
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in headers["Access-Control-Allow-Methods"]


def test_cors_origins_come_from_the_setting(monkeypatch):
    monkeypatch.setattr(app, "CORS_ORIGINS", ["https://good.org"])
    _, good, _ = call(event("GET", "/api/health", headers={"origin": "https://good.org"}))
    _, bad, _ = call(event("GET", "/api/health", headers={"origin": "https://evil.org"}))
    assert good["Access-Control-Allow-Origin"] == "https://good.org"
    assert "Access-Control-Allow-Origin" not in bad


def test_predictions_carry_timing_version_and_no_store():
    _, headers, _ = call(post({"features": row()}))
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Model-Version"] == "1.0.0"
    assert {p.split(";")[0] for p in headers["Server-Timing"].split(", ")} == {"load", "predict",
                                                                              "total"}


def test_one_structured_log_line_per_invocation_without_input_values(caplog):
    caplog.set_level(logging.INFO, logger="predict")
    call(post({"features": row(**{"mean radius": 17.123456})}))
    lines = [json.loads(r.getMessage()) for r in caplog.records
             if json.loads(r.getMessage()).get("event") == "invocation"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["route"], line["status"], line["cold"], line["rows"]) == ("/predict", 200, True, 1)
    assert line["duration_ms"] > 0
    assert "17.123456" not in caplog.text


def test_health_reports_cold_then_warm():
    assert call(event("GET", "/api/health"))[2]["warm"] is False
    call(post({"features": row()}))
    assert call(event("GET", "/api/health"))[2]["warm"] is True


def test_linear_contributions_add_up_to_the_decision_function(tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from predict.explain import explain_rows
    X, y = load_iris(return_X_y=True)
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    predicted = est.predict(X)
    decision = est.decision_function(X)
    for i, ex in enumerate(explain_rows(est, X, ["a", "b", "c", "d"], list(predicted))):
        total = ex["base_value"] + sum(c["contribution"] for c in ex["contributions"])
        assert total == pytest.approx(decision[i, predicted[i]])
        assert np.isfinite(total)
