"""Database connections: the `connection` section, and stage args naming one (or a `url`).

A connection entry is capport's (fields name environment variables, read when the stage runs)
or a URL, plus a driver::

    connection:
      warehouse:                     # capport's shape
        driver: postgres             # postgres (default) | mysql | sqlite
        host_env: PG_HOST            # host, may hold ":port"
        port: 5432
        user_env: PG_USER
        password_env: PG_PASSWORD
        db_env: PG_DB
      replica:
        url: postgresql://reader:${REPLICA_PASSWORD}@db.internal/warehouse
      local:
        driver: sqlite
        path: $OUTPUT_DIR/local.db   # or url: sqlite:///abs/path.db

`capport validate` checks every entry a stage uses: unknown keys, a missing `host_env` (or
`path` for sqlite), an unknown driver, a URL whose scheme is not a database's, and every
environment variable the entry names that is not set. Passwords are secrets: the password of
a connection and the password part of any URL in a `connection`/`service` entry or the
environment are masked by the run's redactor (:func:`connection_secrets`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from capport_dagster.core.config import CapportConfig, Entry
from capport_dagster.core.variables import BUILTIN_VARIABLES, check_template, expand
from capport_dagster.errors import ConfigError, Location, TaskError, did_you_mean

__all__ = [
    "DRIVERS",
    "Connection",
    "Target",
    "connection_secrets",
    "driver_of_url",
    "parse_connection",
    "url_password",
]

DRIVERS: tuple[str, ...] = ("postgres", "mysql", "sqlite")
#: URL schemes and the driver each means (`postgresql+psycopg` style suffixes are refused).
SCHEMES: Mapping[str, str] = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}
_ENV_FIELDS = ("host_env", "user_env", "password_env", "db_env")


class _ConnectionEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    driver: str | None = None
    url: str | None = None
    path: str | None = None
    host_env: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    user_env: str | None = None
    password_env: str | None = None
    db_env: str | None = None


@dataclass(frozen=True)
class Connection:
    """A checked connection: a URL template, a sqlite path template, or capport's env fields."""

    name: str | None
    driver: str
    url: str | None = None
    path: str | None = None
    host_env: str | None = None
    port: int | None = None
    user_env: str | None = None
    password_env: str | None = None
    db_env: str | None = None

    @property
    def label(self) -> str:
        """How messages and asset keys name it: the entry's name, or the driver for a `url`."""
        return self.name if self.name is not None else self.driver

    def target(self, variables: Mapping[str, str], location: Location) -> Target:
        """The concrete address for this run (variables and environment read now)."""
        if self.url is not None:
            return Target(self.driver, _normal_url(expand(self.url, variables, location)))
        if self.driver == "sqlite":
            assert self.path is not None
            path = Path(expand(self.path, variables, location)).expanduser().absolute()
            return Target("sqlite", f"sqlite://{path}")

        def env(field: str | None) -> str | None:
            if field is None:
                return None
            value = variables.get(field)
            if value is None:
                raise TaskError(
                    f"connection '{self.label}': ${field} is not set (set it in the environment)",
                    location,
                )
            return value.strip()

        host = env(self.host_env) or "localhost"
        if self.port is not None and ":" not in host:
            host = f"{host}:{self.port}"
        user, password, db = env(self.user_env), env(self.password_env), env(self.db_env)
        auth = ""
        if user:
            auth = quote(user, safe="")
            if password:
                auth += ":" + quote(password, safe="")
            auth += "@"
        scheme = "postgresql" if self.driver == "postgres" else "mysql"
        return Target(self.driver, f"{scheme}://{auth}{host}/{db or ''}")


