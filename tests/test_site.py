"""What a member of the public sees, at 1280 px and 360 px, on every page: honest answers
(a track record, not a leaf share; reasons in percentage points; what would change the
answer), no stale or off-screen state, a form people can fill, batch files from any
spreadsheet, a card that says what its figures were measured on, a developers' page to
copy from. Each test saves a screenshot of what it checked in tests/screenshots/."""
import csv
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from support import LocalRuntime, call, event, example, manifest

pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)
SHOTS = Path(__file__).parent / "screenshots"
MANIFEST = manifest()
FEATURES = MANIFEST["features"]
LABEL = {f["name"]: f.get("label") or f["name"] for f in FEATURES}
BY_IMPORTANCE = sorted(FEATURES, key=lambda f: -(f["importance"] or 0))
WIDTHS = [1280, 360]


def shot(pg, name):
    """Save a full-page screenshot of the page's state for a person to look at (not committed)."""
    SHOTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}-{pg.viewport_size['width']}.png"), full_page=True)


def open_page(browser, base_url, width, errors, *, permissions=()):
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": 800},
                                  accept_downloads=True)
    if permissions:
        context.grant_permissions(list(permissions), origin=base_url)
    pg = context.new_page()
    pg.on("console", lambda m: m.type == "error" and not m.text.startswith(
        "Failed to load resource") and errors.append(m.text))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    return pg


@pytest.fixture(params=WIDTHS, ids=["wide", "phone"])
def width(request):
    return request.param


@pytest.fixture
def pg(browser, runtime, width):
    """A fresh page at the test's width on the committed model; fails on a page error."""
    errors = []
    page = open_page(browser, runtime.url, width, errors, permissions=["clipboard-read",
                                                                        "clipboard-write"])
    yield page
    page.context.close()
    assert errors == []


def field(pg, name):
    return pg.locator(f'[name="{name}"]')


def check(pg):
    pg.get_by_role("button", name="Check this sample").click()


def open_form(pg):
    pg.goto("/")
    expect(pg.locator("#main-fields input").first).to_be_visible()


def api_result(features):
    return call(event("POST", "/api/predict", body={"features": features}))[2]["results"][0]


def predicted_as(label):
    """How often the held-out test cases answered `label` were right: (right, said)."""
    cm = MANIFEST["metrics"]["confusion_matrix"]
    k = cm["labels"].index(label)
    return cm["matrix"][k][k], sum(row[k] for row in cm["matrix"])


# 1. Confidence from the track record ------------------------------------------------------

@pytest.mark.parametrize("label", ["malignant", "benign"])
def test_the_answer_gives_the_track_record_on_unseen_cases_and_never_a_certainty(pg, label):
    open_form(pg)
    pg.get_by_role("button", name=f"Use a typical {label} case").click()
    check(pg)
    result = pg.locator("#result")
    expect(pg.locator("#result-label")).to_contain_text(label)
    right, said = predicted_as(label)
    confidence = pg.locator("#result-confidence")
    expect(confidence).to_contain_text(
        f"of the {said} times it answered “{label}” on {MANIFEST['metrics']['rows']} test cases")
    expect(confidence).to_contain_text(f"right {right} times ({round(100 * right / said)}%)")
    recall = MANIFEST["metrics"]["per_class"]["malignant"]
    found = round(recall["recall"] * recall["support"])
    expect(confidence).to_contain_text(
        f"It misses about 1 in {round(1 / (1 - recall['recall']))} “malignant” cases: "
        f"in testing it found {found} of {recall['support']}")
    leaf = api_result(example(label))["explanation"]["leaf"]
    n, c = leaf["samples"], leaf["counts"][label]
    expect(confidence).to_contain_text(
        f"All {n} training samples that ended where this one did were “{label}”" if c == n else
        f"{c} of the {n} training samples that ended where this one did were “{label}”")
    expect(result).not_to_contain_text("100%")
    expect(pg.locator("#result-disclaimer")).to_have_text(MANIFEST["limitations"][0])
    kind = "positive" if label == MANIFEST["positive_label"] else "negative"
    expect(result).to_have_attribute("data-answer", kind)
    shot(pg, f"answer-{label}")


def test_the_two_answers_are_coloured_apart(pg):
    open_form(pg)
    colours = {}
    for label in ("malignant", "benign"):
        pg.get_by_role("button", name=f"Use a typical {label} case").click()
        check(pg)
        expect(pg.locator("#result-label")).to_contain_text(label)
        colours[label] = pg.locator("#result-label").evaluate("(e) => getComputedStyle(e).color")
    assert colours["malignant"] != colours["benign"]


# 2. Reasons as a path, and what would change the answer -----------------------------------

