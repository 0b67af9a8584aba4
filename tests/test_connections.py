"""The `connection` section: parsing, validation errors at their entry, URLs and secrets."""

from __future__ import annotations

import pytest

from capport_dagster.core.config import Entry
from capport_dagster.core.connections import (
    Target,
    connection_secrets,
    parse_connection,
    url_password,
)
from capport_dagster.core.graph import load_project
from capport_dagster.core.secrets import secret_values
from capport_dagster.errors import ConfigError, Location, ValidationError

LOC = Location(file="c.yml", section="connection", name="db")
ENV = {"PG_HOST": "db.example:6543", "PG_USER": "app", "PG_PW": "s3cr:et/@x", "PG_DB": "wh"}


def parse(body, available=ENV):
    return parse_connection(Entry("connection", "db", body, LOC), available)


def test_capports_fields_make_a_url_with_the_password_encoded():
    conn = parse({"host_env": "PG_HOST", "user_env": "PG_USER", "password_env": "PG_PW",
                  "db_env": "PG_DB"})  # fmt: skip
    target = conn.target(ENV, LOC)
    assert target == Target("postgres", "postgresql://app:s3cr%3Aet%2F%40x@db.example:6543/wh")
    assert url_password(target.url) == "s3cr:et/@x"


def test_port_is_added_to_a_host_without_one():
    conn = parse({"driver": "mysql", "host_env": "H", "port": 3307}, {"H": "127.0.0.1"})
    assert conn.target({"H": "127.0.0.1"}, LOC).url == "mysql://127.0.0.1:3307/"


def test_a_url_is_expanded_and_its_scheme_gives_the_driver():
    conn = parse({"url": "postgres://u:${PG_PW}@h/$PG_DB"})
    assert conn.driver == "postgres"
    assert conn.target(ENV, LOC).url == "postgresql://u:s3cr:et/@x@h/wh"


def test_sqlite_takes_a_path(tmp_path):
    conn = parse({"driver": "sqlite", "path": "$OUT/a.db"}, {"OUT": str(tmp_path)})
    assert conn.target({"OUT": str(tmp_path)}, LOC).url == f"sqlite://{tmp_path}/a.db"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"host_env": "PG_HOST", "pasword_env": "PG_PW"},
         "malformed connection: unknown key 'pasword_env' - did you mean 'password_env'?"
         " (keys: db_env, driver, host_env, password_env, path, port, url, user_env)"),
        ({"driver": "oracle", "host_env": "PG_HOST"},
         "unknown driver 'oracle' (drivers: postgres, mysql, sqlite)"),
        ({"driver": "postgress", "host_env": "PG_HOST"},
         "unknown driver 'postgress' - did you mean 'postgres'?"
         " (drivers: postgres, mysql, sqlite)"),
        ({"user_env": "PG_USER"},
         "missing host_env (the environment variable holding the host) or url"),
        ({"driver": "sqlite"},
         "a sqlite connection needs path: the database file (or url:"
         " sqlite:///path)"),
        ({"driver": "sqlite", "host_env": "PG_HOST", "path": "a.db"},
         "a sqlite connection takes path (or url), not host_env"),
        ({"url": "postgresql://h/db", "host_env": "PG_HOST"},
         "give url or host_env, not both"),
        ({"url": "http://h/db"},
         "'http' is not a database URL scheme (postgresql://, mysql://,"
         " sqlite:///path)"),
        ({"url": "reader:Hunter22pw@db.internal/wh"},  # no scheme: never quoted (a password)
         "a URL without '://' is not a database URL scheme (postgresql://, mysql://,"
         " sqlite:///path)"),
        ({"url": "mysql://h/db", "driver": "postgres"},
         "driver 'postgres' but the url is a mysql URL"),
        ({"host_env": "PG_HOST", "user_env": "NOPE_USER", "password_env": "NOPE_PW"},
         "environment variables not set: user_env $NOPE_USER, password_env"
         " $NOPE_PW (set them before running)"),
        ({"url": "postgresql://u:$NOPE_PW@h/db"},
         "undefined variable $NOPE_PW in 'postgresql://u:$NOPE_PW@h/db' (define it in the"
         " environment; built-ins: CONFIG_DIR, OUTPUT_DIR, REF_DATE, REF_DATETIME)"),
        ({"host_env": "PG_HOST", "port": 0},
         "malformed connection: port: input should be greater than or equal to 1"),
    ],
)  # fmt: skip
def test_malformed_entries_are_located_errors(body, message):
    with pytest.raises(ConfigError) as info:
        parse(body)
    assert info.value.message == message
    assert info.value.location == LOC


def test_validate_reports_a_used_connection_at_its_entry(write_config, monkeypatch):
    monkeypatch.delenv("NOPE_HOST", raising=False)
    config = write_config(
        {
            "c.yml": "connection:\n  wh: { host_env: NOPE_HOST }\n",
            "p.yml": """
                pipeline:
                  p:
                    - { label: read, task: load_sql, args: { connection: wh, table: t,
                        df_name: A } }
                    - { label: read2, task: load_sql, args: { connection: whh, table: t,
                        df_name: B } }
            """,
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(config)
    assert [str(p) for p in info.value.errors] == [
        "error: config/c.yml:2, connection 'wh': environment variable not set: host_env"
        " $NOPE_HOST (set it before running)",
        "error: config/p.yml:5, pipeline 'p', stage 'read2' (#2): unknown connection 'whh' -"
        " did you mean 'wh'? (connections: wh)",
    ]


def test_a_literal_password_in_a_stage_url_is_refused(write_config):
    config = write_config(
        {
            "p.yml": """
                pipeline:
                  p:
                    - { label: read, task: load_sql, args: {
                        url: "postgresql://u:hunter22@h/db", table: t, df_name: A } }
            """
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(config)
    [problem] = info.value.errors
    assert str(problem) == (
        "error: config/p.yml:3, pipeline 'p', stage 'read' (#1): url: a password written in a"
        " stage's url is not kept secret (put it in an environment variable, e.g."
        " postgresql://user:${PG_PASSWORD}@host/db, or use a connection entry)"
    )


def test_connection_passwords_are_secrets():
    sections = {
        "connection": {
            "a": {"host_env": "H", "password_env": "DB_PW"},
            "b": {"url": "postgresql://u:literal-pw@h/db"},
            "c": {"url": "postgresql://u:${URL_PW}@h/db"},
        },
        "service": {
            "s": {"dsn": "mysql://root:svc-pass@h/db"},
            "pg": {"host_env": "H", "password_env": "SVC_DB_PW"},  # `postgres` reads services
        },
    }
    environ = {
        "DB_PW": "pw-from-env",
        "SVC_DB_PW": "svc-pw-from-env",
        "URL_PW": "pw-in-url",
        "DATABASE_URL": "postgres://x:dbu-pw@h/d",
    }
    found = connection_secrets(sections, environ)
    assert {"pw-from-env", "svc-pw-from-env", "literal-pw", "pw-in-url", "svc-pass"} <= found
    assert "dbu-pw" in found
    # and the project's redactor gets them
    assert {"pw-from-env", "literal-pw", "dbu-pw"} <= secret_values(sections, environ)


def test_target_redacts_its_url_and_password():
    target = Target("postgres", "postgresql://u:p%40ssword@h/db")
    assert target.redact("failed: postgresql://u:p%40ssword@h/db (p@ssword)") == "failed: *** (***)"
