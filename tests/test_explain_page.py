"""What the page says of an explanation, in a real browser: a category is named with its value
("city = Porto: −2,460"), and a linear model's reasons say what they are measured from."""
import json

import pandas as pd
import pytest
from playwright.sync_api import expect

import fitted
from test_browser_models import form_of

pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)  # a cold start loads scikit-learn and pandas first


def test_a_regressions_reasons_name_the_category_the_sample_has(browser, tmp_path):
    fit = fitted.frame_regressor(tmp_path)  # a ridge after a one-hot of the city
    with form_of(browser, fit, tmp_path) as page:
        manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
        city = next(f for f in manifest["features"] if f["name"] == "city")
        other = next(c for c in city["categories"] if c != city["default"])
        page.locator('select[name="city"]').select_option(other)
        page.get_by_role("button", name="Check this sample").click()
        expect(page.locator("#result-reasons")).to_contain_text(f"city = {other}: ")
        expect(page.locator("#result-why-intro")).to_contain_text("compared with a typical case")
        # The figure is the model's own: its prediction minus the same with the usual city.
        row = pd.DataFrame([{f["name"]: f["default"] for f in manifest["features"]}])
        changed = row.assign(city=other)
        part = fit.estimator.predict(changed)[0] - fit.estimator.predict(row)[0]
        sign = "+" if part >= 0 else "−"
        text = page.locator("#result-reasons li", has_text="city = ").inner_text()
        assert text.startswith(f"city = {other}: {sign}"), text
        shown = float(text.split(sign, 1)[1].replace(",", ""))
        assert shown == pytest.approx(abs(part), rel=1e-2)