def test_the_reasons_are_the_trees_path_in_shares_of_training_samples(pg):
    open_form(pg)
    pg.get_by_role("button", name="Use a typical malignant case").click()
    check(pg)
    path = api_result(example("malignant"))["explanation"]["path"]
    steps = pg.locator("#result-reasons li")
    expect(steps).to_have_count(len(path) + 1)
    expect(steps.first).to_contain_text("At the start: 37% of the training samples were")
    for i, step in enumerate(path, start=1):
        expect(steps.nth(i)).to_contain_text(LABEL[step["feature"]])
    texts = steps.all_inner_texts()
    assert all(int(n) <= 100 for t in texts for n in re.findall(r"(\d+)%", t))
    # Each step says where the share came from, in shares a person reads, not in points.
    for text in texts[1:]:
        assert re.search(r"\((up|down) from (all|none|over 99%|under 1%|\d+%)\)\.$|\(no change\)\.$", text), text
    expect(pg.locator("#result")).not_to_contain_text("percentage point")
    shot(pg, "reasons")


@pytest.mark.parametrize("label", ["malignant", "benign"])
def test_making_the_change_the_page_suggests_changes_the_answer(pg, label):
    open_form(pg)
    pg.get_by_role("button", name=f"Use a typical {label} case").click()
    check(pg)
    change = api_result(example(label))["explanation"]["changes"][0]
    first = pg.locator("#result-changes li").first
    expect(first).to_have_text(
        f"If {LABEL[change['feature']]} were {change['to']:g} instead of {change['from']:g}, "
        f"the answer would be “{change['label']}”.")
    pg.locator("#more").evaluate("(d) => d.open = true")
    field(pg, change["feature"]).fill(str(change["to"]))
    expect(pg.locator("#result-stale")).to_be_visible()
    check(pg)
    expect(pg.locator("#result-label")).to_contain_text(change["label"])
    expect(pg.locator("#result-stale")).to_be_hidden()


# 3. No stale or hidden state --------------------------------------------------------------

def test_editing_a_value_marks_the_answer_out_of_date(pg):
    open_form(pg)
    check(pg)
    expect(pg.locator("#result-label")).to_be_visible()
    field(pg, BY_IMPORTANCE[0]["name"]).fill("100")
    expect(pg.locator("#result")).to_have_class(re.compile("stale"))
    expect(pg.locator("#result-stale")).to_contain_text("Out of date")
    expect(pg.locator("#status")).to_have_text("You changed a value: the answer below is out of date.")
    shot(pg, "stale-answer")


@pytest.mark.parametrize("failure, message", [
    ("down", "The network seems to be down"), ("503", "The model is not available right now")])
def test_a_failed_check_hides_the_old_answer_and_shows_the_problem_on_screen(pg, failure,
                                                                            message):
    open_form(pg)
    check(pg)
    expect(pg.locator("#result-label")).to_be_visible()
    pg.route("**/api/predict*", (lambda r: r.abort()) if failure == "down" else (
        lambda r: r.fulfill(status=503, content_type="application/json", body="{}")))
    check(pg)
    box = pg.locator("#problem")
    expect(box).to_contain_text(message)
    expect(box).to_be_focused()
    expect(box).to_be_in_viewport()
    expect(pg.locator("#result")).to_be_hidden()
    shot(pg, f"check-failed-{failure}")


def test_a_missing_value_is_listed_in_one_summary_that_takes_focus_and_links_to_it(pg):
    open_form(pg)
    check(pg)
    expect(pg.locator("#result-label")).to_be_visible()
    name = BY_IMPORTANCE[2]["name"]
    field(pg, name).fill("")
    check(pg)
    summary = pg.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    expect(pg.locator("#result")).to_be_hidden()
    link = summary.get_by_role("link", name=f"{LABEL[name]}: Enter a number")
    expect(link).to_be_visible()
    shot(pg, "error-summary")
    link.click()
    expect(field(pg, name)).to_be_focused()
    expect(field(pg, name)).to_have_attribute("aria-invalid", "true")
    expect(pg.locator("#predict-form [role=alert]")).to_have_count(0)


def test_when_the_model_card_cannot_load_no_button_can_send_and_retry_recovers(pg):
    pg.route("**/api/model", lambda r: r.fulfill(status=503, body="{}",
                                                 content_type="application/json"))
    sent = []
    pg.on("request", lambda r: "/api/predict" in r.url and sent.append(r.url))
    pg.goto("/")
    expect(pg.locator("#problem")).to_contain_text("The model is not available right now")
    expect(pg.locator("#description")).to_contain_text("could not be loaded")
    expect(pg.get_by_role("button", name="Check this sample")).to_be_hidden()
    shot(pg, "card-failed")
    pg.unroute("**/api/model")
    pg.get_by_role("button", name="Try again").click()
    expect(pg.get_by_role("button", name="Check this sample")).to_be_visible()
    assert sent == []


