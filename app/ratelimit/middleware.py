"""Limits each client's public reads (GET and HEAD): 429 with Retry-After past its rate.

Limited responses carry the IETF RateLimit header fields (draft
httpapi-ratelimit-headers, integer form): RateLimit-Limit is the burst,
RateLimit-Remaining what is left of it, RateLimit-Reset the seconds until it is
whole again. Writes are authenticated and left alone, as are the paths a
monitor or a developer's browser polls (`exempt`).
"""

import math
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_JSON, TooManyRequests, send_problem
from app.ratelimit.clients import ClientKeys
from app.ratelimit.limiter import Limiter

LIMITED_METHODS = frozenset({"GET", "HEAD"})


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: Limiter,
        burst: int,
        clients: ClientKeys,
        exempt: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.clients = clients
        self.exempt = exempt
        self._limit = (b"ratelimit-limit", str(burst).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in LIMITED_METHODS
            or scope["path"] in self.exempt
        ):
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.hit(self.clients.key(scope))
        if decision is None:  # the shared store is unreachable: serve (see RedisLimiter)
            await self.app(scope, receive, send)
            return
        headers = [
            self._limit,
            (b"ratelimit-remaining", str(decision.remaining).encode()),
            (b"ratelimit-reset", str(math.ceil(decision.reset_after)).encode()),
        ]
        if not decision.allowed:
            wait = max(1, math.ceil(decision.retry_after))
            error = TooManyRequests(f"too many requests from this client; retry in {wait} s")
            headers.append((b"retry-after", str(wait).encode()))
            await send_problem(send, error.problem(), headers, body=scope["method"] != "HEAD")
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


RATE_LIMITED_RESPONSE: dict[str, Any] = {
    "description": "Too many reads from this client; retry after `Retry-After` seconds",
    "headers": {
        "Retry-After": {
            "description": "Whole seconds to wait before the next request",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def document_rate_limit(app: FastAPI, exempt: frozenset[str]) -> None:
    """Adds the 429 to the published responses of every GET the middleware limits."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        first = app.openapi_schema is None
        schema = generate()
        if first:  # the schema is generated once and cached by FastAPI
            for path, operations in schema["paths"].items():
                if path not in exempt and "get" in operations:
                    operations["get"]["responses"].setdefault("429", RATE_LIMITED_RESPONSE)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
