"""What a request that fails validation is told.

One ``invalid_request`` lists every problem in ``fields``. Two problems get a plainer answer:
a body that is not JSON (or has no JSON ``Content-Type``) is told to send JSON, and an audio
format the service does not produce is ``unsupported_format``, as a job's own check says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from steadyvoice.errors import InvalidRequest, SteadyVoiceError, UnsupportedFormat
from steadyvoice.settings import AudioFormat

SEND_JSON = "the body must be JSON (Content-Type: application/json)"
FORMATS: tuple[str, ...] = get_args(AudioFormat)
# ``format`` of POST /v1/jobs and of GET /v1/jobs/{id}/audio. The OpenAI endpoint's
# ``response_format`` is not among them: it answers ``invalid_request`` (as docs/api.md says).
FORMAT_FIELDS = frozenset({"format"})
_QUOTED = 40  # characters of a client's value quoted back in a message

_JSON_KINDS: dict[type, str] = {
    list: "an array",
    str: "a string",
    bool: "true or false",  # before int: a bool is an int
    int: "a number",
    float: "a number",
    type(None): "null",
}


def validation_error(request: Request, exc: RequestValidationError) -> SteadyVoiceError:
    """The domain error that answers ``exc``."""
    problems: Sequence[dict[str, Any]] = exc.errors()
    fields = [_field(p) for p in problems]
    body = _body_problem(request, problems)
    if body is not None:
        return InvalidRequest(body, fields=fields)
    unsupported = _format_problem(problems)
    if unsupported is not None:
        return unsupported
    return InvalidRequest("the request is not valid", fields=fields)


def _field(problem: dict[str, Any]) -> dict[str, str]:
    if problem["type"] == "json_invalid":
        return {"field": "body", "problem": f"not valid JSON: {_json_reason(problem)}"}
    where = ".".join(str(p) for p in problem["loc"][1:]) or "body"
    return {"field": where, "problem": str(problem["msg"])}


def _body_problem(request: Request, problems: Sequence[dict[str, Any]]) -> str | None:
    """What to say ("send JSON", and why) when the body as a whole is the problem."""
    for problem in problems:
        if problem["type"] == "json_invalid":
            return f"{SEND_JSON}; this body is not valid JSON ({_json_reason(problem)})"
        if tuple(problem["loc"]) != ("body",):
            continue
        sent = problem.get("input")
        if isinstance(sent, bytes | bytearray):  # FastAPI reads a body as JSON only if told
            content_type = request.headers.get("content-type")
            if not content_type:
                return f"{SEND_JSON}; this request has no Content-Type"
            return f"{SEND_JSON}; this one was sent as {_quoted(content_type)}"
        if problem["type"] == "missing":
            return f"{SEND_JSON}; this request has no body"
        kind = next((v for k, v in _JSON_KINDS.items() if isinstance(sent, k)), None)
        if kind is not None:
            return f"the body must be a JSON object (Content-Type: application/json), not {kind}"
    return None


def _json_reason(problem: dict[str, Any]) -> str:
    reason = str(problem.get("ctx", {}).get("error", "JSON decode error"))
    return f"{reason} at character {problem['loc'][-1]}"


def _format_problem(problems: Sequence[dict[str, Any]]) -> UnsupportedFormat | None:
    """``unsupported_format`` when an unknown format name is the request's only problem."""
    if len(problems) != 1:
        return None
    problem = problems[0]
    loc, value = tuple(problem["loc"]), problem.get("input")
    if len(loc) != 2 or loc[1] not in FORMAT_FIELDS or problem["type"] != "literal_error":
        return None
    if not isinstance(value, str):
        return None
    return UnsupportedFormat(
        f"format {_quoted(value)} is not supported; use one of {', '.join(FORMATS)}",
        field=loc[1],
        format=value[:_QUOTED],
        supported=list(FORMATS),
    )


def _quoted(value: str) -> str:
    return repr(value if len(value) <= _QUOTED else value[:_QUOTED] + "...")