# 4. A form people can fill ----------------------------------------------------------------

def test_the_form_shows_rounded_values_with_the_training_range(pg):
    open_form(pg)
    for f in FEATURES:
        value = field(pg, f["name"]).input_value()
        assert len(value.replace("-", "").replace(".", "").lstrip("0")) <= 4, value
        assert float(value) == float(f"{f['default']:.4g}")
        assert float(field(pg, f["name"]).get_attribute("min")) == f["min"]
        assert float(field(pg, f["name"]).get_attribute("max")) == f["max"]


def test_more_measurements_are_grouped_by_name_and_can_be_filtered(pg):
    open_form(pg)
    pg.get_by_text("More measurements").click()
    legends = pg.locator("#more-fields legend").all_inner_texts()
    assert legends == ["Averages (“mean”)", "Variation (“error”)", "Largest values (“worst”)"]
    rest = {f["name"] for f in BY_IMPORTANCE[6:]}
    for legend, word in zip(legends, ["mean", "error", "worst"]):
        names = pg.locator("fieldset", has_text=legend).locator("input").evaluate_all(
            "(xs) => xs.map((x) => x.name)")
        assert names and all(word in n for n in names)
        assert set(names) <= rest
    pg.get_by_label("Find a measurement").fill("concav")
    shown = pg.locator("#more-fields .field:visible label").all_inner_texts()
    assert shown and all("concav" in t.lower() for t in shown)
    expected = sum(1 for f in BY_IMPORTANCE[6:] if "concav" in (LABEL[f["name"]] + f["name"]).lower())
    expect(pg.locator("#filter-count")).to_have_text(f"{expected} of {len(rest)} shown")
    shot(pg, "filtered-form")


def test_a_negative_value_for_a_measurement_that_cannot_be_negative_is_stopped_inline(pg):
    open_form(pg)
    sent = []
    pg.on("request", lambda r: "/api/predict" in r.url and sent.append(r.url))
    name = BY_IMPORTANCE[0]["name"]
    field(pg, name).fill("-5")
    field(pg, name).blur()
    error = pg.locator(f"#{field(pg, name).get_attribute('id')}-error")
    expect(error).to_contain_text("Cannot be negative")
    check(pg)
    expect(pg.locator("#error-summary")).to_contain_text("Cannot be negative")
    assert sent == []


# 5. Batch ---------------------------------------------------------------------------------

def write_rows(path, rows, *, separator=",", decimal="."):
    names = [f["name"] for f in FEATURES]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=separator)
        writer.writerow(names)
        for r in rows:
            writer.writerow([str(r[n]).replace(".", decimal) for n in names])
    return path


def upload(pg, path):
    pg.goto("/batch.html")
    expect(pg.locator("#file")).to_be_visible()
    pg.set_input_files("#file", str(path))


def test_a_semicolon_file_with_decimal_commas_is_read_and_said_so_in_one_line(pg, tmp_path):
    rows = [example("malignant"), example("benign"), example("benign")]
    upload(pg, write_rows(tmp_path / "excel.csv", rows, separator=";", decimal=","))
    expect(pg.locator("#file-status")).to_have_text(
        "Read excel.csv. It uses semicolons between values and commas as decimal marks; "
        "it was read that way.")
    expect(pg.locator("#preview-summary")).to_contain_text("3 rows read; 0 with problems")
    pg.get_by_role("button", name="Check these samples").click()
    expect(pg.locator("#results-summary")).to_contain_text("3 of 3 rows checked")
    counts = pg.locator("#results-counts li")
    expect(counts).to_have_text(["benign: 2 rows", "malignant: 1 row"])
    cell = pg.locator("#results-table tbody tr").first.locator("td").nth(1)
    expect(cell).to_have_text("malignant")
    expect(cell).to_have_class("answer-positive")
    shot(pg, "batch-semicolons")


def test_batch_results_count_problems_and_name_fields_as_the_form_does(pg, tmp_path):
    far = {**example("benign"), "mean radius": FEATURES[0]["max"] * 2}
    bad = {**example("benign"), "mean texture": "lots"}
    upload(pg, write_rows(tmp_path / "mixed.csv", [far, bad]))
    expect(pg.locator("#preview-problems")).to_contain_text(f"Row 2: {LABEL['mean texture']} is not a number")
    pg.get_by_role("button", name="Check these samples").click()
    expect(pg.locator("#results-counts")).to_contain_text("Rows with problems, not checked: 1")
    expect(pg.locator("#results-table tbody tr").first).to_contain_text(
        f"outside the training range: {LABEL['mean radius']}")
    shot(pg, "batch-results")


# 6. Card ----------------------------------------------------------------------------------

