"""The OpenAPI 3.1 document of the function, generated from the served model's manifest.

Owns: the schema of each feature (type, range, categories), of each accepted body format,
of the answer and of the one error body.
"""
from __future__ import annotations

import json
import re

from .inputs import MAX_MAGNITUDE

EXPLAIN_VALUES = ("true", "false", "1", "0")


def _feature_schema(feature: dict) -> dict:
    description = feature.get("description") or feature.get("label") or feature["name"]
    schema = {**_value_type(feature), "description": description}
    if feature.get("min") is not None:
        schema["description"] += (f" Seen in training: {feature['min']:g} to {feature['max']:g}; "
                                  "values outside are accepted with a warning.")
    if feature.get("median") is not None:
        schema["examples"] = [feature["median"]]
    return schema


def _value_type(feature: dict) -> dict:
    """Return the JSON Schema of one feature's value, without its description."""
    if feature["type"] == "categorical":
        return {"enum": feature["categories"]}
    return {"type": feature["type"], "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE}


def _csv_cell(feature: dict) -> str:
    if feature["type"] == "categorical":
        return "(" + "|".join(re.escape(_csv_text(str(c))) for c in feature["categories"]) + ")"
    return r"-?[0-9]{1,6}" if feature["type"] == "integer" else r"-?[0-9]{1,6}(\.[0-9]{1,6})?"


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
    rows = [names] + [[str(ex[n]) for n in names] for ex in examples[:1]]
    return "".join(",".join(_csv_text(v) for v in row) + "\n" for row in rows)


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
    row = {"type": "object", "additionalProperties": False, "required": names,
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
    request = {"oneOf": [
        {"type": "object", "required": ["features"], "additionalProperties": False,
         "properties": {"features": {"$ref": "#/components/schemas/Row"}}},
        {"type": "object", "required": ["instances"], "additionalProperties": False,
         "properties": {"instances": {"type": "array", "minItems": 1, "maxItems": max_rows,
                                      "items": {"oneOf": [{"$ref": "#/components/schemas/Row"},
                                                          value_list]}}}},
        {"type": "object", "required": ["inputs"], "additionalProperties": False,
         "properties": {"inputs": {"type": "array", "minItems": 1, "maxItems": max_rows,
                                   "items": {"oneOf": [{"$ref": "#/components/schemas/Row"},
                                                       value_list]}}}},
        {"type": "object", "required": ["dataframe_records"], "additionalProperties": False,
         "properties": {"dataframe_records": rows}},
        {"type": "object", "required": ["dataframe_split"], "additionalProperties": False,
         "properties": {"params": {}, "dataframe_split": {
             "type": "object", "required": ["columns", "data"],
             "properties": {"columns": {"type": "array", "items": {"enum": names},
                                        "uniqueItems": True, "minItems": len(names),
                                        "maxItems": len(names),
                                        "description": "the feature names, in any order"},
                            "data": {"type": "array", "minItems": 1, "maxItems": max_rows,
                                     "items": {"type": "array", "items": cell,
                                               "minItems": len(names),
                                               "maxItems": len(names)}}}}}},
    ]}
    label = {"enum": manifest.get("labels") or []} if classification else {"type": "number"}
    result = {"type": "object", "required": ["warnings"], "properties": {
        "label": label, "value": {"type": "number"},
        "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
        "explanation": {"type": ["object", "null"]},
        "warnings": {"type": "array", "items": {"type": "object"}}}}
    prediction = {"type": "object", "required": ["model", "predictions", "results"],
                  "properties": {"model": {"type": "object"}, "format": {"type": "string"},
                                 "predictions": {"type": "array", "items": label},
                                 "results": {"type": "array", "items": result}}}
    operations = {
        "health": {"responses": {
            "200": json_ok({"type": "object"}, "up"),
            "503": _error("the model's manifest cannot be read")}},
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
                "413": _error(f"body over {max_body_bytes} bytes or over {max_rows} rows"),
                "415": _error("content type is neither application/json nor text/csv"),
                "503": _error("the model is unavailable")}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{manifest.get('name')} prediction API",
                 "version": str(manifest.get("version")),
                 "description": manifest.get("description", "")},
        "paths": _paths(routes, operations),
        "components": {"schemas": {
            "Row": row,
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message", "details"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "details": {"type": "array", "items": {"type": "object"}}}}}},
        }},
    }