@dataclass(frozen=True)
class Target:
    """A resolved connection: the driver and a URL holding the credentials (a secret: never
    printed; :meth:`redact` masks its password in any text)."""

    driver: str
    url: str

    @property
    def password(self) -> str | None:
        return url_password(self.url)

    def redact(self, text: str) -> str:
        """Mask this URL and its password (raw and percent-encoded) in `text`."""
        for secret in sorted({self.url, self.password or "", _raw_password(self.url)}, key=len)[
            ::-1
        ]:
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    @property
    def sqlite_path(self) -> str:
        return self.url.removeprefix("sqlite://")


def _normal_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    driver = SCHEMES.get(scheme.lower())
    if driver == "postgres":
        return f"postgresql://{rest}"
    if driver == "mysql":
        return f"mysql://{rest}"
    return url


def url_password(url: str) -> str | None:
    """The password of a URL's user info, decoded (`postgresql://u:p%40ss@h/db` -> `p@ss`)."""
    raw = _raw_password(url)
    return unquote(raw) if raw else None


def _raw_password(url: str) -> str:
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return ""
    userinfo, at, _ = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return ""
    return userinfo.partition(":")[2]


def driver_of_url(url: str) -> str | None:
    """The driver a URL's scheme means, None for a scheme that is no database's."""
    scheme, sep, _ = url.partition("://")
    return SCHEMES.get(scheme.lower()) if sep else None


def parse_connection(
    entry: Entry, available: Iterable[str] | None = None, *, needs_env: bool = True
) -> Connection:
    """Check one `connection` entry; every variable it names must be in `available` (the
    environment and the built-ins) when `needs_env`."""
    from capport_dagster.core.registry import validate_model

    where = entry.location
    body = validate_model(_ConnectionEntry, entry.body, where, "connection")
    assert isinstance(body, _ConnectionEntry)
    names = set(os.environ) | set(BUILTIN_VARIABLES) if available is None else set(available)
    return _checked(entry.name, body, names, where, needs_env)


def url_connection(url: str, location: Location, available: Iterable[str]) -> Connection:
    """A stage's own `url:` arg as a connection. A literal password is refused: stage args are
    shown in Dagster's metadata and logs, where only secrets the redactor knows are masked."""
    if url_password(url) and "$" not in _raw_password(url):
        raise ConfigError(
            "url: a password written in a stage's url is not kept secret (put it in an"
            " environment variable, e.g. postgresql://user:${PG_PASSWORD}@host/db, or use a"
            " connection entry)",
            location,
        )
    body = _ConnectionEntry(url=url)
    return _checked(None, body, set(available), location, True)


def _checked(
    name: str | None, body: _ConnectionEntry, available: set[str], where: Location, needs_env: bool
) -> Connection:
    # An entry's errors are located at the entry (which names it); a stage's url at the stage.
    what = "" if name is not None else "url: "
    driver = body.driver
    if driver is not None and driver not in DRIVERS:
        raise ConfigError(
            f"{what}unknown driver {driver!r}{did_you_mean(driver, DRIVERS)}"
            f" (drivers: {', '.join(DRIVERS)})",
            where,
        )
    env_given = [f for f in (*_ENV_FIELDS, "port") if getattr(body, f) is not None]
    if body.url is not None:
        if env_given or body.path is not None:
            given = ", ".join([*env_given, *(["path"] if body.path is not None else [])])
            raise ConfigError(f"{what}give url or {given}, not both", where)
        if needs_env:
            check_template(body.url, available, where)
        scheme_driver = driver_of_url(_scheme_source(body.url, where))
        if scheme_driver is None:
            raise ConfigError(
                # Never the whole URL (without `://` it may be `user:password@host`).
                f"{what}{_scheme_shown(body.url)} is not a database URL scheme (postgresql://,"
                " mysql://, sqlite:///path)",
                where,
            )
        if driver is not None and driver != scheme_driver:
            raise ConfigError(
                f"{what}driver {driver!r} but the url is a {scheme_driver} URL", where
            )
        return Connection(name, scheme_driver, url=body.url)
    driver = driver or "postgres"
    if driver == "sqlite":
        if env_given:
            raise ConfigError(
                f"{what}a sqlite connection takes path (or url), not {', '.join(env_given)}",
                where,
            )
        if body.path is None:
            raise ConfigError(
                f"{what}a sqlite connection needs path: the database file (or url: sqlite:///path)",
                where,
            )
        if needs_env:
            check_template(body.path, available, where)
        return Connection(name, "sqlite", path=body.path)
    if body.path is not None:
        raise ConfigError(f"{what}path is for sqlite connections (driver: sqlite)", where)
    if body.host_env is None:
        raise ConfigError(
            f"{what}missing host_env (the environment variable holding the host) or url",
            where,
        )
    if needs_env:
        unset = [
            f"{field} ${value}"
            for field in _ENV_FIELDS
            if (value := getattr(body, field)) is not None and value not in available
        ]
        if unset:
            raise ConfigError(
                f"{what}environment variable{'s' if len(unset) > 1 else ''} not set:"
                f" {', '.join(unset)} (set {'them' if len(unset) > 1 else 'it'} before running)",
                where,
            )
    return Connection(
        name,
        driver,
        host_env=body.host_env,
        port=body.port,
        user_env=body.user_env,
        password_env=body.password_env,
        db_env=body.db_env,
    )