SMALLEST_TEXT = """() => Math.min(...[...document.querySelectorAll('svg text')].map((t) => {
  const svg = t.ownerSVGElement;
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return parseFloat(getComputedStyle(t).fontSize) * scale;
}))"""


def test_the_card_says_its_figures_are_from_unseen_cases_and_its_charts_read_on_a_phone(pg):
    pg.goto("/card.html")
    expect(pg.locator("#metrics-intro")).to_contain_text(
        f"Measured on {MANIFEST['metrics']['rows']} cases kept aside and never seen in training")
    expect(pg.locator("#confusion-heading")).to_have_text("Right and wrong answers on unseen test cases")
    expect(pg.locator("#metrics")).to_contain_text("share of the unseen test cases it answered right")
    ticks = pg.locator("#roc text").all_text_contents()
    assert {"0%", "50%", "100%"} <= set(ticks)
    assert pg.evaluate(SMALLEST_TEXT) >= 11
    labels = pg.locator("#importance text").all_text_contents()
    assert LABEL[BY_IMPORTANCE[0]["name"]] in labels
    expect(pg.locator("#technical")).to_contain_text("max_depth = 5")
    shot(pg, "card")


# 7. Developers ----------------------------------------------------------------------------

def test_the_developers_page_starts_with_predict_in_every_format_and_copies(pg, width):
    pg.goto("/developers.html")
    expect(pg.locator("#routes h2").first).to_have_text("POST /api/predict")
    for title in ("features", "instances", "dataframe_split", "CSV"):
        expect(pg.locator("#routes h3", has_text=title)).to_have_count(1)
    copies = pg.get_by_role("button", name=re.compile("^Copy: "))
    assert copies.count() >= 6
    # Each JSON example, as copied, is a body the API accepts.
    for title in ("One row: features: curl", "Many rows: instances: curl",
                  "Many rows: dataframe_split: curl"):
        pg.get_by_role("button", name=f"Copy: {title}").click()
        expect(pg.get_by_text("Copied.").first).to_be_visible()
        code = pg.evaluate("navigator.clipboard.readText()")
        body = json.loads(code.split("-d '", 1)[1].rsplit("'", 1)[0])
        status, _, answer = call(event("POST", "/api/predict", body=body))
        assert status == 200, answer
    pg.get_by_role("button", name="Copy: CSV: samples.csv").click()
    expect(pg.get_by_text("Copied.")).to_have_count(4)
    text = pg.evaluate("navigator.clipboard.readText()")
    status, _, answer = call(event("POST", "/api/predict", body=text,
                                   headers={"content-type": "text/csv"}))
    assert status == 200 and len(answer["results"]) == 2, answer
    overflowing = pg.evaluate("""[...document.querySelectorAll('pre')]
        .filter((p) => p.scrollWidth > p.clientWidth + 1).length""")
    assert overflowing == 0
    assert pg.evaluate("document.documentElement.scrollWidth") <= width
    shot(pg, "developers")


# 8. Site code shaped like its pages -------------------------------------------------------

def test_shared_modules_do_nothing_when_imported(pg):
    pg.goto("/404.html")
    requests = []
    pg.on("request", lambda r: requests.append(r.url))
    before = pg.evaluate("document.body.innerHTML")
    pg.evaluate("""async () => { for (const m of ['fetch', 'dom', 'format', 'problem', 'csv'])
        await import(`/${m}.js`); }""")
    assert [u for u in requests if "/api/" in u] == []
    assert pg.evaluate("document.body.innerHTML") == before


# 9. Packaged models of each kind ---------------------------------------------------------

def _packaged(tmp_path, kind):
    import package_model
    from test_packaging import KINDS
    if kind == "numbered-classes":
        from sklearn.datasets import load_iris
        from sklearn.tree import DecisionTreeClassifier
        from test_packaging import write_csv
        data = load_iris()
        est = DecisionTreeClassifier(max_depth=3, random_state=0).fit(data.data, data.target)
        write_csv(tmp_path / "ref.csv", ["a", "b", "c", "d", "kind"],
                  [[*r, int(t)] for r, t in zip(data.data, data.target)])
        target = "kind"
    else:
        est, _, target = KINDS[kind](tmp_path)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    return package_model.package(tmp_path / "m.pkl", tmp_path / "ref.csv", tmp_path / "out",
                                 target=target, name=kind)


PACKAGED = ["multiclass-pipeline", "regression", "categorical-pipeline", "numbered-classes"]


@pytest.fixture(scope="module")
def packaged_runtimes(tmp_path_factory):
    started = {}

    def get(kind):
        if kind not in started:
            tmp = tmp_path_factory.mktemp(kind)
            started[kind] = (_packaged(tmp, kind), LocalRuntime(env={"MODEL_DIR": str(tmp / "out")}))
        return started[kind]
    yield get
    for _, runtime in started.values():
        runtime.stop()


