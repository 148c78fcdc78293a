"""Per-request bookkeeping at the edge, in one pure ASGI layer (each layer costs time
on every search): the request id, security headers, metrics and the access log.

It also answers a request whose handler raised with a 500 problem (no stack
trace), so even that response carries its request id, and the error is logged
with it.
"""

import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.edge import request_id
from app.edge.logs import ACCESS_LOGGER, coarse_search
from app.edge.metrics import Metrics
from app.errors import ProblemError, problem_response

logger = logging.getLogger(__name__)
access = logging.getLogger(ACCESS_LOGGER)

SEARCH_ROUTE = "/v1/search/therapists"
_SECURITY_HEADERS = [
    # Responses are JSON; a browser must not guess otherwise.
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics | None, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = next((v for k, v in scope["headers"] if k == request_id.HEADER), None)
        rid = request_id.incoming_or_new(incoming)
        request_id.current.set(rid)  # each request runs in its own task: no reset needed
        added = [(request_id.HEADER, rid.encode()), *_SECURITY_HEADERS]
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unhandled error")
            if not response_started:
                await problem_response(ProblemError().problem())(scope, receive, send_with_headers)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"  # bounded label values
        if self.metrics is not None:
            self.metrics.observe(scope["method"], template, status, seconds)
        if not self.access_log or not access.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {
            "method": scope["method"],
            "route": template,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        client = scope.get("client")
        if client:
            fields["client"] = client[0]
        if template == SEARCH_ROUTE:
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            fields["search"] = coarse_search(dict(pairs), [name for name, _ in pairs])
        access.info("request", extra=fields)
