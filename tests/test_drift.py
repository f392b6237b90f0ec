"""scripts/drift.py: the inputs of a window of real log lines against the training data."""
import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

import drift
from support import ROOT, manifest

# Runs the function as Lambda does (its log lines bare on stdout), one request per event
RUN = ("import json, sys; sys.path.insert(0, sys.argv[1]); import predict\n"
       "for ev in json.load(open(sys.argv[2])):\n"
       "    assert predict.handler(ev, None)['statusCode'] == 200\n")


def logs_of(rows, tmp_path, per_request=100):
    """The function's stdout (its EMF log lines) after predicting these rows."""
    events = [{"httpMethod": "POST", "path": "/api/predict", "queryStringParameters":
               {"explain": "false"}, "headers": {"content-type": "application/json"},
               "body": json.dumps({"instances": rows[i:i + per_request]})}
              for i in range(0, len(rows), per_request)]
    (tmp_path / "events.json").write_text(json.dumps(events))
    out = subprocess.run([sys.executable, "-c", RUN, str(ROOT / "netlify" / "functions"),
                          str(tmp_path / "events.json")], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin",
                                          "AWS_LAMBDA_FUNCTION_NAME": "dect-model-predict"})
    return out.stdout


@pytest.fixture(scope="module")
def data():
    X = load_breast_cancer(as_frame=True).data  # the data the model was trained on
    names = [f["name"] for f in manifest()["features"]]
    return X[names]


def rows_of(frame):
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_the_training_data_itself_shows_no_drift(data, tmp_path):
    text = drift.report(drift.log_lines(logs_of(rows_of(data), tmp_path)), manifest())
    assert text.splitlines()[0].startswith(f"Model dect_model 1.0.0: 6 prediction requests, "
                                           f"{len(data)} rows from ")
    assert "None of the 30 features drifted from the training data." in text


def test_shifted_inputs_are_named_worst_first_with_their_direction(data, tmp_path):
    shifted = data.copy()
    shifted["mean radius"] *= 1.6
    shifted["worst texture"] *= 0.6
    text = drift.report(drift.log_lines(logs_of(rows_of(shifted), tmp_path)), manifest())
    lines = text.splitlines()
    assert lines[1] == "2 of 30 features drifted from the training data:"
    label = {f["name"]: f["label"] for f in manifest()["features"]}
    first, second = lines[2].strip(), lines[3].strip()
    radius = first if first.startswith(label["mean radius"] + " (") else second
    texture = second if radius is first else first
    assert texture.startswith(label["worst texture"] + " (")
    assert "very different from the training data" in radius and "run higher" in radius
    assert "run lower" in texture
    # the share above the training median, worked out from the data sent
    median = next(f["median"] for f in manifest()["features"] if f["name"] == "mean radius")
    above = float(np.mean(shifted["mean radius"] > median))
    assert f"{above:.0%} were above its median (50% in training)" in radius
    top = next(f["max"] for f in manifest()["features"] if f["name"] == "mean radius")
    outside = int((shifted["mean radius"] > top).sum())
    assert f"{outside:,} values ({outside / len(data):.1%}) were outside the range" in radius


def test_it_reads_filter_log_events_output_and_lambdas_text_lines_alike(data, tmp_path):
    stdout = logs_of(rows_of(data.iloc[:150]), tmp_path)
    bare = [t for t in stdout.splitlines() if t.startswith("{")]
    as_cli = json.dumps({"events": [{"timestamp": 0, "message": t + "\n"} for t in bare]})
    as_text = "\n".join(f"[INFO]\t2026-01-01T00:00:00.000Z\treq-{i}\t{t}"
                        for i, t in enumerate(bare))
    (tmp_path / "window.json").write_text(as_cli)
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "drift.py"),
                          str(tmp_path / "window.json"), "--model-dir", str(ROOT / "model")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == drift.report(drift.log_lines(as_text), manifest())
    assert "150 rows" in out.stdout


def test_too_few_values_say_so_and_other_versions_are_left_out(data, tmp_path):
    lines = drift.log_lines(logs_of(rows_of(data.iloc[:5]), tmp_path))
    other = json.loads(json.dumps(lines[0]))
    other["model"]["version"] = "0.9.0"
    text = drift.report([*lines, other], manifest())
    assert "5 values, too few to say anything about drift." in text
    assert "(1 requests to other model versions left out.)" in text