WORDS = {  # what the answer says about its confidence and its reasons, per kind
    "multiclass-pipeline": ("How often this answer is right is not known",
                            "Log-odds are the model's own scale of scores: 0 means no push either way"),
    "categorical-pipeline": ("How often this answer is right is not known",
                             "Log-odds are the model's own scale of scores: 0 means no push either way"),
    "regression": ("How far off its answers are on new cases is not known",
                   "This value is the average of the"),
    "numbered-classes": ("How often this answer is right is not known",
                         "Each share is of the training samples"),
}


@pytest.mark.parametrize("kind", PACKAGED)
def test_a_packaged_model_gets_honest_answers_and_a_card_on_its_reference_data(
        browser, packaged_runtimes, width, kind):
    manifest_, runtime = packaged_runtimes(kind)
    errors = []
    pg = open_page(browser, runtime.url, width, errors)
    open_form(pg)
    check(pg)
    expect(pg.locator("#result-label")).to_be_visible()
    confidence, reasons = WORDS[kind]
    expect(pg.locator("#result-confidence")).to_contain_text(confidence)
    expect(pg.locator("#result")).to_contain_text(reasons)
    expect(pg.locator("#result")).not_to_contain_text("100%")
    if kind == "numbered-classes":
        expect(pg.locator("#result-label")).to_contain_text("class ")
        expect(pg.get_by_role("button", name="Use a typical ‘class 0’ case")).to_be_visible()
        expect(pg.locator("#result-changes li").first).to_contain_text("the answer would be “class")
    shot(pg, f"packaged-{kind}-answer")
    pg.goto("/card.html")
    expect(pg.locator("#metrics-intro")).to_contain_text("Measured on")
    expect(pg.locator("#metrics-intro")).to_contain_text("of the reference data, not on cases kept aside")
    expect(pg.locator("#technical")).not_to_contain_text("Chosen settings")
    if manifest_.get("labels"):
        expect(pg.locator("#confusion-heading")).to_have_text("Right and wrong answers on the reference data")
        assert pg.evaluate(SMALLEST_TEXT) >= 11
    if kind == "numbered-classes":
        expect(pg.locator("#metrics")).to_contain_text("Precision (class 2)")
    shot(pg, f"packaged-{kind}-card")
    pg.context.close()
    assert errors == []


@pytest.mark.parametrize("health, sizes", [
    ({"status": "ok", "limits": {"max_rows": 2, "max_body_bytes": 1048576}}, [2, 2, 1]),
    ({"status": "ok"}, [5]),  # a function that does not report its limits: the defaults
])
def test_batch_chunks_follow_the_limits_health_reports(pg, tmp_path, health, sizes):
    pg.route("**/api/health", lambda r: r.fulfill(status=200, content_type="application/json",
                                                  body=json.dumps(health)))
    seen = []
    pg.on("request", lambda r: "/api/predict" in r.url and seen.append(
        len(json.loads(r.post_data)["instances"])))
    upload(pg, write_rows(tmp_path / "five.csv", [example()] * 5))
    pg.get_by_role("button", name="Check these samples").click()
    expect(pg.locator("#results-summary")).to_contain_text("5 of 5 rows checked")
    assert seen == sizes


PAGES = {"/": "#predict-button", "/batch.html": "#file", "/card.html": "#card",
         "/developers.html": "#try"}


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_loads_and_says_on_screen_when_the_model_card_cannot_load(pg, path):
    name = path.strip("/").replace(".html", "") or "index"
    pg.goto(path)
    expect(pg.locator(PAGES[path])).to_be_visible()
    shot(pg, f"page-{name}")
    pg.route("**/api/model", lambda r: r.fulfill(status=503, body="{}",
                                                 content_type="application/json"))
    pg.reload()
    box = pg.locator("#problem")
    expect(box).to_contain_text("The model is not available right now")
    expect(box).to_be_in_viewport()
    expect(pg.locator(PAGES[path])).to_be_hidden()  # nothing to press that cannot work
    shot(pg, f"page-{name}-unavailable")


# 10. Busy, slow, cancelled ----------------------------------------------------------------

BUSY = {"error": {"code": "too_many_requests", "message": "Rate exceeded", "details": []}}


def test_a_busy_service_says_so_and_the_retry_waits_for_the_time_it_asks(pg):
    open_form(pg)
    pg.route("**/api/predict*", lambda r: r.fulfill(
        status=429, headers={"Retry-After": "2"}, content_type="application/json",
        body=json.dumps(BUSY)))
    check(pg)
    box = pg.locator("#problem")
    expect(box).to_contain_text("The service is busy right now")
    expect(box).to_contain_text("Try again in 2 seconds.")
    retry = box.get_by_role("button")
    expect(retry).to_be_disabled()
    expect(retry).to_have_text(re.compile(r"Try again \(in [12] s\)"))
    shot(pg, "busy")
    pg.unroute("**/api/predict*")
    expect(retry).to_be_enabled(timeout=5000)
    retry.click()
    expect(pg.locator("#result-label")).to_be_visible()
    expect(box).to_be_hidden()


