"""An S3 server for tests: moto's, on 127.0.0.1 on a free port, one per test process, and a fresh
bucket per test with the `AWS_*` environment pointing at it.

`tests/conftest.py` loads this module as a pytest plugin, which registers its fixtures
(`s3_server`, `s3_bucket`) for every test; `S3Bucket` is the type of what `s3_bucket` gives::

    def test_reads_an_object(s3_bucket):
        s3_bucket.put("in/a.csv", b"id\\n1\\n")
        ...  # load f"{s3_bucket.uri}/in/a.csv": credentials and endpoint come from the environment

Without moto the tests skip, which CI (`CAPPORT_REQUIRE_SERVICES=1`) reports as a failure
(`tests/services.py`). Each bucket has a unique name and is emptied and deleted after its test,
so tests run side by side (pytest-xdist: each worker process has its own server). The
environment is made whole by the fixture: the user's own AWS configuration (`~/.aws`,
`AWS_PROFILE`, a session token) is kept out, so a test never reaches a real account.
"""

from __future__ import annotations

import logging
import secrets
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.services import skip_for_service

__all__ = ["S3Bucket", "S3Server", "s3_bucket", "s3_server"]

REGION = "us-east-1"
ACCESS_KEY = "capport-test-access"


@dataclass(frozen=True)
class S3Server:
    """A running moto server: its endpoint (`http://127.0.0.1:PORT`)."""

    endpoint: str

    def client(self) -> Any:
        """A boto3 client of the server, with the test credentials (independent of the
        environment and of the code under test)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key="capport-test-secret",
        )

    def enforce_credentials(self, enforce: bool) -> None:
        """Make the server check credentials (every request then fails: moto knows none of
        ours, as a store refusing a key would), or stop checking them."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0" if enforce else b"inf",  # requests before checking starts
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


@dataclass(frozen=True)
class S3Bucket:
    """A bucket of the test server: `uri` is `s3://<name>`."""

    name: str
    server: S3Server
    #: The value of `AWS_SECRET_ACCESS_KEY` while the test runs (unique: tests look for it).
    secret: str

    @property
    def uri(self) -> str:
        return f"s3://{self.name}"

    def put(self, key: str, body: bytes) -> None:
        self.server.client().put_object(Bucket=self.name, Key=key, Body=body)

    def get(self, key: str) -> bytes:
        return self.server.client().get_object(Bucket=self.name, Key=key)["Body"].read()

    def keys(self) -> list[str]:
        """Every key of the bucket, sorted."""
        listed = self.server.client().list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def uploads(self) -> list[str]:
        """The keys of multipart uploads begun and neither completed nor aborted."""
        listed = self.server.client().list_multipart_uploads(Bucket=self.name)
        return sorted(item["Key"] for item in listed.get("Uploads", []))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 on a free port, for the whole session (of this process)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        skip_for_service("moto is not installed")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[S3Bucket]:
    """A new, empty bucket with a unique name, and the environment the code under test reads
    (botocore, Polars' object_store) pointing at the server. Emptied and deleted after."""
    bucket = S3Bucket(
        f"capport-test-{secrets.token_hex(6)}", s3_server, f"sEcReT-{secrets.token_hex(12)}"
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    missing = tmp_path / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", bucket.secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    client = s3_server.client()
    client.create_bucket(Bucket=bucket.name)
    try:
        yield bucket
    finally:
        s3_server.enforce_credentials(False)
        _delete(client, bucket.name)


def _delete(client: Any, name: str) -> None:
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for item in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)
