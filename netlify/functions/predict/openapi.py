"""The OpenAPI 3.1 document of the function, generated from the served model's manifest.

Owns: the schema of each feature (type, range, categories), of each accepted body format,
of the answer and of the one error body.
"""
from __future__ import annotations

import json
import re

from .inputs import MAX_MAGNITUDE, MAX_WHOLE, NUMERIC_TYPES, PARAMS

EXPLAIN_VALUES = ("true", "false", "1", "0")


def readable(value: float, figures: int = 4) -> float | int:
    """Given a number, return it rounded to a few significant figures (no float noise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, int) or float(value).is_integer():
        return int(value)
    return float(f"{value:.{figures}g}")


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _feature_schema(feature: dict) -> dict:
    description = _sentence(feature.get("description") or feature.get("label") or feature["name"])
    if feature.get("unit"):
        description += f" Unit: {feature['unit']}."
    schema = {**_value_type(feature), "description": description}
    if feature.get("min") is not None:
        schema["description"] += (f" Range seen in training: {feature['min']:g} to "
                                  f"{feature['max']:g}; values outside it are accepted, "
                                  "with a warning.")
    if feature["type"] in NUMERIC_TYPES:
        schema["description"] += f" At most {LARGEST_WORDS}, in size."
    if feature["type"] == "text":
        schema["description"] += f" Any text of at most {feature['max_length']:,} characters."
    if feature.get("optional"):
        schema["description"] += " May be null or left out: not measured."
    if feature.get("median") is not None:
        schema["examples"] = [readable(feature["median"])]
    return schema


# The largest size a number may have: what fits a 32-bit float, which trees compute in.
# The schema keeps the exact bound (generated clients and fuzzers test it); the
# description says it in words.
LARGEST_WORDS = "the largest 32-bit float, about 3.4 × 10³⁸"


def _value_type(feature: dict) -> dict:
    """Return the JSON Schema of one feature's value, without its description."""
    optional = bool(feature.get("optional"))
    if feature["type"] == "categorical":
        return {"enum": feature["categories"] + [None] * optional}
    if feature["type"] == "text":
        return {"type": ["string", "null"] if optional else "string",
                "maxLength": feature["max_length"]}
    bound = MAX_WHOLE if feature["type"] == "integer" else MAX_MAGNITUDE
    return {"type": [feature["type"], "null"] if optional else feature["type"],
            "minimum": -bound, "maximum": bound}


