"""The function's contract for developers: formats, validation, headers, explanations."""
import csv
import io
import json
import logging

import numpy as np
import pytest

from predict.settings import Settings
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
    ("NaN", post(json.dumps({"features": row(**{"mean radius": 1.0})}).replace(
        '"mean radius": 1.0', '"mean radius": NaN')), 400, "non_finite"),
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
    ("key sent twice", post(json.dumps({"features": row(**{"mean radius": 1.0})})[:-2]
                            + f', "mean radius": {SECRET}}}}}'), 400, "duplicate_feature"),
    ("csv column sent twice", post(csv_body([row()], [*NAMES, "mean radius"]),
                                   content_type="text/csv"), 400, "duplicate_feature"),
    ("split column sent twice", post({"dataframe_split": {
        "columns": [*NAMES, "mean radius"], "data": [[*row().values(), SECRET]]}}), 400,
     "duplicate_feature"),
    ("params not an object", post({"instances": [row()], "params": [SECRET]}), 400,
     "invalid_format"),
    ("inputs columns of unequal length", post({"inputs": {**{n: [1.0] for n in NAMES},
                                                          "mean radius": [1.0, SECRET]}}),
     400, "invalid_format"),
    ("inputs column not an array", post({"inputs": {**{n: [1.0] for n in NAMES},
                                                    "mean radius": SECRET}}), 400,
     "invalid_format"),
    ("list row with text", post({"instances": [[*row().values()][:-1] + [str(SECRET)]]}), 400,
     "invalid_type"),
    ("list row with a boolean", post({"inputs": [[True, *[*row().values()][1:]]]}), 400,
     "invalid_type"),
    ("csv missing column in many rows", post(csv_body([row()] * 3, NAMES[1:]),
                                             content_type="text/csv"), 400, "missing_feature"),
    ("wrong content type", post({"features": row()}, content_type="application/xml"), 415,
     "unsupported_media_type"),
    ("body too large", post({"features": row(), "pad": "x" * (Settings.max_body_bytes + 1)}), 413,
     "payload_too_large"),
    ("too many rows", post({"instances": [row()] * (Settings.max_rows + 1)}), 413, "too_many_rows"),
    ("bad base64", {**post({"features": row()}), "isBase64Encoded": True, "body": "%%%"}, 400,
     "invalid_event"),
    ("not an http event", {"Records": [{"s3": {}}]}, 400, "invalid_event"),
    ("integer of 5000 digits", post('{"features": {"mean radius": ' + "9" * 5000 + "}}"), 400,
     "invalid_json"),
    ("unknown route", event("GET", "/api/secret"), 404, "not_found"),
    ("wrong method", event("GET", "/api/predict"), 405, "method_not_allowed"),
]


FORMATS = ("; send one of features, instances, inputs, dataframe_records, dataframe_split "
           "(or a text/csv body)")
# The words a person reads for each case of BAD_INPUTS, exactly.
MESSAGES = {
    'invalid json': 'the body is not valid JSON (Expecting property name enclosed in double quotes at line 1, column 41)',
    'not an object': 'the body must be a JSON object, received array' + FORMATS,
    'no format key': 'the body has no known format key' + FORMATS,
    'two format keys': 'the body must have exactly one format key' + FORMATS,
    'extra key': "unexpected key 'secret' beside 'features'" + FORMATS,
    'features not an object': "'features' must be an object of name: value, received array" + FORMATS,
    'instances not a list': "'instances' must be an array of rows, received object" + FORMATS,
    'instance of wrong length': "row 0 has 2 values; expected 30, one per feature in the model's order",
    'instance not a row': "row 0 of 'instances' must be an object, received number" + FORMATS,
    'split without data': "'dataframe_split' must be an object with 'columns' and 'data' arrays" + FORMATS,
    'split row of wrong length': "row 0 of 'dataframe_split.data' must be an array of 30 values",
    'no rows': 'the request has no rows',
    'missing feature': "field 'mean radius': expected a number value, received nothing",
    'null feature': "field 'mean radius': expected a number value, received nothing",
    'unknown feature': "field 'colour': this feature is not one the model takes",
    'text value': "field 'mean radius': expected a number, received string",
    'boolean value': "field 'mean radius': expected a number, received boolean",
    'NaN': "field 'mean radius': expected a finite number, received NaN or infinity",
    'Infinity': "field 'mean radius': expected a finite number, received NaN or infinity",
    'overflow': "field 'mean radius': expected a finite number, received NaN or infinity",
    'beyond float32': "field 'mean radius': expected a number between -3.40282e+38 and 3.40282e+38",
    'bad explain parameter': "query parameter 'explain' must be one of true, false, 1, 0",
    'bad row in a batch': "row 1, field 'area error': expected a number, received string",
    'csv bad value': "field 'mean radius': expected a number, received text",
    'csv missing column': "field 'mean radius': expected a number value in every row; there "
                          "is no column for it",
    'csv ragged row': 'CSV row 1 has 2 cells; the header has 30',
    'csv header only': 'the request has no rows',
    'key sent twice': "the feature 'mean radius' is sent twice; send each once",
    'csv column sent twice': "the feature 'mean radius' is sent twice; send each once",
    'split column sent twice': "the feature 'mean radius' is sent twice; send each once",
    'params not an object': "'params' must be an object, received array" + FORMATS,
    'inputs columns of unequal length': "the columns of 'inputs' must have one value per row "
                                        "each; their lengths differ" + FORMATS,
    'inputs column not an array': "column 'mean radius' of 'inputs' must be an array of "
                                  "values, received number" + FORMATS,
    'list row with text': "field 'worst fractal dimension': expected a number, received string",
    'list row with a boolean': "field 'mean radius': expected a number, received boolean",
    'csv missing column in many rows': "field 'mean radius': expected a number value in every "
                                       "row; there is no column for it",
    'wrong content type': 'expected Content-Type application/json or text/csv',
    'body too large': 'the body is over 1048576 bytes, the most accepted; split the rows over several requests',
    'too many rows': 'the request has 1001 rows; at most 1000 are accepted per request, split it',
    'bad base64': 'the body is marked base64 but is not',
    'not an http event': 'the event has no HTTP method or path',
    'integer of 5000 digits': 'the body has a number with too many digits',
    'unknown route': 'no route here; the routes are /api/health, /api/model, /api/openapi.json, '
                     '/api/predict, /api/invocations, /api/ping',
    'wrong method': 'this method is not allowed here; use POST, OPTIONS',
}