@pytest.mark.parametrize("width", [1280])
def test_gateway_errors_and_a_timeout_read_as_busy(pg):
    pg.goto("/404.html")
    said = pg.evaluate("""() => import('/problem.js').then(({ problemText }) =>
        [502, 503, 504].map((status) => problemText({ status }))
          .concat([problemText({ status: 0, timedOut: true }), problemText({ status: 0 })]))""")
    assert [s.split(":")[0].split(" (")[0] for s in said] == [
        "The service is busy right now", "The model is not available right now",
        "The service is busy right now", "No answer after 30 seconds",
        "The network seems to be down, or the site cannot be reached."]
    assert all("Try again in a moment." in s for s in said[:4])


@pytest.mark.parametrize("width", [1280])
def test_a_check_can_be_cancelled_and_stops_by_itself_after_30_seconds(pg):
    pg.clock.install()
    open_form(pg)
    held = []
    pg.route("**/api/predict*", lambda r: held.append(r))  # never answered
    check(pg)
    cancel = pg.get_by_role("button", name="Cancel")
    expect(cancel).to_be_visible()
    cancel.click()
    expect(pg.locator("#status")).to_have_text(
        "Cancelled: nothing was checked. Press “Check this sample” to try again.")
    expect(cancel).to_be_hidden()
    check(pg)
    expect(cancel).to_be_visible()
    pg.clock.run_for(31_000)
    expect(pg.locator("#problem")).to_contain_text("No answer after 30 seconds: the service is busy or slow")
    expect(pg.get_by_role("button", name="Check this sample")).to_be_enabled()


def batch_limits(pg, max_rows):
    pg.route("**/api/health", lambda r: r.fulfill(status=200, content_type="application/json", body=json.dumps(
        {"status": "ok", "limits": {"max_rows": max_rows, "max_body_bytes": 1048576}})))


@pytest.mark.parametrize("width", [1280])
def test_a_busy_service_stops_the_batch_and_the_retry_goes_on_from_where_it_stopped(pg, tmp_path):
    batch_limits(pg, 5)
    sent = []

    def answer(route):
        sent.append(len(json.loads(route.request.post_data)["instances"]))
        if len(sent) == 2:
            route.fulfill(status=429, headers={"Retry-After": "1"}, content_type="application/json",
                          body=json.dumps(BUSY))
        else:
            route.continue_()
    pg.route("**/api/predict*", answer)
    upload(pg, write_rows(tmp_path / "many.csv", [example("malignant"), example("benign")] * 12 + [example()]))
    pg.get_by_role("button", name="Check these samples").click()
    expect(pg.locator("#problem")).to_contain_text("The service is busy right now")
    first = len(sent)  # with 4 in flight, the busy answer stops the chunks not yet sent
    expect(pg.locator("#results-summary")).to_contain_text(f"{5 * (first - 1)} of 25 rows checked")
    pg.get_by_role("button", name=re.compile("^Try again")).click()
    expect(pg.locator("#results-summary")).to_contain_text("25 of 25 rows checked")
    assert sum(sent[first:]) == 25 - 5 * (first - 1)  # only the rows not checked yet
    expect(pg.locator("#results-table tbody tr")).to_have_count(20)
    expect(pg.locator("#results-shown")).to_have_text("The first 20 of 25 rows; the download has them all.")
    with pg.expect_download() as download:
        pg.get_by_role("button", name="Download the results (CSV)").click()
    table = list(csv.DictReader(download.value.path().read_text().splitlines()))
    expected = [api_result(r)["label"] for r in [example("malignant"), example("benign")] * 12 + [example()]]
    assert [r["prediction"] for r in table] == expected


# 11. What the answer says about the values --------------------------------------------------

@pytest.mark.parametrize("width", [1280])
def test_the_answer_says_which_values_are_still_typical_defaults_and_warns_before_its_reasons(pg):
    open_form(pg)
    feature = BY_IMPORTANCE[0]
    field(pg, feature["name"]).fill(str(feature["max"] * 3))
    check(pg)
    defaults = pg.locator("#result-defaults")
    lead = (f"Of the {len(FEATURES)} values checked, you entered 1; these {len(FEATURES) - 1} are "
            "still the typical values the form starts with, not measurements of this sample: ")
    expect(defaults).to_contain_text(lead)
    listed = defaults.inner_text().split(lead, 1)[1].rstrip(".").split(", ")
    assert sorted(listed) == sorted(LABEL[f["name"]] for f in FEATURES if f is not feature)
    before = pg.evaluate("""() => [...document.querySelectorAll('#result > *')].map((e) => e.id || e.tagName)""")
    assert before.index("result-warnings") < before.index("H3") and before.index("result-warnings") < before.index("result-reasons")
    expect(pg.locator("#result-warnings li")).to_have_count(1)
    pg.get_by_role("button", name="Use a typical benign case").click()
    check(pg)
    expect(defaults).to_have_text(f"Of the {len(FEATURES)} values checked, {len(FEATURES)} came from the example you loaded.")


