"""Receives an upload: streamed to a file in the import directory, never held in memory."""

import secrets
from pathlib import Path

import anyio
from fastapi import Request

from app.errors import PayloadTooLarge


async def spool(request: Request, import_dir: Path, max_bytes: int) -> tuple[Path, int]:
    """Writes the request body to a new file; 413 once it passes `max_bytes`.

    A declared Content-Length over the limit is refused before reading anything;
    a chunked body is refused as soon as it passes the limit, and what was
    written so far is deleted.
    """
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
    except BaseException:
        await handle.aclose()
        path.unlink(missing_ok=True)
        raise
    await handle.aclose()
    return path, size