def _scheme_source(url: str, where: Location) -> str:
    """The URL whose scheme gives the driver: `$DATABASE_URL` is read from the environment
    (the scheme must be known at validate time; the rest is read again when the stage runs)."""
    head = url.split("$", 1)[0]
    if "://" in head or "$" not in url:
        return url
    try:
        return expand(url, {**os.environ, **dict.fromkeys(BUILTIN_VARIABLES, "")}, where)
    except ConfigError:
        return url


def lookup_connection(
    config: CapportConfig, name: str, location: Location, available: Iterable[str]
) -> Connection:
    """The `connection` (or `service`) entry `name`, checked, for a stage at `location`."""
    for section in ("connection", "service"):
        entry = config.section(section).get(name)
        if entry is not None:
            return parse_connection(entry, available)
    known = sorted({*config.section("connection"), *config.section("service")})
    raise ConfigError(
        f"unknown connection '{name}'{did_you_mean(name, known)}"
        f" (connections: {', '.join(known) or 'none defined'})",
        location,
    )


def connection_secrets(
    sections: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str]
) -> set[str]:
    """What the redactor must mask besides secret-named keys and variables: the values of the
    variables a connection's `password_env` names, and the password of every URL found in a
    `connection`/`service` entry or an environment variable (`DATABASE_URL`)."""
    found: set[str] = set()
    # `service` entries too: `postgres` (`database:`) and `load_sql` look them up as well.
    bodies = [
        b for section in ("connection", "service") for b in sections.get(section, {}).values()
    ]
    for body in bodies:
        if isinstance(body, Mapping) and isinstance(body.get("password_env"), str):
            value = environ.get(body["password_env"])
            if value:
                found.update({value, value.strip(), quote(value.strip(), safe="")})
    urls = [value for value in environ.values() if "://" in value]
    for section in ("connection", "service"):
        for body in sections.get(section, {}).values():
            urls.extend(_strings(body))
    for url in urls:
        if "$" in url:
            try:
                url = expand(url, environ, Location())
            except ConfigError:
                continue
        raw = _raw_password(url)
        if raw and "$" not in raw:
            found.update({raw, unquote(raw)})
    return found


def _strings(body: Any) -> Iterable[str]:
    if isinstance(body, Mapping):
        for value in body.values():
            yield from _strings(value)
    elif isinstance(body, list):
        for item in body:
            yield from _strings(item)
    elif isinstance(body, str) and "://" in body:
        yield body


def _scheme_shown(url: str) -> str:
    """`'http'` for `http://...`; a URL without `://` has no scheme to show, and may hold a
    password."""
    scheme, found, _rest = url.partition("://")
    return f"{scheme!r}" if found else "a URL without '://'"
