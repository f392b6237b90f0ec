"""The decision tree's explanation, checked against the tree itself through the API: the path
with the share of the answer at each step, the training samples in the leaf, and what would
change the answer (the smallest change of one measurement that makes the tree answer
otherwise), on every held-out row of the data set and every row of model/sample.csv."""
import csv

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from support import MODEL_DIR, call, event, manifest

NAMES = [f["name"] for f in manifest()["features"]]


def held_out_rows():
    """The held-out split as training made it (its seed and size are in the manifest)."""
    data = load_breast_cancer()
    split = manifest()["training_data"]["split"]
    _, X_test = train_test_split(data.data, test_size=split["test_size"],
                                 stratify=data.target, random_state=split["seed"])
    assert [str(n) for n in data.feature_names] == NAMES
    return X_test.tolist()


def sample_rows():
    with open(MODEL_DIR / "sample.csv", newline="") as f:
        return [[float(r[n]) for n in NAMES] for r in csv.DictReader(f)]


def results(rows, chunk=1000):
    """The API's results for any number of rows, sent in requests under its row cap."""
    out = []
    for start in range(0, len(rows), chunk):
        status, _, body = call(event("POST", "/api/predict",
                                     body={"instances": rows[start:start + chunk]}))
        assert status == 200
        out += body["results"]
    return out


ROWS = {"held-out": held_out_rows, "sample": sample_rows}


@pytest.fixture(scope="module", params=list(ROWS))
def answered(request):
    rows = ROWS[request.param]()
    assert len(rows) >= 20
    return rows, results(rows)


def test_applying_each_change_makes_the_tree_answer_what_it_says(answered):
    rows, answers = answered
    changed, expected = [], []
    for row, result in zip(rows, answers):
        changes = result["explanation"]["changes"]
        assert changes, "a tree with two classes can always be moved to the other one"
        for change in changes:
            j = NAMES.index(change["feature"])
            assert change["from"] == row[j]
            assert change["label"] != result["label"]
            changed.append([*row[:j], change["to"], *row[j + 1:]])
            expected.append(change["label"])
    assert [r["label"] for r in results(changed)] == expected


def test_no_smaller_change_of_that_measurement_changes_the_answer(answered):
    """Every value short of the threshold the change crosses keeps the answer."""
    rows, answers = answered
    between, expected = [], []
    for row, result in zip(rows, answers):
        for change in result["explanation"]["changes"]:
            j, cut = NAMES.index(change["feature"]), change["threshold"]
            assert (change["to"] > cut) == (change["op"] == ">") != (change["from"] > cut)
            for t in np.linspace(0, 1, 21)[:-1]:
                value = change["from"] + t * (cut - change["from"])
                between.append([*row[:j], value, *row[j + 1:]])
                expected.append(result["label"])
    assert [r["label"] for r in results(between)] == expected


def test_the_path_carries_the_share_of_the_answer_from_the_root_to_the_leaf(answered):
    _, answers = answered
    for result in answers:
        ex = result["explanation"]
        shares = [ex["base_value"]] + [s["after"] for s in ex["path"]]
        assert [s["before"] for s in ex["path"]] == shares[:-1]
        assert shares[-1] == pytest.approx(result["probabilities"][result["label"]])
        assert all(0 <= share <= 1 for share in shares)


def test_the_leaf_counts_the_training_samples_that_ended_there(answered):
    _, answers = answered
    for result in answers:
        leaf = result["explanation"]["leaf"]
        assert sum(leaf["counts"].values()) == leaf["samples"] > 0
        for label, p in result["probabilities"].items():
            assert leaf["counts"][label] / leaf["samples"] == pytest.approx(p)


def test_the_openapi_document_describes_explanations_and_warnings_in_full():
    from jsonschema import Draft202012Validator
    doc = call(event("GET", "/api/openapi.json"))[2]
    schemas = doc["components"]["schemas"]
    assert schemas["Explanation"]["oneOf"][1]["properties"]["changes"]["items"]["required"]
    assert schemas["Warning"]["required"] == ["field", "code", "message"]
    assert doc["servers"][0]["url"] == "/"
    feature = manifest()["features"][0]
    row = schemas["Row"]["properties"][feature["name"]]
    assert row["examples"] == [float(f"{feature['median']:.4g}")]
    assert ". Range seen in training:" in row["description"]
    far = dict(zip(NAMES, sample_rows()[0]), **{NAMES[0]: feature["max"] * 3})
    answer = call(event("POST", "/api/predict", body={"features": far}))[2]
    assert answer["results"][0]["warnings"]
    schema = doc["paths"]["/api/predict"]["post"]["responses"]["200"]["content"][
        "application/json"]["schema"]
    Draft202012Validator({**doc, **schema}).validate(answer)


def test_changes_hold_for_a_packaged_tree_with_round_thresholds(tmp_path, monkeypatch):
    """Iris measurements have one decimal, so the tree's cuts are round (1.75): the change
    must still go past the cut, for every reference row."""
    import pickle

    import package_model
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier
    from test_packaging import write_csv
    data = load_iris()
    est = DecisionTreeClassifier(max_depth=3, random_state=0).fit(data.data, data.target)
    names = ["a", "b", "c", "d"]
    write_csv(tmp_path / "ref.csv", [*names, "kind"],
              [[*r, int(t)] for r, t in zip(data.data, data.target)])
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    package_model.package(tmp_path / "m.pkl", tmp_path / "ref.csv", tmp_path / "out", target="kind")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "out"))
    rows = data.data.tolist()
    body = call(event("POST", "/api/predict", body={"instances": rows}))[2]
    changed, expected = [], []
    for row, result in zip(rows, body["results"]):
        for change in result["explanation"]["changes"]:
            j = names.index(change["feature"])
            assert len(repr(change["to"])) <= 6, change  # reads "1.76", not "1.7500001"
            changed.append([*row[:j], change["to"], *row[j + 1:]])
            expected.append(change["label"])
    assert changed
    answers = call(event("POST", "/api/predict", body={"instances": changed}))[2]["predictions"]
    assert answers == expected
