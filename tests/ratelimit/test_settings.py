"""The rate limit's settings are read from the environment and refused at startup if wrong."""

import ipaddress
from collections.abc import Iterator

import pytest

from app.config import InvalidSettings, get_settings
from app.main import create_app


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_trusted_proxies_are_a_comma_separated_list(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("PTDIR_TRUSTED_PROXIES", " 10.0.0.1, 192.168.0.0/16,2001:db8::/48 ,")
    assert get_settings().trusted_proxies == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("2001:db8::/48"),
    )


def test_the_defaults_limit_reads_in_memory(environment: pytest.MonkeyPatch) -> None:
    for name in ("PER_MINUTE", "BURST", "REDIS_URL"):
        environment.delenv(f"PTDIR_RATE_LIMIT_{name}", raising=False)
    environment.delenv("PTDIR_TRUSTED_PROXIES", raising=False)
    settings = get_settings()
    assert (settings.rate_limit_per_minute, settings.rate_limit_burst) == (600, 100)
    assert settings.rate_limit_redis_url == ""
    assert settings.trusted_proxies == ()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "PTDIR_TRUSTED_PROXIES",
            "10.0.0.1,proxy.example",
            "PTDIR_TRUSTED_PROXIES: 'proxy.example'",
        ),
        ("PTDIR_TRUSTED_PROXIES", "10.0.0.0/33", "PTDIR_TRUSTED_PROXIES: '10.0.0.0/33'"),
        ("PTDIR_RATE_LIMIT_PER_MINUTE", "-1", "PTDIR_RATE_LIMIT_PER_MINUTE: "),
        ("PTDIR_RATE_LIMIT_PER_MINUTE", "many", "PTDIR_RATE_LIMIT_PER_MINUTE: "),
        ("PTDIR_RATE_LIMIT_BURST", "0", "PTDIR_RATE_LIMIT_BURST: "),
        ("PTDIR_RATE_LIMIT_REDIS_URL", "localhost:6379", "PTDIR_RATE_LIMIT_REDIS_URL: must be"),
    ],
)
def test_invalid_values_stop_the_service_naming_the_variable(
    environment: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    environment.setenv(variable, value)
    with pytest.raises(InvalidSettings, match=message):
        create_app()
