"""The import endpoints: upload, queue, status, errors, and who may see what."""

import base64
import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import Backend, IssueKey
from tests.factories import make_npi
from tests.imports.helpers import checksum, roster_csv, row

QHP = Path(__file__).parents[1] / "fixtures" / "qhp"


def create_payer(client: TestClient, admin: dict[str, str], name: str) -> int:
    response = client.post("/v1/payers", json={"name": name}, headers=admin)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def upload(
    client: TestClient,
    payer_id: int,
    content: bytes,
    headers: dict[str, str],
    **params: Any,
) -> Any:
    return client.post(
        f"/v1/payers/{payer_id}/imports",
        params={"format": "csv"} | params,
        content=content,
        headers=headers | {"Content-Type": "text/csv"},
    )


def wait_for(client: TestClient, job_id: int, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.get(f"/v1/imports/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"import job {job_id} did not finish: {job}")


def test_a_payer_uploads_its_roster_and_follows_the_job(
    client: TestClient, admin: dict[str, str], issue_key: IssueKey
) -> None:
    payer_id = create_payer(client, admin, "Lakeshore Health")
    key = issue_key("payer", payer_id)
    content = roster_csv(
        [row(1, "lakeview", "Silver PPO", plan_type="commercial"), row(2, "loop", "Silver PPO")]
    )
    response = upload(client, payer_id, content, key)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/v1/imports/{job['id']}"
    assert (job["status"], job["format"], job["mode"]) == ("queued", "csv", "replace")
    assert job["progress"]["bytes_total"] == len(content)
    done = wait_for(client, job["id"], key)
    assert done["status"] == "succeeded", done
    assert done["counts"]["therapists_created"] == 2
    assert done["counts"]["participations_created"] == 2
    assert done["progress"]["records_done"] == 3  # the plan declaration, then two therapists
    assert done["duration_seconds"] >= 0
    found = client.get(
        "/v1/search/therapists", params={"zip": "60614", "radius": 10, "payer_id": payer_id}
    )
    assert sorted(item["npi"] for item in found.json()["items"]) == [make_npi(1), make_npi(2)]


def test_refused_records_are_reported_with_line_field_and_message(
    client: TestClient, admin: dict[str, str]
) -> None:
    payer_id = create_payer(client, admin, "Lakeshore Health")
    rows = [row(n, "loop", "Silver PPO", plan_type="commercial") for n in range(1, 6)]
    rows[1]["zip"] = "ABCDE"
    rows[3]["latitude"] = "123"
    job = upload(client, payer_id, roster_csv(rows), admin).json()
    done = wait_for(client, job["id"], admin)
    assert done["status"] == "failed"
    assert done["error_count"] == 2
    assert [(e["line"], e["field"]) for e in done["errors"]] == [
        (3, "zip"),  # the template's columns
        (5, "latitude"),
    ]
    page = client.get(f"/v1/imports/{job['id']}/errors", params={"limit": 1}, headers=admin)
    assert page.status_code == 200
    first = page.json()
    assert [e["line"] for e in first["items"]] == [3]
    rest = client.get(
        f"/v1/imports/{job['id']}/errors",
        params={"limit": 1, "cursor": first["next_cursor"]},
        headers=admin,
    ).json()
    assert [e["line"] for e in rest["items"]] == [5]
    assert rest["next_cursor"] is None
    assert client.get("/v1/therapists", headers=admin).json()["items"] == []
    # A cursor no page issued: an id past any column's range is refused as any other.
    for ids in (2**63, 10**20, 2**31):
        forged = base64.urlsafe_b64encode(f"id:{ids}".encode()).decode().rstrip("=")
        for path in (f"/v1/imports/{job['id']}/errors", "/v1/imports", "/v1/therapists"):
            refused = client.get(path, params={"cursor": forged}, headers=admin)
            assert refused.status_code == 422, (path, ids, refused.text)
            assert refused.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    ("content", "format", "words"),
    [
        (b"", "csv", "empty"),
        (b"   \n\n", "qhp", "empty"),
        ("npi,first_name\n".encode("utf-16"), "csv", "UTF-16"),
        ('[{"npi": "Jos\u00e9"}]'.encode("latin-1"), "qhp", "UTF-8"),
        ("npi,first_name\n1,Jos\u00e9\n".encode("latin-1"), "csv", "0xe9 on line 2"),
        (b'[{"npi": "1234567893", "type": "INDIVIDUAL"', "qhp", "truncated"),
        (b'[{"npi": "1234567893"}]\n{"npi": "1"}', "qhp", "something follows the array"),
        (b"npi,first_name\n1,2\n", "qhp", "'['"),
        (b'{"resourceType": "Bundle"}', "qhp", "'['"),
        (b'[{"npi": "1"}]', "csv", "JSON"),
        (b"name,street\nA,B\n", "csv", "column"),
    ],
)
def test_an_unreadable_file_is_refused_at_once(
    client: TestClient, admin: dict[str, str], content: bytes, format: str, words: str
) -> None:
    payer_id = create_payer(client, admin, "Lakeshore Health")
    response = upload(client, payer_id, content, admin, format=format)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:ptdir:problem:invalid-file"
    assert words in problem["detail"]
    # As every 422, it names what is invalid: the body, the file.
    assert problem["errors"] == [
        {"loc": ["body"], "field": "body", "message": problem["detail"], "type": "file"}
    ]
    assert client.get("/v1/imports", headers=admin).json()["items"] == []


def test_a_bom_is_accepted(client: TestClient, admin: dict[str, str]) -> None:
    payer_id = create_payer(client, admin, "Lakeshore Health")
    content = b"\xef\xbb\xbf" + roster_csv([row(1, "loop", "Silver PPO", plan_type="commercial")])
    job = upload(client, payer_id, content, admin).json()
    assert wait_for(client, job["id"], admin)["status"] == "succeeded"


def test_parameters_are_checked(client: TestClient, admin: dict[str, str]) -> None:
    payer_id = create_payer(client, admin, "Lakeshore Health")
    content = roster_csv([row(1, "loop")])
    unknown = upload(client, payer_id, content, admin, format="xlsx")
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "format"
    bad_mode = upload(client, payer_id, content, admin, mode="overwrite")
    assert bad_mode.json()["errors"][0]["field"] == "mode"
    national = upload(client, payer_id, content, admin, format="nppes")
    assert national.status_code == 422
    assert "POST /v1/imports" in national.json()["errors"][0]["message"]
    missing = upload(client, 999_999, content, admin)
    assert missing.status_code == 404


def test_keys_only_reach_their_own_payers_imports(
    client: TestClient, admin: dict[str, str], issue_key: IssueKey, backend: Backend
) -> None:
    ours = create_payer(client, admin, "Lakeshore Health")
    theirs = create_payer(client, admin, "Prairie Mutual")
    our_key, their_key = issue_key("payer", ours), issue_key("payer", theirs)
    content = roster_csv([row(1, "loop", "Prairie Gold", plan_type="commercial")])
    their_job = upload(client, theirs, content, their_key).json()
    wait_for(client, their_job["id"], their_key)
    before = checksum(backend.engine, "participations", "plans", "import_jobs")

    assert upload(client, theirs, content, our_key).status_code == 403
    for job_id in (their_job["id"], their_job["id"] + 1, their_job["id"] - 1 or 1):
        assert client.get(f"/v1/imports/{job_id}", headers=our_key).status_code == 404
        assert client.get(f"/v1/imports/{job_id}/errors", headers=our_key).status_code == 404
    assert client.get("/v1/imports", headers=our_key).json()["items"] == []
    listed = client.get("/v1/imports", params={"payer_id": theirs}, headers=our_key).json()
    assert listed["items"] == []
    assert (
        client.post("/v1/imports", params={"format": "nppes"}, headers=our_key).status_code == 403
    )
    assert upload(client, theirs, content, {}).status_code == 401
    assert upload(client, theirs, content, {"Authorization": "Bearer nope"}).status_code == 401
    assert checksum(backend.engine, "participations", "plans", "import_jobs") == before
    assert client.get(f"/v1/imports/{their_job['id']}", headers=admin).status_code == 200


def test_a_dry_run_reports_counts_and_writes_nothing(
    client: TestClient, admin: dict[str, str]
) -> None:
    payer_id = create_payer(client, admin, "Lakeshore Health")
    content = roster_csv([row(1, "loop", "Silver PPO", plan_type="commercial")])
    job = upload(client, payer_id, content, admin, dry_run="true").json()
    done = wait_for(client, job["id"], admin)
    assert (done["status"], done["dry_run"]) == ("succeeded", True)
    assert done["counts"]["therapists_created"] == 1
    assert "nothing was written" in done["message"]
    assert client.get("/v1/therapists", headers=admin).json()["items"] == []


def test_qhp_providers_and_plans_from_the_cms_sample(
    client: TestClient, admin: dict[str, str]
) -> None:
    """The official CMS example: plans become the payer's; its physicians are skipped."""
    payer_id = create_payer(client, admin, "Vandelay Insurance")
    plans = client.post(
        f"/v1/payers/{payer_id}/imports",
        params={"format": "qhp_plans"},
        content=(QHP / "plans.json").read_bytes(),
        headers=admin,
    ).json()
    assert wait_for(client, plans["id"], admin)["counts"]["plans_created"] == 3
    names = {p["name"] for p in client.get("/v1/plans", params={"payer_id": payer_id}).json()}
    assert "Vandelay Insurance Gold Health Plan" in names
    providers = client.post(
        f"/v1/payers/{payer_id}/imports",
        params={"format": "qhp"},
        content=(QHP / "providers.json").read_bytes(),
        headers=admin,
    ).json()
    done = wait_for(client, providers["id"], admin)
    # No physical therapist in it: as a replace, it would have ended the payer's network.
    assert done["status"] == "failed", done
    assert done["message"].startswith("no therapist was imported from the file")
    assert done["counts"]["records_skipped"] == 3
    # Which records, and why: the specialty texts that name no physical therapy.
    assert done["counts"]["skipped_examples"] == {
        "no physical-therapy specialty": [
            {"line": 2, "record_index": 0,
             "reason": "no physical-therapy specialty (Dermatology, Oncology)"},
            {"line": 50, "record_index": 1,
             "reason": "no physical-therapy specialty (Ophthalmology)"},
        ],
        "a facility, not an individual provider": [
            {"line": 103, "record_index": 2, "reason": "a facility, not an individual provider"}
        ],
    }  # fmt: skip
    assert done["counts"]["therapists_created"] == 0


@pytest.fixture
def small_limit_client(backend: Backend, import_dir: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=backend.url, import_dir=import_dir, max_import_bytes=2_000, import_workers=0
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as small:
        yield small


def test_a_compressed_body_or_a_form_is_refused_saying_what_to_send(
    client: TestClient, admin: dict[str, str], import_dir: Path
) -> None:
    payer_id = create_payer(client, admin, "Lakeshore Health")
    roster = roster_csv([row(1, "loop")])
    spooled_before = set(import_dir.glob("*.upload"))
    path = f"/v1/payers/{payer_id}/imports"
    gzipped = client.post(
        path,
        params={"format": "csv"},
        content=gzip.compress(roster),
        headers=admin | {"Content-Encoding": "gzip"},
    )
    assert gzipped.status_code == 415
    assert gzipped.json()["detail"].startswith("the body is gzip-encoded (Content-Encoding)")
    form = client.post(
        path, params={"format": "csv"}, files={"file": ("roster.csv", roster)}, headers=admin
    )
    assert form.status_code == 415
    assert "send the file itself as the request body" in form.json()["detail"]
    assert set(import_dir.glob("*.upload")) - spooled_before == set()
    assert client.get("/v1/imports", headers=admin).json()["items"] == []
    plain = client.post(
        path,
        params={"format": "csv"},
        content=roster,
        headers=admin | {"Content-Encoding": "identity", "Content-Type": "text/csv"},
    )
    assert plain.status_code == 202, plain.text


def test_an_upload_over_the_limit_is_refused_without_reading_it(
    client: TestClient,
    admin: dict[str, str],
    small_limit_client: TestClient,
    import_dir: Path,
) -> None:
    payer_id = create_payer(client, admin, "Lakeshore Health")
    big = roster_csv([row(n, "loop") for n in range(1, 40)])
    assert len(big) > 2_000
    # The spool directory is shared by the suite's apps; other tests' uploads may wait
    # there for a worker. What matters is that these refusals leave nothing behind.
    spooled_before = set(import_dir.glob("*.upload"))
    declared = upload(small_limit_client, payer_id, big, admin)
    assert declared.status_code == 413
    assert "2000 bytes" in declared.json()["detail"]
    # Else the server would read the body it refused, to reuse the connection. (This
    # client hands over a chunked body whole; test_upload_connection.py sends one.)
    assert declared.headers["connection"] == "close"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    chunked = small_limit_client.post(
        f"/v1/payers/{payer_id}/imports",
        params={"format": "csv"},
        content=chunks(),
        headers=admin,
    )
    assert chunked.status_code == 413
    assert set(import_dir.glob("*.upload")) - spooled_before == set()


def test_an_upload_answered_before_its_body_is_read_closes_the_connection(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Else the server would read the rest to reach the next request: for a key that is
    # refused, as much as the client cares to send.
    payer_id = create_payer(client, admin, "Lakeshore Health")
    roster = roster_csv([row(1, "loop")])
    refused = upload(client, payer_id, roster, {"Authorization": "Bearer ptd_" + "x" * 40})
    assert refused.status_code == 401
    assert refused.headers["connection"] == "close"
    accepted = upload(client, payer_id, roster, admin)
    assert accepted.status_code == 202, accepted.text
    assert "connection" not in accepted.headers, "a body read to its end keeps the connection"
