"""JSON log lines, each with the request id of the request that wrote it.

Nothing here logs headers or bodies, so API keys never reach a log. A search's
origin is personal (it is often where the searcher lives) and its filters can
be health information (a condition), so the access log keeps only a coarsened
origin (0.1° ≈ 11 km, or a ZIP's first three digits) and the filter names.
"""

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from app.edge import request_id

ACCESS_LOGGER = "ptdir.access"
_HANDLER_NAME = "ptdir"
# The standard attributes of a LogRecord; anything else came in through `extra`.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which server process, with several workers
        }
        rid = request_id.current.get()
        if rid is not None:
            line["request_id"] = rid
        line |= {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _TextFormatter(logging.Formatter):
    """For a terminal: the usual line, then the extra fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _RECORD_FIELDS)
        rid = request_id.current.get()
        return " ".join(part for part in (text, extra, f"[{rid}]" if rid else "") if part)


def configure_logging(level: str, fmt: str) -> None:
    """One handler on the root logger (installed once), and the server's own loggers
    sent through it; the server's access log is replaced by ours."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        root.addHandler(handler)
    text = _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(JSONFormatter() if fmt == "json" else text)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        server = logging.getLogger(name)
        server.handlers.clear()
        server.propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def coarse_search(query: Mapping[str, str], names: list[str]) -> dict[str, Any]:
    """What the access log keeps of a search: a coarse origin and the filters' names."""
    origin: str | None = None
    try:
        if "lat" in query and "lon" in query:
            origin = f"{float(query['lat']):.1f},{float(query['lon']):.1f}"
        elif "bbox" in query:
            origin = "bbox " + ",".join(f"{float(v):.1f}" for v in query["bbox"].split(",")[:4])
    except ValueError:
        origin = "invalid"
    if origin is None and "zip" in query:
        origin = "zip " + query["zip"][:3] + "xx"
    elif origin is None and "city" in query:
        origin = f"{query['city'][:40]}, {query.get('state', '')[:2]}"
    skip = {"lat", "lon", "bbox", "zip", "city", "state", "cursor"}
    return {"origin": origin, "parameters": sorted({n for n in names if n not in skip})}