def _explanation_schema() -> dict:
    """Return the schema of one row's explanation: a tree's path, an ensemble's or a linear
    model's terms per feature, or null."""
    number = {"type": "number"}
    contribution = {"type": "object", "required": ["feature", "contribution"], "properties": {
        "feature": {"type": "string"},
        "contribution": {**number, "description": "this feature's part of the answer, in the "
                         "units of `space`: positive pushes towards `target`"},
        "value": {"type": "string", "description": "the row's category (or text) for this "
                  "feature, when it is not a number (tree_paths and linear only)"}}}
    step = {"type": "object", "required": ["feature", "op", "threshold", "value", "before",
                                           "after", "text"], "properties": {
        "feature": {"type": "string"}, "op": {"enum": ["<=", ">"]},
        "threshold": {**number, "description": "the tree's cut on this feature"},
        "value": {**number, "description": "the row's value of the feature"},
        "before": {**number, "description": "share of training samples of `target` (or the "
                   "mean value, for a regression tree) at the node before this step"},
        "after": {**number, "description": "the same, at the node after this step"},
        "text": {"type": "string"}}}
    change = {"type": "object", "required": ["feature", "from", "to", "op", "threshold", "label"],
              "description": "the smallest change of one feature on the path that makes the "
                             "tree give another answer, the other features unchanged",
              "properties": {
                  "feature": {"type": "string"}, "from": number,
                  "to": {**number, "description": "a value just past `threshold`"},
                  "op": {"enum": ["<=", ">"], "description": "`to` is at most, or above, "
                         "`threshold`"},
                  "threshold": number,
                  "label": {"description": "the answer the tree gives with that change"}}}
    common = {"target": {"description": "the answer (label) or value explained"},
              "base_value": {**number, "description": "where the contributions start from, "
                             "in the units of `space`. decision_path: the root's share of "
                             "`target` (or mean value); tree_paths: the ensemble's mean score "
                             "over its training rows; linear: the score of the typical case "
                             "(every feature at its `default` in the manifest)"},
              "contributions": {"type": "array", "items": contribution,
                                "description": "largest first; zero contributions left out"}}
    tree = {"type": "object", "required": ["method", "space", "target", "base_value",
                                           "contributions", "path", "leaf"], "properties": {
        "method": {"const": "decision_path"}, "space": {"enum": ["probability", "value"]},
        **common, "path": {"type": "array", "items": step, "description": "root to leaf"},
        "leaf": {"type": "object", "required": ["samples"], "properties": {
            "samples": {"type": "integer", "description": "training samples that ended in "
                        "this leaf"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"},
                       "description": "of those, how many had each label"}}},
        "changes": {"type": "array", "items": change, "description": "classifiers only; "
                    "smallest relative change first"}}}
    additive = {"type": "object", "required": ["method", "space", "target", "base_value",
                                               "contributions"], "properties": {
        "method": {"enum": ["tree_paths", "linear"], "description": "tree_paths: a tree "
                   "ensemble's path contributions (Saabas), combined as it combines its trees; "
                   "linear: a linear model's exact terms, composed through the affine steps "
                   "before it (scalers, one-hot, PCA...)"},
        "space": {"enum": ["probability", "log-odds", "score", "value"], "description":
                  "probability: a forest's share of `target`; log-odds: the log-odds (or "
                  "logit) of `target`; score: a classifier's decision score for `target`; "
                  "value: a regressor's predicted value"}, **common}}
    return {"description": "why the model answered this; null when the model offers none "
                           "(decision trees, tree ensembles and linear models do, alone or "
                           "after steps each input can be traced through)",
            "oneOf": [{"type": "null"}, tree, additive]}


WARNING = {"type": "object", "required": ["field", "code", "message"], "properties": {
    "field": {"type": "string"}, "code": {"enum": ["out_of_range"]},
    "message": {"type": "string"}, "min": {"type": "number"}, "max": {"type": "number"}},
    "description": "the value is outside the range seen in training: it is used, but the "
                   "prediction is less reliable"}


def _csv_cell(feature: dict) -> str:
    if feature["type"] == "categorical":
        cell = "(" + "|".join(re.escape(_csv_text(str(c))) for c in feature["categories"]) + ")"
    elif feature["type"] == "text":
        cell = r'("([^"]|"")*"|[^,"\r\n]+)'
    else:
        cell = r"-?[0-9]{1,6}" if feature["type"] == "integer" else r"-?[0-9]{1,6}(\.[0-9]{1,6})?"
    return f"({cell})?" if feature.get("optional") or feature["type"] == "text" else cell


def _csv_text(value: str) -> str:
    quoted = value.replace('"', '""')
    return f'"{quoted}"' if any(c in value for c in ',"\r\n') else value


def _csv_pattern(features: list[dict]) -> str:
    """Return a regular expression for a CSV body: the header in model order, then rows."""
    header = re.escape(",".join(_csv_text(f["name"]) for f in features))
    row = ",".join(_csv_cell(f) for f in features)
    return f"^{header}\r?\n({row}\r?\n)*{row}(\r?\n)?$"


def _csv_example(manifest: dict) -> str:
    names = [f["name"] for f in manifest["features"]]
    examples = [ex["features"] for ex in manifest.get("examples", [])
                if set(names) <= set(ex.get("features", {}))]
    rows = [names] + [["" if ex[n] is None else str(readable(ex[n])) for n in names]
                      for ex in examples[:1]]
    return "".join(",".join(_csv_text(v) for v in row) + "\n" for row in rows)


