"""An import raises the garbage collector's threshold only while it runs."""

import gc
from pathlib import Path

from app.imports import service
from tests.conftest import Backend
from tests.imports.helpers import import_bytes, roster_csv, row


def test_the_thresholds_come_back_after_an_import(backend: Backend, tmp_path: Path) -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    with service._fewer_collections():
        seen.append(gc.get_threshold())
        with service._fewer_collections():  # a second import in another thread
            seen.append(gc.get_threshold())
        seen.append(gc.get_threshold())
    assert [threshold[0] for threshold in seen] == [service._IMPORT_GC_THRESHOLD] * 3
    assert gc.get_threshold() == before
    refused = roster_csv([row(1, "loop", first_name="")])  # a refused record
    assert not import_bytes(backend.engine, tmp_path, refused, payer_id=None).succeeded
    assert gc.get_threshold() == before