@pytest.mark.parametrize("case, ev, status, code", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_its_precise_status_code_and_message(case, ev, status, code):
    got_status, _, body = call(ev)
    assert (got_status, body["error"]["code"], body["error"]["message"]) == (
        status, code, MESSAGES[case])


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
    assert headers["Allow"] == "GET, HEAD, OPTIONS"


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


def test_a_missing_csv_column_is_reported_once_not_per_row():
    body = call(post(csv_body([row()] * 3, NAMES[1:]), content_type="text/csv"))[2]
    assert [(d["field"], d["code"], "row" in d) for d in body["error"]["details"]] == [
        ("mean radius", "missing_feature", False)]


def semicolon_csv(rows, *, line_end="\n"):
    """Return rows as a spreadsheet writes them where ',' is the decimal mark."""
    lines = [";".join(NAMES)] + [";".join(str(r[n]).replace(".", ",") for n in NAMES)
                                 for r in rows]
    return line_end.join(lines) + line_end


def test_rows_in_every_shape_get_the_same_answers(rows):
    """Lists, column-wise inputs, MLflow params, ';' CSV with decimal commas, CR-only line
    ends, a JSON body with a BOM: each gives the results the rows as objects get."""
    expected = call(post({"instances": rows}))[2]["results"]
    as_lists = [[r[n] for n in NAMES] for r in rows]
    columns = {n: [r[n] for r in rows] for n in NAMES}
    bodies = {
        "lists": post({"instances": as_lists}),
        "lists with params": post({"inputs": as_lists, "params": {"threshold": 0.5}}),
        "column-wise inputs": post({"inputs": columns}),
        "records with params": post({"dataframe_records": rows, "params": {}}),
        "split with params": post({"dataframe_split": {"columns": NAMES, "data": as_lists},
                                   "params": None}),
        "semicolons and decimal commas": post(semicolon_csv(rows), content_type="text/csv"),
        "CR-only line ends": post(csv_body(rows).replace("\r\n", "\r"),
                                  content_type="text/csv"),
        "JSON with a BOM": post("\ufeff" + json.dumps({"instances": rows})),
    }
    for shape, ev in bodies.items():
        status, _, body = call(ev)
        assert (shape, status) == (shape, 200), body
        assert (shape, body["results"]) == (shape, expected)


def test_csv_in_csv_out(rows):
    status, headers, text = call(post(csv_body(rows), content_type="text/csv",
                                      headers={"accept": "text/csv"}))
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(text)))
    expected = call(post({"instances": rows}))[2]
    assert [r["prediction"] for r in table] == expected["predictions"]
    assert float(table[0]["share_of_training_samples_in_leaf_malignant"]) == pytest.approx(
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
    monkeypatch.setenv("CORS_ORIGINS", " https://good.org, https://other.org ")
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


@pytest.mark.parametrize("flag", [False, "false", "False", None])
def test_a_body_not_marked_base64_is_read_as_text(flag):
    ev = {**post({"features": row()}), "isBase64Encoded": flag}
    assert call(ev)[0] == 200


def test_a_body_marked_base64_as_text_is_decoded():
    import base64
    ev = post({"features": row()})
    ev.update(body=base64.b64encode(ev["body"].encode()).decode(), isBase64Encoded="true")
    assert call(ev)[0] == 200


def test_head_answers_like_get_without_a_body():
    from support import app
    resp = app().handle_event(event("HEAD", "/api/health"))
    assert (resp["statusCode"], resp["body"]) == (200, "")
    assert int(resp["headers"]["Content-Length"]) > 0


@pytest.mark.parametrize("body, content_type", [
    ({"features": row(**{"k" * 5000: 1.0})}, "application/json"),
    ({"features": row(), "k" * 5000: 1}, "application/json"),
    (csv_body([row(**{"k" * 5000: 1.0})], [*NAMES, "k" * 5000]), "text/csv"),
], ids=["unknown feature", "unexpected key", "csv header cell"])
def test_echoed_field_names_are_cut_to_100_characters(body, content_type):
    status, _, answer = call(post(body, content_type=content_type))
    assert status == 400
    assert "k" * 101 not in json.dumps(answer)
