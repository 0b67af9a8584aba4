"""The services CI provides answer as themselves, and a skip for a missing one fails in CI."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO
from tests.services import REQUIRE_VARIABLE, require_service


def _exchange(name: str, greeting: bytes) -> bytes:
    host, port = require_service(name)
    with socket.create_connection((host, port), timeout=5) as sock:
        if greeting:
            sock.sendall(greeting)
        return sock.recv(256)


def test_postgresql_answers_an_ssl_request():
    # SSLRequest: length 8, code 80877103; the server answers one byte, S or N.
    assert _exchange("postgres", struct.pack("!ii", 8, 80877103)) in (b"S", b"N")


def test_mariadb_greets_with_its_handshake():
    packet = _exchange("mariadb", b"")
    assert packet[4] == 10  # protocol version 10, then the server's version string
    assert b"MariaDB" in packet


def test_redis_answers_ping():
    assert _exchange("redis", b"PING\r\n") == b"+PONG\r\n"


def test_rabbitmq_starts_an_amqp_connection():
    frame = _exchange("rabbitmq", b"AMQP\x00\x00\x09\x01")
    assert frame[0] == 1  # a method frame ...
    assert frame[7:11] == b"\x00\x0a\x00\x0a"  # ... Connection.Start (class 10, method 10)


MISSING = """
from tests.services import skip_for_service

def test_needs_a_service():
    skip_for_service("Nothing on 127.0.0.1:1 is unreachable")

def test_skips_for_another_reason():
    import pytest
    pytest.skip("not on this platform")
"""


@pytest.mark.parametrize(("required", "summary"), [("", "2 skipped"), ("1", "1 failed, 1 skipped")])
def test_a_skip_for_a_missing_service_fails_where_services_are_required(
    tmp_path, required, summary
):
    (tmp_path / "test_missing.py").write_text(textwrap.dedent(MISSING))
    env = {**os.environ, REQUIRE_VARIABLE: required, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.services", "-p", "no:cacheprovider",
         str(tmp_path / "test_missing.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert summary in done.stdout.splitlines()[-1], done.stdout
    if required:
        assert "needs a service: Nothing on 127.0.0.1:1 is unreachable" in done.stdout
        assert done.returncode == 1
    else:
        assert done.returncode == 0
