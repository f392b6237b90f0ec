"""The cold start defers scipy.stats (predict/deferred.py): for a set of models, fitted and
packaged the usual way, every answer is byte for byte what it is with scipy.stats imported
eagerly, and the stand-in is never touched while they are served. The day a scikit-learn
upgrade reads scipy.stats when it is imported, or answers otherwise through the stand-in,
this fails."""
import json
import shutil
import subprocess
import sys

import pytest

import fitted
import package_model
from support import MODEL_DIR, ROOT

KINDS = {"frame-classifier": fitted.frame_classifier, "frame-regressor": fitted.frame_regressor,
         "hist-boosting-multiclass": fitted.hist_boosting_multiclass}
# Runs in a fresh interpreter, as a cold start does: every model directory served through
# the handler, each reference row as JSON (explained and not) and as CSV, then scipy.stats
# used through scikit-learn (rankdata) and directly.
CHILD = r"""
import json, sys
sys.path.insert(0, "netlify/functions")
mode, folders = sys.argv[1], json.loads(sys.argv[2])
if mode == "eager":
    import scipy.stats
from predict.app import build_app
from predict.deferred import is_deferred
out = {"answers": []}
for folder in folders:
    app = build_app({"MODEL_DIR": folder})
    rows = json.load(open(folder + "/rows.json"))
    for query, accept in (("explain=true", "application/json"), ("explain=false", "application/json"),
                          ("", "text/csv")):
        event = {"httpMethod": "POST", "path": "/api/predict", "body": json.dumps({"instances": rows}),
                 "headers": {"content-type": "application/json", "accept": accept},
                 "queryStringParameters": dict([query.split("=")]) if query else {}}
        answer = app.handle_event(event)
        out["answers"].append([answer["statusCode"], answer["body"]])
out["deferred_while_serving"] = is_deferred("scipy.stats")
from sklearn.metrics import roc_auc_score  # rankdata, handed out by the stand-in as a Later
out["auc"] = roc_auc_score([0, 0, 1, 1, 1], [0.1, 0.4, 0.35, 0.8, 0.4])
import scipy.stats
out["norm"] = scipy.stats.norm.cdf(0.3)
import scipy.stats._continuous_distns
out["deferred_after_use"] = is_deferred("scipy.stats")
out["same_module"] = sys.modules["scipy.stats"] is scipy.stats is sys.modules["scipy"].stats
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The committed model and the KINDS, packaged, each with its reference rows as JSON."""
    committed = tmp_path_factory.mktemp("committed") / "model"
    shutil.copytree(MODEL_DIR, committed)
    examples = json.loads((MODEL_DIR / "manifest.json").read_text())["examples"]
    (committed / "rows.json").write_text(json.dumps([e["features"] for e in examples]))
    out = [str(committed)]
    for kind, fit in KINDS.items():
        base = tmp_path_factory.mktemp(kind)
        made = fit(base)
        served = base / "served"
        package_model.package(made.model_file, made.data_file, served, target=made.target,
                              name=kind)
        (served / "rows.json").write_text(json.dumps(fitted.rows(made.frame)))
        out.append(str(served))
    return out


def serve(mode: str, folders: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, json.dumps(folders)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_answers_are_the_same_and_the_stand_in_is_never_touched(folders):
    deferred, eager = serve("deferred", folders), serve("eager", folders)
    assert [status for status, _ in deferred["answers"]] == [200] * 3 * len(folders)
    assert deferred["answers"] == eager["answers"]
    assert deferred["deferred_while_serving"] is True
    assert eager["deferred_while_serving"] is False
    # Once used, it is the real module, in its place, with the same results.
    assert (deferred["auc"], deferred["norm"]) == (eager["auc"], eager["norm"])
    assert deferred["deferred_after_use"] is False and deferred["same_module"] is True
