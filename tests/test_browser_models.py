"""Models fitted the usual way, in a real browser: a person checks the reference CSV on the
batch page, and every row's prediction equals the estimator's own on the DataFrame."""
import contextlib
import csv

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

import fitted
import package_model
from support import LocalRuntime

pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)  # a cold start loads scikit-learn (and pandas) first


@pytest.fixture(params=list(fitted.KINDS))
def site(request, tmp_path):
    """The local runtime serving one kind of packaged model; yields (url, Fitted, manifest)."""
    fit = fitted.KINDS[request.param](tmp_path)
    manifest = package_model.package(fit.model_file, fit.data_file, tmp_path / "out",
                                     target=fit.target, name=request.param)
    server = LocalRuntime(env={"MODEL_DIR": str(tmp_path / "out")})
    try:
        yield server.url, fit, manifest
    finally:
        server.stop()


def test_every_reference_row_checked_in_the_browser_matches_the_estimator(browser, site):
    url, fit, manifest = site
    context = browser.new_context(base_url=url, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto("/batch.html")
    expect(page.locator("#file")).to_be_enabled()
    page.set_input_files("#file", str(fit.data_file))  # the target column rides along
    page.get_by_role("button", name="Check these samples").click()
    n = len(fit.frame)
    expect(page.locator("#results-summary")).to_contain_text(f"{n} of {n} rows checked")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the results (CSV)").click()
    table = list(csv.DictReader(download.value.path().read_text().splitlines()))
    expected = fit.estimator.predict(fit.frame)
    if manifest["task"] == "classification":
        assert [r["prediction"] for r in table] == [str(v) for v in expected]
    else:
        np.testing.assert_allclose([float(r["prediction"]) for r in table], expected, rtol=1e-12)
    assert errors == []
    context.close()


@contextlib.contextmanager
def form_of(browser, fit, tmp_path):
    """Package a fitted model, serve it on the local runtime; yield a page on its form."""
    package_model.package(fit.model_file, fit.data_file, tmp_path / "out", target=fit.target)
    server = LocalRuntime(env={"MODEL_DIR": str(tmp_path / "out")})
    context = browser.new_context(base_url=server.url)
    try:
        page = context.new_page()
        page.goto("/")
        yield page
    finally:
        context.close()
        server.stop()


def test_the_form_offers_the_string_column_and_explains_with_it(browser, tmp_path):
    fit = fitted.frame_classifier(tmp_path)
    with form_of(browser, fit, tmp_path) as page:
        city = page.locator('select[name="city"]')
        expect(city.locator("option")).to_have_count(3)
        city.select_option("Oslo")
        page.locator('[name="rooms"]').fill("6")
        page.locator('[name="area"]').fill("190")
        page.get_by_role("button", name="Check this sample").click()
        row = pd.DataFrame([{"rooms": 6, "area": 190.0, "city": "Oslo"}])
        expect(page.locator("#result-label")).to_contain_text(str(fit.estimator.predict(row)[0]))
        expect(page.locator("#result-reasons li").first).to_be_visible()


def test_a_forests_reasons_say_they_are_percentage_points_of_its_probability(browser, tmp_path):
    with form_of(browser, fitted.forest_compressed(tmp_path), tmp_path) as page:
        page.get_by_role("button", name="Check this sample").click()
        expect(page.locator("#result-reasons li").first).to_contain_text("percentage points")
        expect(page.locator("#result")).to_contain_text("the model's probability for")
        expect(page.locator("#result")).not_to_contain_text("in its own units")
