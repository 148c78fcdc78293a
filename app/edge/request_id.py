"""One id per request: taken from a well-formed `X-Request-ID`, else made here.

It is echoed on the response and added to every log line written while the
request runs, so a client's report and the server's logs can be matched.
"""

import re
import uuid
from contextvars import ContextVar

HEADER = b"x-request-id"
# Anything else a client sends is replaced, so a log line cannot be forged or bloated.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,64}")

current: ContextVar[str | None] = ContextVar("request_id", default=None)


def incoming_or_new(value: bytes | None) -> str:
    if value is not None:
        text = value.decode("latin-1")
        if _WELL_FORMED.fullmatch(text):
            return text
    return uuid.uuid4().hex
