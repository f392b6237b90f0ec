"""The site in a real browser: Debian's headless Chromium driven by Playwright, against the
local runtime. Every page must work for a person, and log no console errors."""
import csv
import json

import numpy as np
import pytest
from playwright.sync_api import expect

from support import LocalRuntime, call, event, example, manifest

pytestmark = pytest.mark.browser
# A first prediction on a new runtime loads scikit-learn (about 2 s here, more on a busy
# machine): give every expectation room for that rather than fail on a slow cold start.
expect.set_options(timeout=20_000)
PAGES = ["/", "/batch.html", "/card.html", "/developers.html"]
FEATURES = manifest()["features"]
BY_IMPORTANCE = sorted(FEATURES, key=lambda f: -(f["importance"] or 0))


@pytest.fixture
def console_errors():
    return []


@pytest.fixture
def page(browser, runtime, console_errors, request):
    """A fresh page on the runtime; fails the test on any console error it did not expect."""
    context = browser.new_context(base_url=runtime.url, accept_downloads=True)
    pg = context.new_page()
    pg.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
    pg.on("pageerror", lambda e: console_errors.append(str(e)))
    yield pg
    context.close()
    if "expected_errors" in request.keywords:  # the browser logs the HTTP errors a test provokes
        console_errors = [e for e in console_errors if not e.startswith("Failed to load resource")]
    assert console_errors == []


def field(pg, name):
    return pg.locator(f'[name="{name}"]')


def open_form(pg, path="/"):
    pg.goto(path)
    expect(pg.locator("#main-fields input, #main-fields select").first).to_be_visible()


def example_csv(path, *, copies):
    """Write a CSV of the header and `copies` rows of the manifest's first example; return path."""
    names = [f["name"] for f in FEATURES]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows([[example()[n] for n in names]] * copies)
    return path


def api_label(features):
    return call(event("POST", "/api/predict", body={"features": features}))[2]["results"][0]


def test_the_form_is_built_from_the_model_most_important_first(page):
    open_form(page)
    main = page.locator("#main-fields input")
    expect(main).to_have_count(6)
    assert main.first.get_attribute("name") == BY_IMPORTANCE[0]["name"]
    expect(page.locator("#more-fields input")).to_have_count(24)
    expect(page.locator("#more-fields input").first).to_be_hidden()  # folded away
    expect(page.locator("#warning")).to_contain_text("not a medical device")


def test_fill_the_form_and_predict(page):
    open_form(page)
    values = {f["name"]: f["default"] for f in FEATURES}
    name = BY_IMPORTANCE[0]["name"]
    field(page, name).fill(str(BY_IMPORTANCE[0]["percentiles"]["p95"]))
    values[name] = BY_IMPORTANCE[0]["percentiles"]["p95"]
    page.get_by_role("button", name="Check this sample").click()
    expected = api_label(values)
    expect(page.locator("#result-label")).to_contain_text(expected["label"])
    expect(page.locator("#result-confidence")).to_contain_text("Track record")
    expect(page.locator("#result-reasons li")).to_have_count(len(expected["explanation"]["path"]) + 1)


@pytest.mark.parametrize("label", ["malignant", "benign"])
def test_a_one_click_example_fills_the_form(page, label):
    open_form(page)
    page.get_by_role("button", name=f"Use a typical {label} case").click()
    name = BY_IMPORTANCE[0]["name"]
    assert float(field(page, name).input_value()) == example(label)[name]
    page.get_by_role("button", name="Check this sample").click()
    expect(page.locator("#result-label")).to_contain_text(label)
    expect(page.locator("#result-reasons li").first).to_contain_text("At the start")


@pytest.mark.expected_errors
def test_a_field_error_shows_beside_the_field_and_nothing_typed_is_lost(page):
    open_form(page)
    first, second = BY_IMPORTANCE[0]["name"], BY_IMPORTANCE[1]["name"]
    field(page, first).fill("")
    field(page, second).fill("12.345")
    page.get_by_role("button", name="Check this sample").click()
    error = page.locator(f"#{field(page, first).get_attribute('id')}-error")
    expect(error).to_contain_text("Enter a number")
    expect(field(page, first)).to_have_attribute("aria-invalid", "true")
    expect(field(page, second)).to_have_value("12.345")
    expect(page.locator("#result")).to_be_hidden()


