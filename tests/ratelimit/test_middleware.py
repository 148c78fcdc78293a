"""The middleware: who is counted, what a refused client sees, what is never limited."""

import ipaddress

import pytest

from app.ratelimit.limiter import MemoryLimiter, Rate
from tests.ratelimit.helpers import Clock, client_at, limited_app

PROXY = "10.0.0.1"
TRUSTED = [ipaddress.ip_network("10.0.0.0/8")]


def statuses(app: object, host: str, n: int, headers: dict[str, str] | None = None) -> list[int]:
    with client_at(app, host) as client:  # type: ignore[arg-type]
        return [client.get("/v1/specialties", headers=headers).status_code for _ in range(n)]


def limited(burst: int = 3, per_minute: int = 60, **kwargs: object) -> object:
    limiter = MemoryLimiter(Rate(per_minute, burst), clock=Clock())
    return limited_app(limiter, burst=burst, **kwargs)  # type: ignore[arg-type]


def test_a_client_over_its_burst_gets_a_problem_429_with_retry_after() -> None:
    app = limited(burst=3)
    with client_at(app, "203.0.113.7") as client:  # type: ignore[arg-type]
        answers = [client.get("/v1/search/therapists?zip=60614") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["ratelimit-limit"] for a in answers} == {"3"}
    assert answers[0].headers["ratelimit-reset"] == "1"
    refused = answers[3]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["ratelimit-reset"] == "3"
    assert refused.json() == {
        "type": "urn:ptdir:problem:rate-limited",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "too many requests from this client; retry in 1 s",
    }


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    clock = Clock()
    app = limited_app(MemoryLimiter(Rate(7, 1), clock=clock), burst=1)  # one per 8.57 s
    with client_at(app, "203.0.113.7") as client:
        assert client.get("/").status_code == 200
        assert client.get("/").headers["retry-after"] == "9"
        clock.advance(8.5)
        assert client.get("/").headers["retry-after"] == "1"
        clock.advance(0.08)
        assert client.get("/").status_code == 200


def test_head_counts_as_a_read_and_its_429_has_no_body() -> None:
    app = limited(burst=1)
    with client_at(app, "203.0.113.7") as client:  # type: ignore[arg-type]
        assert client.head("/v1/payers").status_code == 200
        refused = client.head("/v1/payers")
    assert refused.status_code == 429
    assert refused.content == b""
    assert refused.headers["retry-after"] == "1"


def test_exempt_paths_and_writes_are_not_counted() -> None:
    app = limited(burst=1)
    with client_at(app, "203.0.113.7") as client:  # type: ignore[arg-type]
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
            assert client.post("/v1/payers").status_code == 200
        assert "ratelimit-limit" not in client.get("/healthz").headers
        assert client.get("/v1/payers").status_code == 200
        assert client.get("/v1/payers").status_code == 429


def test_x_forwarded_for_is_ignored_without_trusted_proxies() -> None:
    app = limited(burst=2)
    answers = [
        statuses(app, "203.0.113.7", 1, {"X-Forwarded-For": f"198.51.100.{n}"})[0] for n in range(4)
    ]
    assert answers == [200, 200, 429, 429]


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    app = limited(burst=2, trusted=TRUSTED)
    spoofed = [
        statuses(app, "203.0.113.7", 1, {"X-Forwarded-For": f"198.51.100.{n}"})[0] for n in range(4)
    ]
    assert spoofed == [200, 200, 429, 429]


def test_a_trusted_proxy_forwards_each_client_on_its_own_allowance() -> None:
    app = limited(burst=2, trusted=TRUSTED)
    assert statuses(app, PROXY, 3, {"X-Forwarded-For": "198.51.100.1"}) == [200, 200, 429]
    assert statuses(app, PROXY, 3, {"X-Forwarded-For": "198.51.100.2"}) == [200, 200, 429]
    # The proxy's own requests are a third client.
    assert statuses(app, PROXY, 1) == [200]


def test_spoofed_left_most_entries_do_not_buy_a_new_allowance() -> None:
    app = limited(burst=2, trusted=TRUSTED)
    answers = [
        statuses(app, PROXY, 1, {"X-Forwarded-For": f"192.0.2.{n}, 198.51.100.1, 10.0.0.2"})[0]
        for n in range(3)
    ]
    assert answers == [200, 200, 429]
    # Written as two header lines, the list is the same.
    with client_at(app, PROXY) as client:  # type: ignore[arg-type]
        refused = client.get(
            "/",
            headers=[("X-Forwarded-For", "192.0.2.99"), ("X-Forwarded-For", "198.51.100.1")],
        )
    assert refused.status_code == 429


@pytest.mark.parametrize("forwarded", ["unknown", "", "198.51.100.1, not-an-address", ","])
def test_an_unreadable_forwarded_entry_counts_against_the_proxy(forwarded: str) -> None:
    app = limited(burst=2, trusted=TRUSTED)
    assert statuses(app, PROXY, 2, {"X-Forwarded-For": forwarded}) == [200, 200]
    assert statuses(app, PROXY, 1) == [429]


def test_forwarded_addresses_with_ports_are_read() -> None:
    app = limited(burst=1, trusted=TRUSTED)
    assert statuses(app, PROXY, 1, {"X-Forwarded-For": "198.51.100.1:4711"}) == [200]
    assert statuses(app, PROXY, 1, {"X-Forwarded-For": "198.51.100.1"}) == [429]
    assert statuses(app, PROXY, 1, {"X-Forwarded-For": "[2001:db8::1]:443"}) == [200]
    assert statuses(app, PROXY, 1, {"X-Forwarded-For": "2001:db8::2"}) == [429]


def test_ipv6_clients_share_an_allowance_per_64() -> None:
    app = limited(burst=2)
    assert statuses(app, "2001:db8:0:1::1", 2) == [200, 200]
    assert statuses(app, "2001:db8:0:1:ffff:ffff:ffff:fffe", 1) == [429]
    assert statuses(app, "2001:db8:0:2::1", 1) == [200]


def test_ipv4_mapped_ipv6_peers_are_their_ipv4_address() -> None:
    app = limited(burst=1)
    assert statuses(app, "::ffff:203.0.113.7", 1) == [200]
    assert statuses(app, "203.0.113.7", 1) == [429]
