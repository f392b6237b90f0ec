"""The OpenAPI document is valid, generated from the manifest, and real answers conform to it."""
import json

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from support import call, event, example, manifest

NAMES = [f["name"] for f in manifest()["features"]]


@pytest.fixture(scope="module")
def doc():
    status, _, body = call(event("GET", "/api/openapi.json"))
    assert status == 200
    return body


def conforms(doc, pointer, instance):
    """Validate an instance against the schema at a JSON pointer inside the OpenAPI document."""
    Draft202012Validator({**doc, "$ref": pointer}).validate(instance)


def test_the_document_is_valid_openapi_3_1(doc):
    validate(doc)
    assert doc["openapi"] == "3.1.0"


def test_every_feature_is_in_the_schema_with_its_type_and_range(doc):
    row = doc["components"]["schemas"]["Row"]
    assert row["required"] == NAMES
    for feature in manifest()["features"]:
        schema = row["properties"][feature["name"]]
        assert schema["type"] == "number"
        assert f"{feature['min']:g} to {feature['max']:g}" in schema["description"]


PREDICT = "#/paths/~1api~1predict/post"


@pytest.mark.parametrize("body", [
    {"features": example()},
    {"instances": [example(), example("benign")]},
    {"instances": [[example()[n] for n in NAMES]]},
    {"dataframe_records": [example()]},
    {"dataframe_split": {"columns": NAMES, "data": [[example()[n] for n in NAMES]]}},
])
def test_accepted_bodies_and_their_answers_conform(doc, body):
    conforms(doc, PREDICT + "/requestBody/content/application~1json/schema", body)
    status, _, answer = call(event("POST", "/api/predict", body=body))
    assert status == 200
    conforms(doc, PREDICT + "/responses/200/content/application~1json/schema", answer)


@pytest.mark.parametrize("body, status", [
    ({"features": {}}, "400"), ({"instances": [example()] * 1001}, "413")])
def test_error_answers_conform(doc, body, status):
    got, _, answer = call(event("POST", "/api/predict", body=body))
    assert str(got) == status
    conforms(doc, PREDICT + f"/responses/{status}/content/application~1json/schema", answer)


def test_a_body_the_schema_rejects_is_rejected_by_the_function(doc):
    from jsonschema import ValidationError
    body = {"features": {**example(), "extra": 1}}
    with pytest.raises(ValidationError):
        conforms(doc, PREDICT + "/requestBody/content/application~1json/schema", body)
    assert call(event("POST", "/api/predict", body=body))[0] == 400


def test_the_document_follows_a_packaged_model(tmp_path, monkeypatch):
    m = manifest()
    m["features"] = [{"name": "colour", "type": "categorical", "categories": ["red", "blue"]},
                     {"name": "rooms", "type": "integer", "min": 1, "max": 6, "median": 3}]
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    body = call(event("GET", "/api/openapi.json"))[2]
    validate(body)
    props = body["components"]["schemas"]["Row"]["properties"]
    assert props["colour"]["enum"] == ["red", "blue"]
    assert props["rooms"]["type"] == "integer"
