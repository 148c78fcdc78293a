"""Refuses request bodies over a size limit with 413, without reading past the limit.

A declared Content-Length over the limit is refused before any body is read.
A body without one (chunked) is read here, up to the limit, and handed on only
if it fits: the application never sees a partial body, so the 413 cannot be
swallowed by a body parser downstream.
"""

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge, send_problem


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, streamed: re.Pattern[str] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # POST routes that stream their body to disk under a limit of their own (uploads).
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.streamed is not None
            and scope["method"] == "POST"
            and self.streamed.match(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:  # the server already refuses a malformed one
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        buffered = await self._read_within_limit(receive)
        if buffered is None:
            await self._refuse(send)
            return
        await self.app(scope, self._replay(buffered, receive), send)

    async def _read_within_limit(self, receive: Receive) -> list[Message] | None:
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages  # client disconnected: let the app see it
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None
            if not message.get("more_body", False):
                return messages

    @staticmethod
    def _replay(messages: list[Message], receive: Receive) -> Receive:
        pending = list(messages)

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        return replay

    async def _refuse(self, send: Send) -> None:
        error = PayloadTooLarge(f"the request body is over the limit of {self.max_bytes} bytes")
        await send_problem(send, error.problem(), [(b"connection", b"close")])
