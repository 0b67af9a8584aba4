"""Tests that need a real service: skipped where it is unreachable, failed where it must be there.

On a user's laptop a test that needs PostgreSQL, MariaDB, Redis or RabbitMQ (or an optional
package standing in for one, such as an S3 emulator) skips, saying what is missing. CI
(`.ci/run`) sets `CAPPORT_REQUIRE_SERVICES=1`: there every such skip is reported as a failure,
so a service that is down, or a missing package, can never pass as a green run.

    from tests.services import require_service, skip_for_service

    def test_reads_a_table():
        host, port = require_service("postgres")
        ...

A test that has to skip for another service-like reason (a package not installed) calls
`skip_for_service("moto is not installed")`. Registered as a pytest plugin by `conftest.py`.
"""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ["REQUIRE_VARIABLE", "SERVICES", "SKIP_PREFIX", "require_service", "skip_for_service"]

#: What the machines this project runs on provide, on loopback (see the README).
SERVICES: dict[str, tuple[str, int]] = {
    "postgres": ("PostgreSQL", 5432),
    "mariadb": ("MariaDB", 3306),
    "redis": ("Redis", 6379),
    "rabbitmq": ("RabbitMQ", 5672),
}
HOST = "127.0.0.1"
REQUIRE_VARIABLE = "CAPPORT_REQUIRE_SERVICES"
#: Every skip for a missing service starts with this; the hook below finds them by it.
SKIP_PREFIX = "needs a service:"


def skip_for_service(reason: str) -> None:
    pytest.skip(f"{SKIP_PREFIX} {reason}")


def require_service(name: str, *, timeout: float = 2.0) -> tuple[str, int]:
    """The address of service `name`, or a skip (a failure in CI) when nothing listens there."""
    label, port = SERVICES[name]
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            pass
    except OSError as exc:
        skip_for_service(f"{label} on {HOST}:{port} is unreachable ({exc.strerror or exc})")
    return HOST, port


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.skipped or os.environ.get(REQUIRE_VARIABLE) != "1":
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if SKIP_PREFIX in reason:
        report.outcome = "failed"
        report.longrepr = f"{reason} ({REQUIRE_VARIABLE}=1: a missing service is a failure)"
