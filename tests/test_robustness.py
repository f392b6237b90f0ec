"""Property-based: whatever arrives, the handler answers a 2xx/3xx/4xx with a JSON error body,
never a 5xx or a traceback."""
import json

from hypothesis import HealthCheck, given, settings, strategies as st

from support import call, example

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=4),
    max_leaves=20)
feature_names = st.sampled_from(list(example()))
rows = st.dictionaries(feature_names | st.text(max_size=10), json_values, max_size=6).map(
    lambda d: {**example(), **d})
# Every feature present, each any finite float: the values a schema-valid client may send.
full_rows = st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=len(example()),
                     max_size=len(example())).map(lambda values: dict(zip(example(), values)))
bodies = st.one_of(
    st.builds(lambda r: json.dumps({"features": r}), full_rows),
    st.builds(lambda rs: json.dumps({"instances": rs}), st.lists(full_rows, max_size=3)),
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.builds(lambda r: json.dumps({"features": r}), rows),
    st.builds(lambda rs: json.dumps({"instances": rs}), st.lists(rows, max_size=3)),
    st.builds(lambda d: json.dumps({"dataframe_split": d}), json_values),
)
headers = st.dictionaries(
    st.sampled_from(["content-type", "accept", "origin", "if-none-match", "x-any"]),
    st.sampled_from(["application/json", "text/csv", "text/plain", "", "*/*", "\x00"]) | st.text(max_size=20),
    max_size=4)
methods = st.sampled_from(["GET", "POST", "PUT", "OPTIONS", "HEAD", "DELETE"]) | st.text(max_size=8)
paths = st.sampled_from(["/api/predict", "/api/health", "/api/model", "/api/openapi.json",
                         "/.netlify/functions/predict/predict", "/", "/api/"]) | st.text(max_size=30)
events = st.fixed_dictionaries(
    {"httpMethod": methods, "path": paths, "headers": headers, "body": bodies | st.none()},
    optional={"isBase64Encoded": st.booleans(),
              "queryStringParameters": st.dictionaries(st.sampled_from(["explain", "x"]),
                                                       st.text(max_size=6), max_size=2) | st.none(),
              "version": st.just("2.0"),
              "requestContext": json_values})
garbage = st.one_of(json_values, events)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage)
def test_no_event_gives_a_5xx_or_a_traceback(ev):
    status, headers, body = call(ev)
    assert status < 500
    if status >= 400:
        assert set(body["error"]) == {"code", "message", "details"}
    assert "Traceback" not in json.dumps(body)