def test_a_value_outside_the_training_range_is_flagged_beside_its_field(page):
    open_form(page)
    feature = BY_IMPORTANCE[0]
    field(page, feature["name"]).fill(str(feature["max"] * 3))
    page.get_by_role("button", name="Check this sample").click()
    note = page.locator(f"#{field(page, feature['name']).get_attribute('id')}-note")
    expect(note).to_contain_text("Outside the range the model learned from")
    expect(page.locator("#result-warnings li")).to_have_count(1)


def test_the_page_wakes_the_model_on_opening_and_a_click_waits_for_that_wake(page):
    # The health check sent on opening is held for 1.5 s in the page, as a cold load would
    # hold it; a click meanwhile must wait for it, not send a prediction that would start a
    # second cold instance on Lambda.
    page.add_init_script("""{
      const realFetch = window.fetch;
      window.log = [];
      window.fetch = (url, options) => {
        const path = new URL(String(url), location.href).pathname;
        window.log.push(`${path} sent`);
        const answer = path === '/api/health'
          ? new Promise((ok) => setTimeout(() => ok(realFetch(url, options)), 1500)) : realFetch(url, options);
        return answer.then((r) => { window.log.push(`${path} answered`); return r; });
      };
    }""")
    open_form(page)
    page.get_by_role("button", name="Check this sample").click()
    expect(page.locator("#result-label")).to_be_visible()
    log = page.evaluate("window.log")
    assert log.count("/api/health sent") == 1
    assert log.index("/api/health sent") < log.index("/api/model sent")
    assert log.index("/api/health answered") < log.index("/api/predict sent")
    expect(page.locator("body")).not_to_contain_text("asleep")


@pytest.mark.expected_errors
@pytest.mark.parametrize("failure, message", [
    (lambda route: route.fulfill(status=503, content_type="application/json", body=json.dumps(
        {"error": {"code": "model_unavailable", "message": "x", "details": []}})),
     "The model is not available right now"),
    (lambda route: route.abort(), "The network seems to be down"),
])
def test_model_unavailable_or_network_down_offers_a_retry_and_keeps_the_input(
        page, failure, message):
    open_form(page)
    name = BY_IMPORTANCE[0]["name"]
    field(page, name).fill("123.5")
    page.route("**/api/predict*", failure)
    page.get_by_role("button", name="Check this sample").click()
    expect(page.locator("#problem")).to_contain_text(message)
    expect(field(page, name)).to_have_value("123.5")
    page.unroute("**/api/predict*")
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#result-label")).to_be_visible()
    expect(page.locator("#problem")).to_be_hidden()


