"""Keeping secrets out of what capport prints: error messages, logs and Dagster metadata.

A value is secret when it is
- in a `service` or `connection` entry under a key that names a secret (`password`, `token`,
  `api_key`, `client_secret`, `credentials`, ...), or listed in that entry's `secret_keys`;
- in an environment variable whose name looks secret (`*_PASSWORD`, `*_TOKEN`, `*_KEY`,
  `*_SECRET`, `*_WEBHOOK_URL`, ...) or is named in `$CAPPORT_SECRET_VARS` (comma-separated),
  since `$VARIABLES` expand into paths and URLs that errors and logs quote.

A false positive is not harmless: masking the value of `PWD` (the shell's working directory)
turned every path under it into `***`. So `pwd` and `key` count only as whole words (`DB_PWD`,
`api_key`, not `OLDPWD`, `monkey`), public keys are not secrets (`SSH_PUBLIC_KEY`), and a few
variables that shells, CI runners and the Python images set with public values are not read as
secrets (`PUBLIC_VARIABLES`); `$CAPPORT_SECRET_VARS` still marks any of them.

Every occurrence of a secret value in a text becomes `***`. Values shorter than 4 characters are
not redacted: masking every "1" or "on" in a message would hide more than it protects.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

__all__ = [
    "MASK",
    "PUBLIC_VARIABLES",
    "SECRET_SECTIONS",
    "RedactingLog",
    "Redactor",
    "is_secret_variable",
    "looks_secret",
    "secret_values",
]

MASK = "***"
MIN_LENGTH = 4
SECRET_SECTIONS = ("service", "connection")
# Words that end a secret's name. `password`, `token`, ... end one even glued to the word before
# (`PGPASSWORD`, libpq's; `SYSTEM_ACCESSTOKEN`, Azure Pipelines'); `pwd` and `key` only as whole
# words, since as suffixes they end ordinary names (`OLDPWD`, `monkey`, `LESSKEY`).
# A webhook's URL is its own credential (`DISCORD_WEBHOOK_URL`, `SLACK_WEBHOOK_URL`).
_SECRET_NAME = re.compile(
    r"((^|_)(pwd|key|webhook(_url)?)|password|passwd|token|secret|credentials?|apikey)$",
    re.IGNORECASE,
)
# The public half of a key pair, or a key meant to be published (`STRIPE_PUBLISHABLE_KEY`).
_PUBLIC_KEY = re.compile(r"(^|_)(public|publishable|pub)_key$", re.IGNORECASE)

#: Environment variables whose names look secret but whose values are public, set by a normal
#: shell, CI runner or Python image: `PWD` is the working directory (a prefix of every path the
#: run prints), `GPG_KEY` the official Python images' release-signing key fingerprint,
#: `GOOGLE_APPLICATION_CREDENTIALS` the path of a credentials file (the file is the secret).
#: A config key `pwd` in a service entry is still a password: this list is for the environment.
PUBLIC_VARIABLES = frozenset({"PWD", "GPG_KEY", "GOOGLE_APPLICATION_CREDENTIALS"})


def looks_secret(name: str) -> bool:
    """`DB_PASSWORD`, `api_token`, `AWS_SECRET_ACCESS_KEY`, `password`: yes; `host`: no."""
    return bool(_SECRET_NAME.search(name)) and not _PUBLIC_KEY.search(name)


def is_secret_variable(name: str, marked: Iterable[str] = ()) -> bool:
    """Whether environment variable `name` holds a secret: named in `marked` (from
    `$CAPPORT_SECRET_VARS`), or a secret-looking name that is not in `PUBLIC_VARIABLES`."""
    return name in marked or (looks_secret(name) and name not in PUBLIC_VARIABLES)


def secret_values(
    sections: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str]
) -> frozenset[str]:
    """The secret values of a config's service/connection sections and of the environment."""
    found: set[str] = set()
    for section in SECRET_SECTIONS:
        for body in sections.get(section, {}).values():
            found.update(_secret_leaves(body, marked=()))
    marked = {n.strip() for n in environ.get("CAPPORT_SECRET_VARS", "").split(",") if n.strip()}
    found.update(value for name, value in environ.items() if is_secret_variable(name, marked))
    # Database passwords: those `password_env` names, and the password part of URLs.
    from capport_dagster.core.connections import connection_secrets

    found.update(connection_secrets(sections, environ))
    return frozenset(value for value in found if len(value) >= MIN_LENGTH)


def _secret_leaves(body: Any, marked: Iterable[str], secret: bool = False) -> Iterable[str]:
    if isinstance(body, Mapping):
        keys = set(marked) | set(body.get("secret_keys", ()) or ())
        for key, value in body.items():
            yield from _secret_leaves(value, keys, secret or looks_secret(str(key)) or key in keys)
    elif isinstance(body, list):
        for item in body:
            yield from _secret_leaves(item, marked, secret)
    elif secret and body is not None and not isinstance(body, bool):
        yield str(body)


@dataclass(frozen=True)
class Redactor:
    """Replaces every known secret value in a text with `***` (longest values first)."""

    secrets: frozenset[str] = frozenset()

    def __call__(self, text: str) -> str:
        if not self.secrets or not text:
            return text
        return self._pattern.sub(MASK, text)

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        ordered = sorted(self.secrets, key=len, reverse=True)
        return re.compile("|".join(re.escape(value) for value in ordered))


class RedactingLog(logging.LoggerAdapter):
    """A logger (or Dagster's log manager) whose messages pass through a `Redactor` first."""

    def __init__(self, log: logging.Logger | logging.LoggerAdapter, redact: Redactor) -> None:
        super().__init__(log, {})  # type: ignore[arg-type]
        self._redact = redact

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return self._redact(str(msg)), kwargs
