"""A limited stub application, a settable clock and clients at chosen addresses."""

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app.ratelimit.clients import ClientKeys, Network
from app.ratelimit.limiter import Limiter
from app.ratelimit.middleware import RateLimitMiddleware

EXEMPT = frozenset({"/healthz"})


class Clock:
    """Nanoseconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1e9)


async def _ok(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def limited_app(
    limiter: Limiter, *, burst: int, trusted: Iterable[Network] = ()
) -> RateLimitMiddleware:
    """Any path answers 200 "ok" behind the middleware; the limiter closes at shutdown."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await limiter.aclose()

    inner = Starlette(
        routes=[Route("/{path:path}", _ok, methods=["GET", "HEAD", "POST"])], lifespan=lifespan
    )
    return RateLimitMiddleware(
        inner, limiter=limiter, burst=burst, clients=ClientKeys(trusted), exempt=EXEMPT
    )


def client_at(app: RateLimitMiddleware, host: str) -> TestClient:
    """A client whose requests come from `host` (use it in a `with` block)."""
    return TestClient(app, client=(host, 50000))