def _bytes(n: int) -> str:
    """Given a byte count, return it for a person: '1 MiB (1,048,576 bytes)'."""
    for unit, size in (("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def json_ok(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return json_ok({"$ref": "#/components/schemas/Error"}, description)


def _paths(routes, operations: dict) -> dict:
    """Given the route table and each operation's details, return the document's paths."""
    paths: dict = {}
    for route in routes:
        details = operations.get(route.operation_id, {"responses": {"200": {"description": "OK"}}})
        paths.setdefault("/api" + route.path, {})[route.method.lower()] = {
            "operationId": route.operation_id, "summary": route.summary, **details}
    return paths


def openapi_document(manifest: dict, routes, *, max_rows: int, max_body_bytes: int) -> dict:
    """Given the manifest, the route table and the request limits, return the OpenAPI 3.1
    document; each route's operation id and summary come from the table."""
    features = manifest["features"]
    names = [f["name"] for f in features]
    classification = manifest.get("task") == "classification"
    row = {"type": "object", "additionalProperties": False,
           "required": [f["name"] for f in features if not f.get("optional")],
           "properties": {f["name"]: _feature_schema(f) for f in features}}
    value_list = {"type": "array", "minItems": len(names), "maxItems": len(names),
                  "prefixItems": [_feature_schema(f) for f in features], "items": False,
                  "description": "values in feature order: " + ", ".join(names)}
    # dataframe_split's columns may come in any order, so a cell can only be typed exactly
    # when every feature has the same type.
    cell_types = {json.dumps(_value_type(f), sort_keys=True): _value_type(f) for f in features}
    cell = next(iter(cell_types.values())) if len(cell_types) == 1 \
        else {"anyOf": list(cell_types.values())}
    rows = {"type": "array", "minItems": 1, "maxItems": max_rows,
            "items": {"$ref": "#/components/schemas/Row"}}
    params = {"type": ["object", "null"], "description": "MLflow's inference parameters: "
              "accepted and ignored (a scikit-learn estimator's predict takes none)"}
    columns = {"type": "object", "additionalProperties": False, "minProperties": 1,
               "required": row["required"],
               "properties": {f["name"]: {"type": "array", "minItems": 1, "maxItems": 1,
                                          "items": _feature_schema(f)} for f in features},
               "description": "column-wise (MLflow): each feature's values, one per row. "
                              "JSON Schema cannot say that every column has the same length, "
                              "so this schema describes one row; up to the row limit are "
                              "accepted when every column has as many values"}
    request = {"oneOf": [
        {"type": "object", "required": ["features"], "additionalProperties": False,
         "properties": {"features": {"$ref": "#/components/schemas/Row"}, PARAMS: params}},
        {"type": "object", "required": ["instances"], "additionalProperties": False,
         "properties": {PARAMS: params,
                        "instances": {"type": "array", "minItems": 1, "maxItems": max_rows,
                                      "items": {"oneOf": [{"$ref": "#/components/schemas/Row"},
                                                          value_list]}}}},
        {"type": "object", "required": ["inputs"], "additionalProperties": False,
         "properties": {PARAMS: params, "inputs": {"oneOf": [
             {"type": "array", "minItems": 1, "maxItems": max_rows,
              "items": {"oneOf": [{"$ref": "#/components/schemas/Row"}, value_list]}},
             columns]}}},
        {"type": "object", "required": ["dataframe_records"], "additionalProperties": False,
         "properties": {"dataframe_records": rows, PARAMS: params}},
        {"type": "object", "required": ["dataframe_split"], "additionalProperties": False,
         "properties": {PARAMS: params, "dataframe_split": {
             "type": "object", "required": ["columns", "data"],
             "properties": {"columns": {"type": "array", "items": {"enum": names},
                                        "uniqueItems": True,
                                        "minItems": len(row["required"]),
                                        "maxItems": len(names),
                                        "description": "the feature names, in any order "
                                                       "(optional ones may be left out)"},
                            "data": {"type": "array", "minItems": 1, "maxItems": max_rows,
                                     "items": {"type": "array", "items": cell,
                                               "minItems": len(row["required"]),
                                               "maxItems": len(names)}}}}}},
    ]}
    # the labels as the model answers them (JSON numbers or booleans for int, float or bool
    # classes: the manifest's `classes`), else as text
    label = {"enum": manifest.get("classes", manifest.get("labels") or [])} if classification \
        else {"type": "number"}
    result = {"type": "object", "required": ["warnings"], "properties": {
        "label": label, "value": {"type": "number"},
        "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
        "explanation": {"$ref": "#/components/schemas/Explanation"},
        "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Warning"}}}}
    prediction = {"type": "object", "required": ["model", "predictions", "results"],
                  "properties": {"model": {"type": "object"}, "format": {"type": "string"},
                                 "predictions": {"type": "array", "items": label},
                                 "results": {"type": "array", "items": result}}}
    operations = {
        "health": {"responses": {
            "200": json_ok({"type": "object", "required": ["ready"],
                            "properties": {"ready": {"const": True}}},
                           "ready: a prediction would succeed (the model is loaded)"),
            "503": _error("not ready: the model cannot be loaded or served (named)")}},
        "model": {"responses": {
            "200": json_ok({"type": "object"}, "the manifest; ETag is the pickle's SHA-256"),
            "304": {"description": "unchanged since the ETag in If-None-Match"},
            "503": _error("the model is unavailable")}},
        "openapi": {"responses": {"200": json_ok({"type": "object"}, "OpenAPI 3.1")}},
        "predict": {
            "parameters": [{"name": "explain", "in": "query", "required": False,
                            "schema": {"enum": list(EXPLAIN_VALUES)},
                            "description": "false or 0 skips explanations (faster)"}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": request},
                "text/csv": {"schema": {"type": "string", "pattern": _csv_pattern(features)},
                             "example": _csv_example(manifest)}}},
            "responses": {
                "200": {"description": "one result per row, in order", "content": {
                    "application/json": {"schema": prediction},
                    "text/csv": {"schema": {"type": "string"}}}},
                "400": _error("invalid body, format or values; details name each field"),
                "413": _error(f"body over {_bytes(max_body_bytes)} or over "
                              f"{max_rows:,} rows, or an answer that would be over "
                              "limits.max_response_bytes (GET /api/health): send fewer "
                              "rows, or explain=false"),
                "415": _error("content type is neither application/json nor text/csv"),
                "503": _error("the model is unavailable")}},
    }
    mlflow_errors = {status: json_ok({"$ref": "#/components/schemas/MlflowError"},
                                     answer["description"])
                     for status, answer in operations["predict"]["responses"].items()
                     if status != "200"}
    operations["invocations"] = {
        "requestBody": operations["predict"]["requestBody"],
        "responses": {**mlflow_errors, "200": json_ok(
            {"type": "object", "required": ["predictions"],
             "properties": {"predictions": {"type": "array", "items": label}}},
            "one prediction per row, in order, as MLflow's scoring server answers")}}
    operations["ping"] = {"responses": {
        "200": {"description": "ready", "content": {"text/plain": {"schema": {"type": "string"}}}},
        "503": _error("the model is unavailable")}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{manifest.get('name')} prediction API",
                 "version": str(manifest.get("version")),
                 "description": manifest.get("description", "")},
        "servers": [{"url": "/", "description": "the site that serves this document; the "
                                                 "function's own URL takes the same paths"}],
        "paths": _paths(routes, operations),
        "components": {"schemas": {
            "Row": row, "Explanation": _explanation_schema(), "Warning": WARNING,
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message", "details"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "details": {"type": "array", "items": {"type": "object"}}}}}},
            "MlflowError": {"type": "object", "required": ["error_code", "message"],
                            "description": "MLflow's scoring server's error body "
                                           "(on /invocations only)",
                            "properties": {"error_code": {"type": "string"},
                                           "message": {"type": "string"},
                                           "details": {"type": "array",
                                                       "items": {"type": "object"}}}},
        }},
    }
