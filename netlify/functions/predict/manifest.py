"""The manifest: the contract between packaging (which writes it) and serving (which reads it).

Owns: its shape, declared once as TypedDicts that scripts/modelcard.py and the function
both import, and `check_manifest`, which refuses a manifest serving cannot trust.
"""
from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

FEATURE_TYPES = ("number", "integer", "categorical", "text")
TASKS = ("classification", "regression")


class Feature(TypedDict):
    name: str
    type: Literal["number", "integer", "categorical", "text"]
    optional: NotRequired[bool]  # the model accepts a missing value (NaN, or None) for it
    max_length: NotRequired[int]  # "text" only: the most characters a value may have
    label: NotRequired[str]
    description: NotRequired[str]
    unit: NotRequired[str]
    min: NotRequired[float]
    max: NotRequired[float]
    median: NotRequired[float]
    percentiles: NotRequired[dict[str, float]]
    categories: NotRequired[list[Any]]
    default: NotRequired[Any]
    importance: NotRequired[float | None]


class Artifact(TypedDict):
    file: str
    bytes: int
    sha256: str
    format: str


class Example(TypedDict):
    name: NotRequired[str]
    label: NotRequired[Any]
    features: dict[str, Any]


class Manifest(TypedDict):
    name: str
    version: str
    task: Literal["classification", "regression"]
    estimator: str
    labels: list[str]
    features: list[Feature]
    classes: NotRequired[list[Any]]  # the labels as the model gives them (int, float, bool, str)
    artifact: Artifact
    versions: dict[str, str]
    title: NotRequired[str]
    description: NotRequired[str]
    intended_use: NotRequired[str]
    limitations: NotRequired[list[str]]
    params: NotRequired[dict[str, Any]]
    positive_label: NotRequired[str]
    label_descriptions: NotRequired[dict[str, str]]
    examples: NotRequired[list[Example]]
    metrics: NotRequired[dict[str, Any]]
    model_selection: NotRequired[dict[str, Any]]
    training_data: NotRequired[dict[str, Any]]


class ManifestError(ValueError):
    """The manifest is not one serving can trust; the message says which part."""


def _check_feature(i: int, feature: object) -> None:
    if not isinstance(feature, dict):
        raise ManifestError(f"features[{i}] is not an object")
    if not isinstance(feature.get("name"), str) or not feature["name"]:
        raise ManifestError(f"features[{i}] has no name")
    if feature.get("type") not in FEATURE_TYPES:
        raise ManifestError(f"features[{i}].type is not one of {', '.join(FEATURE_TYPES)}")
    if feature["type"] == "categorical" and not (isinstance(feature.get("categories"), list)
                                                 and feature["categories"]):
        raise ManifestError(f"features[{i}] is categorical without categories")
    if feature["type"] == "text" and not (type(feature.get("max_length")) is int
                                          and feature["max_length"] > 0):
        raise ManifestError(f"features[{i}] is text without a positive whole max_length")
    if not isinstance(feature.get("optional", False), bool):
        raise ManifestError(f"features[{i}].optional is not true or false")
    for key in ("min", "max"):
        if feature.get(key) is not None and not isinstance(feature[key], (int, float)):
            raise ManifestError(f"features[{i}].{key} is not a number")


def check_manifest(doc: object) -> Manifest:
    """Given a parsed manifest.json, return it typed; ManifestError if serving cannot use it."""
    if not isinstance(doc, dict):
        raise ManifestError("manifest.json is not a JSON object")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise ManifestError("manifest.json has no features")
    for i, feature in enumerate(features):
        _check_feature(i, feature)
    names = [f["name"] for f in features]
    if len(set(names)) != len(names):
        raise ManifestError("manifest.json names a feature twice")
    artifact = doc.get("artifact")
    if not isinstance(artifact, dict) or not isinstance(artifact.get("file"), str) \
            or not isinstance(artifact.get("sha256"), str):
        raise ManifestError("manifest.json has no artifact with a file and a sha256")
    if doc.get("task") not in TASKS:
        raise ManifestError(f"manifest.json's task is not one of {', '.join(TASKS)}")
    if not isinstance(doc.get("versions"), dict):
        raise ManifestError("manifest.json has no versions")
    if not isinstance(doc.get("labels", []), list):
        raise ManifestError("manifest.json's labels is not a list")
    if not isinstance(doc.get("classes", []), list):
        raise ManifestError("manifest.json's classes is not a list")
    return doc  # type: ignore[return-value]
