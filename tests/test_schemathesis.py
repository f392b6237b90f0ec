"""Schemathesis against the live local runtime: requests generated from the OpenAPI document
(valid and invalid ones) must get documented, conforming answers and never a 5xx. For the
committed tree on every route; and for models of other kinds (a forest, histogram boosting,
a linear pipeline with one-hot, a regression), each served with its own document, on the
prediction route, with their reference rows' explained answers validated against it too."""
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from threadpoolctl import threadpool_limits

import fitted
import package_model
from support import LocalRuntime, call, event

_, _, DOCUMENT = call(event("GET", "/api/openapi.json"))
schema = schemathesis.openapi.from_dict(DOCUMENT)


def call_and_validate(case, url: str):
    """Call and validate, except that any request may get a documented 413 for its size: its
    body over the limit (`payload_too_large`, which schemathesis does not count as a refusal),
    or its answer (`response_too_large`: e.g. 1,000 rows all out of range, explained, pass
    Lambda's 6 MB); and
    that a column-wise body (`dataframe_split`, `inputs` as columns) may be refused: JSON Schema
    cannot tie a cell's type to the column its position names, so its schema lets any cell be
    of any feature's type, and the API then names the cell's field (a 400, still checked to be
    documented and conforming); and that a CSV body of empty lines gets its documented
    400 `no_rows`."""
    response = case.call(base_url=url)
    # the error's code, in either shape (MLflow's on /invocations has error_code)
    code = response.json().get("error", {}).get("code") if response.status_code >= 400 else None
    if response.status_code == 413 and code in ("payload_too_large", "response_too_large"):
        return response
    columnwise = isinstance(case.body, dict) and (
        "dataframe_split" in case.body or isinstance(case.body.get("inputs"), dict))
    # a CSV line of empty cells is no row (docs/api.md), though the CSV pattern admits it
    empty_csv = code == "no_rows" and case.media_type == "text/csv"
    case.validate_response(response, excluded_checks=[checks.positive_data_acceptance]
                           if (columnwise and response.status_code == 400) or empty_csv
                           else None)
    return response


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_openapi_contract(case, runtime):
    call_and_validate(case, runtime.url)


MODELS = {"forest": fitted.forest_compressed, "hist-boosting": fitted.hist_boosting,
          "onehot-logistic": fitted.frame_classifier,
          "onehot-ridge-regression": fitted.frame_regressor}


@pytest.fixture(scope="module", params=list(MODELS))
def served_model(request, tmp_path_factory):
    """One model of each kind, packaged with the README's command and served over HTTP."""
    folder = tmp_path_factory.mktemp(request.param)
    with threadpool_limits(limits=1):  # histogram boosting's threads, on a busy machine
        fit = MODELS[request.param](folder)
        package_model.package(fit.model_file, fit.data_file, folder / "served",
                              target=fit.target, name=request.param)
    server = LocalRuntime(env={"MODEL_DIR": str(folder / "served"), "OMP_NUM_THREADS": "1"})
    yield fit, server
    server.stop()


def served_predict(server):
    """Return the prediction operation of the document the server serves."""
    status, _, document = server.json("/api/openapi.json")
    assert status == 200
    served = schemathesis.openapi.from_dict(document)
    return served, served["/api/predict"]["POST"]


def test_every_kind_of_model_answers_its_reference_rows_as_its_document_says(served_model):
    fit, server = served_model
    served, predict = served_predict(server)
    case = served.make_case(operation=predict, body={"instances": fitted.rows(fit.frame)},
                            media_type="application/json")
    response = call_and_validate(case, server.url)
    assert response.status_code == 200
    assert all(r["explanation"] for r in response.json()["results"])


# The one-hot models take an integer feature in a DataFrame's int64 column: this found integers
# up to 3.4e38 accepted there (a 500); they are now bounded by 2**53 (inputs.MAX_WHOLE).
@pytest.mark.parametrize("served_model", MODELS, indirect=True)
def test_every_kind_of_model_keeps_its_contract_on_generated_requests(served_model):
    _, server = served_model
    _, predict = served_predict(server)

    @given(case=predict.as_strategy(GenerationMode.POSITIVE)
           | predict.as_strategy(GenerationMode.NEGATIVE))
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    def generated(case):
        call_and_validate(case, server.url)

    generated()