# 12. Files as spreadsheets write them -----------------------------------------------------

@pytest.mark.parametrize("width", [1280])
def test_the_download_keeps_the_files_dialect_and_neutralises_formulas(pg, tmp_path):
    names = [f["name"] for f in FEATURES]
    rows = [example("malignant"), example("benign")]
    path = tmp_path / "excel.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["note", *names])
        writer.writerow(['=HYPERLINK("http://example.com")', *[str(rows[0][n]).replace(".", ",") for n in names]])
        writer.writerow(["@SUM(1)", *[str(rows[1][n]).replace(".", ",") for n in names]])
    upload(pg, path)
    pg.get_by_role("button", name="Check these samples").click()
    expect(pg.locator("#results-summary")).to_contain_text("2 of 2 rows checked")
    expect(pg.locator("#download-columns")).to_contain_text("It is not how often the model is right")
    with pg.expect_download() as download:
        pg.get_by_role("button", name="Download the results (CSV)").click()
    text = download.value.path().read_text()
    table = list(csv.reader(text.splitlines(), delimiter=";"))
    assert table[0][:2] == ["note", names[0]]
    assert table[0][-4:] == ["prediction", "share of similar training samples with this answer", "problem", "notes"]
    assert [r[0] for r in table[1:]] == ['\'=HYPERLINK("http://example.com")', "'@SUM(1)"]
    assert table[1][1] == str(rows[0][names[0]]).replace(".", ",")  # the file's own cell, as it was
    assert [r[-4] for r in table[1:]] == [api_result(r)["label"] for r in rows]
    share = table[1][-3]
    assert re.fullmatch(r"[01](,\d+)?", share), share  # a decimal comma, like the file
    leaf = api_result(rows[0])["explanation"]["leaf"]
    assert float(share.replace(",", ".")) == pytest.approx(leaf["counts"][rows and api_result(rows[0])["label"]] / leaf["samples"])


@pytest.mark.parametrize("width", [1280])
def test_a_duplicated_column_is_refused_and_a_missing_one_said_once(pg, tmp_path):
    names = [f["name"] for f in FEATURES]
    path = tmp_path / "twice.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*names, names[3]])
        writer.writerow([example()[n] for n in names] + [1])
    upload(pg, path)
    expect(pg.locator("#preview-problems")).to_contain_text(
        f"The column “{names[3]}” appears more than once: each measurement needs exactly one column")
    expect(pg.get_by_role("button", name="Check these samples")).to_be_disabled()
    shot(pg, "batch-duplicate-column")
    rows = [{k: v for k, v in example().items() if k != names[1]}] * 3
    path = tmp_path / "missing.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[n for n in names if n != names[1]])
        writer.writeheader()
        writer.writerows(rows)
    pg.set_input_files("#file", str(path))
    problems = pg.locator("#preview-problems")
    expect(problems).to_contain_text("Missing columns")
    assert problems.inner_text().count(LABEL[names[1]]) == 1
    expect(pg.locator("#preview-summary")).to_contain_text("3 rows read; 0 with problems")
    expect(pg.get_by_role("button", name="Check these samples")).to_be_disabled()


# 13. Accessibility: axe-core on every page and state ----------------------------------------

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """() => axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`))"""


