"""The service's error hierarchy, rendered as RFC 9457 problem details.

Services raise these; one set of handlers turns them (and framework and
database errors) into `application/problem+json`. Nothing reaches the client
as a stack trace.
"""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import Send

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# Problem types are URNs: stable identifiers that do not pretend to be web pages.
PROBLEM_BASE = "urn:ptdir:problem:"


class FieldError(BaseModel):
    """One invalid input field."""

    loc: list[str | int]
    field: str
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


def field_name(loc: Sequence[str | int]) -> str:
    """`("body", "practices", 0, "location", "zip")` → `practices[0].location.zip`."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or str(loc[0] if loc else "")


# OpenAPI `responses` shared by every route that needs an API key.
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, malformed or revoked API key"},
    403: {"model": Problem, "description": "The key's role may not do this"},
    422: {"model": Problem, "description": "Invalid fields, each named in `errors`"},
}


class ProblemError(Exception):
    status = 500
    title = "Internal Server Error"
    slug = "internal"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail

    def problem(self) -> Problem:
        return Problem(
            type=PROBLEM_BASE + self.slug, title=self.title, status=self.status, detail=self.detail
        )

    def headers(self) -> dict[str, str]:
        return {}


class NotFound(ProblemError):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(ProblemError):
    status, title, slug = 409, "Conflict", "conflict"


class Unauthorized(ProblemError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="ptdir"'}


class Forbidden(ProblemError):
    status, title, slug = 403, "Forbidden", "forbidden"


class PayloadTooLarge(ProblemError):
    status, title, slug = 413, "Content Too Large", "payload-too-large"


class UnsupportedMediaType(ProblemError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class InvalidFile(ProblemError):
    """An uploaded file that cannot be read as the declared format (empty, encoding, shape)."""

    status, title, slug = 422, "Unreadable File", "invalid-file"

    def problem(self) -> Problem:
        # As every 422, it names what is invalid: here the request body, the file.
        problem = super().problem()
        message = self.detail or self.title
        problem.errors = [FieldError(loc=["body"], field="body", message=message, type="file")]
        return problem


class TooManyRequests(ProblemError):
    status, title, slug = 429, "Too Many Requests", "rate-limited"


class ServiceUnavailable(ProblemError):
    status, title, slug = 503, "Service Unavailable", "unavailable"


class QueryTimeout(ProblemError):
    status, title, slug = 503, "Service Unavailable", "query-timeout"


class DatabaseBusy(ProblemError):
    """Another transaction holds what the request would write: a roster import holds the
    rows it writes (on SQLite, the whole database) until its roster commits."""

    status, title, slug = 503, "Service Unavailable", "busy"


class InvalidInput(ProblemError):
    """422 naming each bad field; raised by services for checks that need the database."""

    status, title, slug = 422, "Unprocessable Content", "invalid-input"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    @classmethod
    def at(
        cls, loc: Sequence[str | int], message: str, type_: str = "value_error"
    ) -> "InvalidInput":
        return cls([FieldError(loc=list(loc), field=field_name(loc), message=message, type=type_)])

    def problem(self) -> Problem:
        problem = super().problem()
        problem.errors = self.errors
        return problem


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


async def send_problem(
    send: Send, problem: Problem, headers: Sequence[tuple[bytes, bytes]] = (), *, body: bool = True
) -> None:
    """Answers with `problem` from a pure ASGI middleware (no Response object on the way)."""
    content = problem.model_dump_json(exclude_none=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(content)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content if body else b""})


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append(
            FieldError(loc=loc, field=field_name(loc), message=message, type=error.get("type", ""))
        )
    return errors


_STATUS_TITLES = {
    400: ("Bad Request", "bad-request"),
    404: ("Not Found", "not-found"),
    405: ("Method Not Allowed", "method-not-allowed"),
    406: ("Not Acceptable", "not-acceptable"),
    413: ("Content Too Large", "payload-too-large"),
    415: ("Unsupported Media Type", "unsupported-media-type"),
}


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.problem(), exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(InvalidInput(_validation_errors(exc)).problem())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI answers 400 where the JSON decoder itself fails (bytes that are
            # not UTF-8, nesting too deep to decode): the same mistake as any other
            # malformed body, which is a 422 naming the body.
            invalid = InvalidInput.at(["body"], "the body is not JSON text", "json_invalid")
            return problem_response(invalid.problem())
        title, slug = _STATUS_TITLES.get(exc.status_code, ("Error", "http-error"))
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        problem = Problem(
            type=PROBLEM_BASE + slug, title=title, status=exc.status_code, detail=detail
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and (allowed := _allowed_methods(request)):
            headers["Allow"] = ", ".join(allowed)
        return problem_response(problem, headers)

    @app.exception_handler(PoolTimeoutError)
    async def _pool_timeout(_request: Request, _exc: Any) -> JSONResponse:
        error = ServiceUnavailable("The database is busy; retry shortly.")
        return problem_response(error.problem(), {"Retry-After": "1"})

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc, DataError):
            # A value the column cannot hold that validation let through: still the
            # client's input, so a 422 rather than a 500 (and logged, to tighten validation).
            logger.warning("database refused a value: %s", exc.orig)
            invalid = InvalidInput(
                [], detail="a value is out of range or malformed for the directory's storage"
            )
            return problem_response(invalid.problem())
        sqlstate = getattr(exc.orig, "sqlstate", None)
        # A write's statements are small: one cancelled at the time limit waited for
        # a lock, not for work, as a write that SQLite's busy timeout gave up on did.
        if _is_lock_wait(exc, sqlstate) or (
            sqlstate == _QUERY_CANCELED and request.method not in ("GET", "HEAD")
        ):
            busy = DatabaseBusy(
                "Another write holds the records this request changes (a roster import "
                "holds what it writes until it commits); retry after it has finished."
            )
            return problem_response(busy.problem(), {"Retry-After": "5"})
        if sqlstate == _QUERY_CANCELED:
            timeout = QueryTimeout(
                "The database took longer than this service allows for one request; "
                "retry, or narrow the request (a smaller area, more filters)."
            )
            return problem_response(timeout.problem(), {"Retry-After": "1"})
        if exc.connection_invalidated or _is_connection_error(exc):
            error = ServiceUnavailable("The database is unavailable; retry shortly.")
            return problem_response(error.problem(), {"Retry-After": "5"})
        logger.exception("database error")
        return problem_response(ProblemError().problem())

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, _exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return problem_response(ProblemError().problem())


def _allowed_methods(request: Request) -> list[str]:
    """Every method the published schema gives the request's path (RFC 9110: `Allow`
    lists the resource's methods).

    Each method of a path is a route of its own, and the router names only the
    methods of the first route whose path matched.
    """
    path = request.url.path
    methods: list[str] = []
    for template, path_item in request.app.openapi().get("paths", {}).items():
        if compile_path(template)[0].match(path):
            methods.extend(method.upper() for method in path_item)
    if "GET" in methods:
        methods.append("HEAD")  # answered as GET without the body, at the edge
    return sorted(methods)


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# What any route with a body may answer before the route itself runs.
_BODY_ERRORS = {"413": "The body is over the size limit"}


def publish_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with error responses as they are sent.

    FastAPI describes every response as `application/json`, and validation
    failures with its own `HTTPValidationError` body; this service answers
    every 4xx and 5xx with an `application/problem+json` Problem.
    """
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            if "requestBody" in operation:
                for status, description in _BODY_ERRORS.items():
                    operation["responses"].setdefault(status, {"description": description})
            for status, response in operation.get("responses", {}).items():
                if str(status)[:1] in ("4", "5"):
                    response["content"] = {PROBLEM_JSON: {"schema": dict(_PROBLEM_REF)}}
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if "Problem" not in schemas:
        definition = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(definition.pop("$defs", {}))
        schemas["Problem"] = definition
    return openapi


_QUERY_CANCELED = "57014"  # PostgreSQL: statement_timeout (or a cancel request)


# PostgreSQL: a deadlock (one side is cancelled) and a lock that could not be had.
_LOCK_WAITS = frozenset({"40P01", "55P03"})


def _is_lock_wait(exc: DBAPIError, sqlstate: str | None) -> bool:
    return sqlstate in _LOCK_WAITS or is_sqlite_busy(exc)


def is_sqlite_busy(error: BaseException) -> bool:
    """SQLite's busy timeout passed while another connection held the write lock."""
    return isinstance(error, OperationalError) and "database is locked" in str(error.orig)


def _is_connection_error(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)
