"""Schemathesis against the live local runtime: requests generated from the OpenAPI document
(valid and invalid ones) must get documented, conforming answers and never a 5xx."""
import schemathesis
from hypothesis import HealthCheck, settings

from support import call, event

_, _, DOCUMENT = call(event("GET", "/api/openapi.json"))
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_openapi_contract(case, runtime):
    case.call_and_validate(base_url=runtime.url)
