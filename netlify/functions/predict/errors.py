"""The API's one error hierarchy and its one JSON body.

Each class carries its HTTP status and a stable machine-readable code. Messages say what
was expected and what was received (a type, never the value), so the payload is never
echoed back.
"""
from __future__ import annotations

MAX_DETAILS = 50


class ApiError(Exception):
    """An answer that is not a success; the handler renders it with `error_body`."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None,
                 details: list[dict] | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = (details or [])[:MAX_DETAILS]
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class InvalidInput(BadRequest):
    """One or more fields of one or more rows are wrong; `details` names each."""

    code = "invalid_input"

    def __init__(self, details: list[dict]):
        n = len(details)
        first = details[0]
        where = f"row {first['row']}, " if "row" in first else ""
        message = f"{where}field '{first['field']}': {first['message']}"
        if n > 1:
            message += f" (and {n - 1} more problem{'s' if n > 2 else ''})"
        super().__init__(message, code=first["code"], details=details)


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, allowed: list[str]):
        super().__init__(f"this method is not allowed here; use {', '.join(allowed)}",
                         headers={"Allow": ", ".join(allowed)})


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class ResponseTooLarge(PayloadTooLarge):
    """The answer would be over what Lambda can carry (6 MB): the caller asks for less."""

    code = "response_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class ModelUnavailable(ApiError):
    """The deployment is broken (missing, corrupt or incompatible model): not the caller's fault."""

    status = 503
    code = "model_unavailable"


class InvalidSetting(ApiError):
    """A setting in the function's environment is bad: the deployment is broken, not the call."""

    status = 503
    code = "invalid_setting"

    def __init__(self, error: Exception):
        name = getattr(error, "name", "a setting")
        super().__init__(f"the function is misconfigured: {error}",
                         details=[{"field": name, "code": "invalid_setting",
                                   "message": str(error)}])


def error_body(err: ApiError) -> dict:
    """Given an ApiError, return the JSON-ready body every failure answers with."""
    return {"error": {"code": err.code, "message": err.message, "details": err.details}}


# MLflow's error codes (mlflow.protos.databricks_pb2) by HTTP status, for /invocations, whose
# clients read MLflow's scoring server's error body.
MLFLOW_CODES = {404: "ENDPOINT_NOT_FOUND", 500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE"}


def mlflow_error_body(err: ApiError) -> dict:
    """Given an ApiError, return the body MLflow's scoring server answers a failure with:
    {"error_code", "message"}, and this API's details naming each field."""
    code = MLFLOW_CODES.get(err.status, "BAD_REQUEST" if err.status < 500 else "INTERNAL_ERROR")
    return {"error_code": code, "message": err.message, "details": err.details}


def detail(field: str, code: str, message: str, *, row: int | None = None, **extra) -> dict:
    """Given what is wrong with one field, return one entry of an error's `details`."""
    d = {"field": field[:100], "code": code, "message": message, **extra}
    if row is not None:
        d["row"] = row
    return d
