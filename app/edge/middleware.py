"""Per-request bookkeeping at the edge, in one pure ASGI layer (each layer costs time
on every search): the request id, security headers, metrics and the access log.

It also answers a request whose handler raised with a 500 problem (no stack
trace), so even that response carries its request id, and the error is logged
with it. As the outermost layer it sees every response, so it is also where an
answer given before the request's body was read closes the connection, and where
HEAD is answered as GET without the body (RFC 9110 §9.3.2; monitors and caches
send it, and the routes declare GET alone).
"""

import logging
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect
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
_CLOSE = (b"connection", b"close")
# nginx's status for a request whose client left before it was answered. It is only
# counted and logged (nobody is there to receive it), and it is not a 5xx: alerts on
# server errors must not fire because a client gave up on an upload.
CLIENT_CLOSED_REQUEST = 499


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
        body_unread = _declares_body(scope["headers"])
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def receive_noting_the_end() -> Message:
            nonlocal body_unread
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_unread = False
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = [*message.get("headers", ()), *added]
                if body_unread and _CLOSE not in headers:
                    # Answered before the body was read (refused, or over a limit): the
                    # server would otherwise read and discard the rest to reach the next
                    # request on the connection, gigabytes for an upload. RFC 9112 §9.3:
                    # read the whole body or close the connection after the response.
                    headers.append(_CLOSE)
                message = {**message, "headers": headers}
            elif head and message["type"] == "http.response.body":
                # The same headers, Content-Length included, and no content.
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        try:
            await self.app(
                scope, receive_noting_the_end if body_unread else receive, send_with_headers
            )
        except ClientDisconnect:
            # The client left before it was answered, as when it abandons an upload: its
            # doing, not an error of ours, and nobody is there to answer. (The upload's
            # spool logs it, with how much it had received.)
            if not response_started:
                status = CLIENT_CLOSED_REQUEST
        except Exception:
            logger.exception("unhandled error")
            if not response_started:
                await problem_response(ProblemError().problem())(scope, receive, send_with_headers)
        finally:
            self._record(scope, "HEAD" if head else scope["method"], status, started)

    def _record(self, scope: Scope, method: str, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"  # bounded label values
        if self.metrics is not None:
            self.metrics.observe(method, template, status, seconds)
        if not self.access_log or not access.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {
            "method": method,
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


def _declares_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the request has a body (RFC 9112 §6.3: chunked, or a non-zero length)."""
    return any(
        name == b"transfer-encoding" or (name == b"content-length" and value != b"0")
        for name, value in headers
    )