def test_axe_finds_nothing_serious_or_critical_on_any_page_or_state(browser, runtime, width, tmp_path):
    # The site's CSP forbids injected scripts, so this context lets axe-core in.
    context = browser.new_context(base_url=runtime.url, viewport={"width": width, "height": 800},
                                  bypass_csp=True)
    pg = context.new_page()
    found = {}

    def audit(state):
        if not pg.evaluate("typeof axe !== 'undefined'"):
            pg.add_script_tag(path=str(AXE))
        found[state] = pg.evaluate(AXE_RUN)

    open_form(pg)
    audit("form")
    feature = BY_IMPORTANCE[0]
    field(pg, feature["name"]).fill(str(feature["max"] * 3))
    check(pg)
    expect(pg.locator("#result-warnings li")).to_have_count(1)
    audit("answer with a warning")
    field(pg, feature["name"]).fill("")
    check(pg)
    expect(pg.locator("#error-summary")).to_be_visible()
    audit("error summary")
    field(pg, feature["name"]).fill("10")
    pg.route("**/api/predict*", lambda r: r.fulfill(status=429, headers={"Retry-After": "5"},
                                                    content_type="application/json", body=json.dumps(BUSY)))
    check(pg)
    expect(pg.locator("#problem")).to_be_visible()
    audit("busy")
    pg.unroute("**/api/predict*")
    upload(pg, write_rows(tmp_path / "rows.csv", [example(), {**example(), "mean texture": "lots"}] * 15))
    expect(pg.locator("#preview-table")).to_be_visible()
    audit("batch preview")
    pg.get_by_role("button", name="Check these samples").click()
    expect(pg.locator("#results-summary")).to_contain_text("15 of 30 rows checked")
    audit("batch results")
    pg.goto("/card.html")
    expect(pg.locator("#card")).to_be_visible()
    audit("card")
    pg.goto("/developers.html")
    expect(pg.locator("#try")).to_be_visible()
    pg.get_by_role("button", name="Send").click()
    expect(pg.locator("#try-status")).to_have_text("HTTP 200")
    audit("developers")
    pg.goto("/no-such-page")
    audit("404")
    context.close()
    assert {state: v for state, v in found.items() if v} == {}


# 14. Optional and text features ------------------------------------------------------------

@pytest.mark.parametrize("width", [1280])
def test_an_optional_measurement_left_empty_is_sent_as_not_measured_and_said_so(
        browser, width, tmp_path, monkeypatch):
    import shutil
    from support import MODEL_DIR
    shutil.copytree(MODEL_DIR, tmp_path / "model")
    edited = json.loads((tmp_path / "model" / "manifest.json").read_text())
    optional = BY_IMPORTANCE[1]["name"]
    next(f for f in edited["features"] if f["name"] == optional)["optional"] = True
    (tmp_path / "model" / "manifest.json").write_text(json.dumps(edited))
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "model"))
    status, _, _ = call(event("POST", "/api/predict", query={"explain": "false"},
                              body={"features": {**example(), optional: None}}))
    if status == 400:
        pytest.skip("the API does not take optional features yet (CONTRACTS.md #1, helper inputs)")
    server = LocalRuntime(env={"MODEL_DIR": str(tmp_path / "model")})
    errors = []
    try:
        pg = open_page(browser, server.url, width, errors)
        upload(pg, write_rows(tmp_path / "gaps.csv", [{**example(), optional: ""}, example()]))
        expect(pg.locator("#preview-summary")).to_contain_text("2 rows read; 0 with problems")
        sent = []
        pg.on("request", lambda r: "/api/predict" in r.url and sent.append(json.loads(r.post_data)))
        pg.get_by_role("button", name="Check these samples").click()
        expect(pg.locator("#results-summary")).to_contain_text("2 of 2 rows checked")
        position = [f["name"] for f in FEATURES].index(optional)
        assert [row[position] for row in sent[0]["instances"]] == [None, example()[optional]]
        open_form(pg)
        box = field(pg, optional)
        expect(pg.locator(f"#{box.get_attribute('id')}-hint")).to_contain_text(
            "Leave it empty if it was not measured.")
        box.fill("")
        check(pg)
        expect(pg.locator("#result-label")).to_be_visible()
        assert sent[-1]["features"][optional] is None
        expect(pg.locator("#result-defaults")).to_contain_text(f"Not measured (left empty): {LABEL[optional]}.")
        # The answer is the tree's own for a missing value (scikit-learn's trees take NaN).
        estimator = pickle.loads((MODEL_DIR / "dect_model.pkl").read_bytes())
        row = [[np.nan if f["name"] == optional else float(f"{f['default']:.4g}") for f in FEATURES]]
        expect(pg.locator("#result-label")).to_contain_text(str(estimator.predict(row)[0]))
        shot(pg, "optional-not-measured")
        pg.context.close()
    finally:
        server.stop()
    assert errors == []


@pytest.mark.parametrize("width", [360])
def test_a_text_feature_gets_a_text_box_of_its_length(pg):
    text = {"name": "notes", "label": "Notes on the sample", "type": "text", "max_length": 200,
            "optional": True, "importance": 1.0}
    pg.route("**/api/model", lambda r: r.fulfill(status=200, content_type="application/json",
                                                 body=json.dumps({**MANIFEST, "features": [text, *FEATURES]})))
    open_form(pg)
    box = pg.get_by_label("Notes on the sample")
    expect(box).to_have_js_property("tagName", "TEXTAREA")
    expect(box).to_have_attribute("maxlength", "200")
    expect(pg.locator(f"#{box.get_attribute('id')}-hint")).to_have_text(
        "Any text up to 200 characters. Leave it empty if it was not measured.")
    shot(pg, "text-feature")