def test_csv_round_trip_with_a_bad_row(page, tmp_path):
    names = [f["name"] for f in FEATURES]
    good = [example("malignant"), example("benign"), example("benign")]
    bad = {**example(), "mean texture": "lots"}
    good[2] = {**good[2], "mean radius": FEATURES[0]["max"] * 2}  # accepted, with a note
    path = tmp_path / "samples.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["patient_id", *names])
        for i, r in enumerate([good[0], bad, *good[1:]]):
            writer.writerow([f"p{i}", *[r[n] for n in names]])
    page.goto("/batch.html")
    expect(page.locator("#file")).to_be_visible()
    page.set_input_files("#file", str(path))
    expect(page.locator("#preview-summary")).to_contain_text("4 rows read; 1 with problems")
    expect(page.locator("#preview-problems")).to_contain_text("patient_id")
    expect(page.locator("#preview-problems")).to_contain_text("Row 2: Texture (mean) is not a number")
    page.get_by_role("button", name="Check these samples").click()
    expect(page.locator("#results-summary")).to_contain_text("3 of 4 rows checked")
    expect(page.locator("#progress")).to_have_attribute("value", "100")
    rows = page.locator("#results-table tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(1)).to_have_class("bad-row")
    expect(rows.nth(1)).to_contain_text("not a number")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the results (CSV)").click()
    table = list(csv.DictReader(download.value.path().read_text().splitlines()))
    assert len(table) == 4
    assert [r["prediction"] for r in table] == [
        api_label(good[0])["label"], "", api_label(good[1])["label"], api_label(good[2])["label"]]
    assert "not a number" in table[1]["problem"]
    assert table[3]["notes"] == "outside the training range: mean radius"
    expect(rows.nth(3)).to_contain_text("outside the training range: Radius (mean)")
    assert table[0]["patient_id"] == "p0"


def test_the_model_card_draws_its_charts(page):
    page.goto("/card.html")
    m = manifest()["metrics"]
    expect(page.locator(".confusion-cell")).to_have_count(4)
    expect(page.locator("#confusion svg")).to_contain_text("89")
    points = page.locator(".roc-line").get_attribute("points").split()
    assert len(points) == len(m["roc_curve"]["fpr"])
    nonzero = sum(1 for f in FEATURES if f["importance"] > 0)
    expect(page.locator(".importance-bar")).to_have_count(min(10, nonzero))
    expect(page.locator("#technical")).to_contain_text(manifest()["artifact"]["sha256"])
    expect(page.locator("#limitations")).to_contain_text("not a medical device")
    expect(page.locator("#metrics")).to_contain_text(f"{round(m['accuracy'] * 100)}%")


@pytest.mark.expected_errors
def test_the_developers_page_builds_examples_and_tries_a_request(page):
    page.goto("/developers.html")
    routes = sum(len(ops) for ops in call(event("GET", "/api/openapi.json"))[2]["paths"].values())
    expect(page.locator("#routes h2")).to_have_count(routes)  # one per operation of the API
    expect(page.locator("#routes")).to_contain_text("curl -s -X POST")
    expect(page.locator("#routes")).to_contain_text("urllib.request")
    expect(page.locator("#routes")).to_contain_text("await fetch(")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#try-status")).to_have_text("HTTP 200")
    expect(page.locator("#try-response")).to_contain_text('"predictions"')
    page.locator("#try-body").fill('{"features": {}}')
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#try-status")).to_have_text("HTTP 400")
    expect(page.locator("#try-response")).to_contain_text("missing_feature")


def test_keyboard_only_a_person_can_load_an_example_and_predict(page):
    open_form(page)
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Use a typical malignant case":
            break
    else:
        pytest.fail("12 presses of Tab never reached 'Use a typical malignant case'")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # into the first field
    assert page.evaluate("document.activeElement.tagName") == "INPUT"
    page.keyboard.press("Enter")  # submits the form
    expect(page.locator("#result-label")).to_contain_text("malignant")


CONTRAST = """() => {
  const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 4).map(Number);
  const lum = ([r, g, b]) => { const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; };
  const bg = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor); if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
  const worst = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.offsetParent || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    if (el.closest('svg')) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) worst.push(el.tagName + ' ' + el.className + ' ' + ratio.toFixed(2));
  }
  return worst;
}"""


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_accessible_at_phone_width(browser, runtime, path):
    context = browser.new_context(base_url=runtime.url, viewport={"width": 360, "height": 740})
    pg = context.new_page()
    errors = []
    pg.on("console", lambda m: m.type == "error" and errors.append(m.text))
    pg.goto(path)
    pg.wait_for_load_state("networkidle")
    assert pg.evaluate("document.documentElement.lang") == "en"
    assert pg.evaluate("document.documentElement.scrollWidth") <= 360
    unlabelled = pg.evaluate("""[...document.querySelectorAll('input, select, textarea')]
        .filter((el) => !el.labels.length && !el.getAttribute('aria-label')).map((el) => el.id)""")
    assert unlabelled == []
    assert pg.evaluate(CONTRAST) == []
    assert errors == []
    context.close()


@pytest.mark.parametrize("kind", ["categorical-pipeline", "regression", "multiclass-pipeline"])
def test_the_site_serves_a_packaged_model_of_each_kind(browser, tmp_path, kind):
    import pickle
    import package_model
    from test_packaging import KINDS
    est, X, target = KINDS[kind](tmp_path)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    manifest = package_model.package(tmp_path / "m.pkl", tmp_path / "ref.csv", tmp_path / "out",
                                     target=target, name=kind)
    other = LocalRuntime(env={"MODEL_DIR": str(tmp_path / "out")})
    try:
        context = browser.new_context(base_url=other.url)
        pg = context.new_page()
        errors = []
        pg.on("console", lambda m: m.type == "error" and errors.append(m.text))
        open_form(pg)
        expect(pg.locator("#main-fields input, #main-fields select")).to_have_count(
            min(6, len(manifest["features"])))
        if kind == "categorical-pipeline":
            expect(pg.locator('select[name="colour"] option')).to_have_count(3)
            pg.locator('select[name="colour"]').select_option("red")
        pg.get_by_role("button", name="Check this sample").click()
        expect(pg.locator("#result-label")).to_be_visible()
        row = {f["name"]: f["default"] for f in manifest["features"]}
        if kind == "categorical-pipeline":
            row["colour"] = "red"
        names = [f["name"] for f in manifest["features"]]
        expected = est.predict(np.array([[row[n] for n in names]], dtype=object))[0]
        if kind == "regression":
            expect(pg.locator("#result-reasons li").first).to_contain_text("averaged")
            said = pg.locator("#result-label").inner_text()
            assert said.startswith("Predicted value: ")
            assert float(said.split(": ")[1].replace(",", "")) == pytest.approx(expected, rel=1e-2)
        else:
            expect(pg.locator("#result-label")).to_contain_text(str(expected))
        if kind == "multiclass-pipeline":
            expect(pg.locator("#result-confidence")).to_contain_text("Other answers:")
            expect(pg.locator("#result-why-intro")).to_contain_text(
                "Log-odds are the model's own scale of scores: 0 means no push either way")
        pg.goto("/card.html")
        labels = manifest.get("labels") or []
        if labels:
            expect(pg.locator(".confusion-cell")).to_have_count(len(labels) ** 2)
        else:
            expect(pg.locator("#metrics")).to_contain_text("R²")
        assert errors == []
        context.close()
    finally:
        other.stop()


@pytest.mark.expected_errors
def test_batch_scoring_stopped_by_an_outage_resumes_on_retry(page, tmp_path):
    path = example_csv(tmp_path / "three.csv", copies=3)
    page.goto("/batch.html")
    expect(page.locator("#file")).to_be_visible()
    page.set_input_files("#file", str(path))
    page.route("**/api/predict*", lambda route: route.fulfill(status=503, body="{}",
                                                             content_type="application/json"))
    page.get_by_role("button", name="Check these samples").click()
    expect(page.locator("#problem")).to_contain_text("The model is not available right now")
    expect(page.locator("#results-summary")).to_contain_text("0 of 3 rows checked")
    page.unroute("**/api/predict*")
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#results-summary")).to_contain_text("3 of 3 rows checked")
    expect(page.locator("#problem")).to_be_hidden()
    expect(page.locator("#status")).to_have_text("Done: the results are below.")


@pytest.mark.expected_errors
@pytest.mark.parametrize("path", ["/", "/batch.html", "/card.html", "/developers.html"])
def test_every_page_says_when_the_model_is_unavailable_and_recovers_on_retry(page, path):
    page.route("**/api/model", lambda route: route.fulfill(status=503, body="{}",
                                                          content_type="application/json"))
    page.goto(path)
    expect(page.locator("#problem")).to_contain_text("The model is not available right now")
    page.unroute("**/api/model")
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#problem")).to_be_hidden()


def test_batch_chunks_of_a_wide_model_stay_under_the_body_limit(browser, tmp_path):
    import pickle
    import package_model
    from sklearn.linear_model import LogisticRegression
    from predict.settings import Settings
    from test_packaging import RNG, write_csv
    names = [f"f{j:03d}" for j in range(600)]
    X = RNG.normal(size=(60, 600))
    y = np.where(X[:, 0] > 0, "up", "down")
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(LogisticRegression().fit(X, y)))
    write_csv(tmp_path / "ref.csv", [*names, "dir"], [[*r, t] for r, t in zip(X.tolist(), y)])
    package_model.package(tmp_path / "m.pkl", tmp_path / "ref.csv", tmp_path / "out", target="dir")
    rows = np.repeat(X, 4, axis=0)  # 240 rows, about 3 MB of JSON in all
    write_csv(tmp_path / "batch.csv", names, rows.tolist())
    wide = LocalRuntime(env={"MODEL_DIR": str(tmp_path / "out")})
    try:
        context = browser.new_context(base_url=wide.url)
        pg = context.new_page()
        sizes = []
        pg.on("request", lambda r: "/api/predict" in r.url and sizes.append(len(r.post_data)))
        pg.goto("/batch.html")
        expect(pg.locator("#file")).to_be_visible()
        pg.set_input_files("#file", str(tmp_path / "batch.csv"))
        pg.get_by_role("button", name="Check these samples").click()
        expect(pg.locator("#results-summary")).to_contain_text("240 of 240 rows checked",
                                                               timeout=30000)
        assert len(sizes) > 1
        assert max(sizes) < Settings.max_body_bytes
        context.close()
    finally:
        wide.stop()
