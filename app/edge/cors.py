"""Cross-origin access for public reads only.

A browser page on another origin may GET public data (search, reference data,
therapist records). It is never allowed to write, nor to read private data
(import jobs): those responses carry no CORS headers, and a preflight for them
is answered without any, so the browser refuses. No credentials are allowed:
public reads need none, and writes need an API key a web page must not hold.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_READS = ("GET", "HEAD")
_PRIVATE_PREFIXES = ("/v1/imports",)  # import jobs and their errors (a payer key reads them)
_EXPOSED = b"X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
_MAX_AGE = b"600"


class PublicReadCORS:
    def __init__(self, app: ASGIApp, *, origins: tuple[str, ...]) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = {origin.encode() for origin in origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (not self.any_origin and not self.origins):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin is None or not self._public(scope["path"]) or not self._allowed(origin):
            await self.app(scope, receive, send)
            return
        allow = b"*" if self.any_origin else origin
        method = scope["method"]
        if method == "OPTIONS" and b"access-control-request-method" in headers:
            await self._preflight(headers[b"access-control-request-method"], allow, send)
            return
        if method not in _READS:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                cors = [(b"access-control-allow-origin", allow),
                        (b"access-control-expose-headers", _EXPOSED)]  # fmt: skip
                if not self.any_origin:
                    cors.append((b"vary", b"Origin"))
                message = {**message, "headers": [*message.get("headers", ()), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _public(self, path: str) -> bool:
        return not path.startswith(_PRIVATE_PREFIXES)

    def _allowed(self, origin: bytes) -> bool:
        return self.any_origin or origin in self.origins

    async def _preflight(self, requested: bytes, allow: bytes, send: Send) -> None:
        headers = [(b"content-length", b"0")]
        if requested.decode("latin-1").upper() in _READS:
            headers += [
                (b"access-control-allow-origin", allow),
                (b"access-control-allow-methods", b"GET, HEAD"),
                (b"access-control-allow-headers", b"Accept, Accept-Language, X-Request-ID"),
                (b"access-control-max-age", _MAX_AGE),
            ]
            if not self.any_origin:
                headers.append((b"vary", b"Origin"))
        # A preflight for a write gets no CORS headers: the browser will not send it.
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
