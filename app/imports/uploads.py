"""Receives an upload: streamed to a file in the import directory, never held in memory."""

import logging
import secrets
from pathlib import Path

import anyio
from fastapi import Request
from starlette.requests import ClientDisconnect

from app.errors import PayloadTooLarge, UnsupportedMediaType

logger = logging.getLogger(__name__)


async def spool(request: Request, import_dir: Path, max_bytes: int) -> tuple[Path, int]:
    """Writes the request body to a new file; 413 once it passes `max_bytes`.

    A declared Content-Length over the limit is refused before reading anything;
    a chunked body is refused as soon as it passes the limit, and what was
    written so far is deleted. (The edge closes the connection after either 413,
    so the server does not read the rest.) A client that leaves midway raises
    `ClientDisconnect`, once its partial file is deleted.
    """
    _require_the_file_itself(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the file is over the import limit of {max_bytes} bytes")
    await anyio.to_thread.run_sync(lambda: import_dir.mkdir(parents=True, exist_ok=True))
    path = import_dir / f"{secrets.token_hex(16)}.upload"
    size = 0
    handle = await anyio.open_file(path, "wb")
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"the file is over the import limit of {max_bytes} bytes")
            await handle.write(chunk)
    except BaseException as error:
        await handle.aclose()
        path.unlink(missing_ok=True)
        if isinstance(error, ClientDisconnect):
            # Routine for a large upload (a dropped link, a cancelled client), and nothing
            # is left of it: a line for whoever wonders where it went, not an error.
            logger.info("the client closed the connection after %d bytes of its upload", size)
        raise
    await handle.aclose()
    return path, size


def _require_the_file_itself(request: Request) -> None:
    """415 for a body that is not the file as it is: compressed, or a form around it.

    Read as the file, a gzip body is "not UTF-8" and a form's boundary line "an
    unknown column": true, and no help to whoever sent them.
    """
    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise UnsupportedMediaType(
            f"the body is {coding}-encoded (Content-Encoding), which this API does not "
            "decode; send the file uncompressed"
        )
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type.startswith("multipart/") or media_type == "application/x-www-form-urlencoded":
        raise UnsupportedMediaType(
            f"the body is a form ({media_type}); send the file itself as the request body"
        )
