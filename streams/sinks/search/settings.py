"""Connection, buffering and retry settings of a search sink, over ``CLONEWATCH_ES_*``."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from streams.redact import register_secret
from streams.sinks.search.layout import DEFAULT_NAMESPACE, Retention, validate_namespace

IndexMode = Literal["auto", "data_stream", "dated"]

ENV_PREFIX = "CLONEWATCH_ES_"


# Durations that CLONEWATCH_ES_<NAME> variables may set (seconds).
_SECONDS = ("request_timeout", "flush_deadline")


def _read_secret_file(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


def _seconds(var: str, text: str) -> float:
    """A positive, finite number of seconds from variable ``var``.

    >>> _seconds("CLONEWATCH_ES_FLUSH_DEADLINE", "2.5")
    2.5
    >>> _seconds("CLONEWATCH_ES_FLUSH_DEADLINE", "nan")
    Traceback (most recent call last):
    ...
    ValueError: CLONEWATCH_ES_FLUSH_DEADLINE: expected a positive number of seconds, got 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{var}: expected a positive number of seconds, got {text!r}")
    return value


def _tuning(env: Mapping[str, str]) -> dict[str, Any]:
    """The timeout, deadline and bulk size set by ``CLONEWATCH_ES_*`` variables.

    >>> _tuning({"CLONEWATCH_ES_FLUSH_DEADLINE": "5", "CLONEWATCH_ES_MAX_RECORDS": "50"})
    {'flush_deadline': 5.0, 'max_records': 50}
    """
    values: dict[str, Any] = {}
    for name in _SECONDS:
        text = env.get(ENV_PREFIX + name.upper())
        if text:
            values[name] = _seconds(ENV_PREFIX + name.upper(), text)
    text = env.get(ENV_PREFIX + "MAX_RECORDS")
    if text:
        if not (text.isascii() and text.isdigit() and int(text) > 0):
            raise ValueError(f"{ENV_PREFIX}MAX_RECORDS: expected a positive integer, got {text!r}")
        values["max_records"] = int(text)
    return values


@dataclass(frozen=True)
class SearchSettings:
    """Connection, buffering and retry settings of a search sink.

    Secrets never appear in ``repr``; :meth:`from_env` reads the ``CLONEWATCH_ES_*``
    variables (``*_FILE`` variants read the value from a file; ``CLONEWATCH_ES_REQUEST_TIMEOUT``
    and ``CLONEWATCH_ES_FLUSH_DEADLINE`` set those two durations, in seconds, and
    ``CLONEWATCH_ES_MAX_RECORDS`` the records per bulk request).
    """

    namespace: str = DEFAULT_NAMESPACE
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    max_records: int = 500
    max_bytes: int = 5_000_000
    max_age: float = 5.0
    flush_deadline: float = 120.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    manage_templates: bool = True
    index_mode: IndexMode = "auto"
    retention_days: int = 90
    rollover_max_age: str = "1d"
    rollover_max_primary_shard_size: str = "50gb"
    refresh: bool = False

    def __post_init__(self) -> None:
        validate_namespace(self.namespace)
        if self.max_records < 1 or self.max_bytes < 1:
            raise ValueError("max_records and max_bytes must be positive")
        if self.index_mode not in ("auto", "data_stream", "dated"):
            raise ValueError(
                f"index_mode must be auto, data_stream or dated, not {self.index_mode!r}"
            )
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        register_secret(self.password)  # masked in every log from now on
        register_secret(self.api_key)

    @property
    def retention(self) -> Retention:
        """The lifecycle part of the settings."""
        return Retention(
            self.retention_days, self.rollover_max_age, self.rollover_max_primary_shard_size
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> SearchSettings:
        """Settings from ``CLONEWATCH_ES_*`` variables, then ``overrides`` (None = not given).

        Besides the fields, ``api_key_file``, ``username_file`` and ``password_file``
        are accepted as overrides.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for secret in ("api_key", "username", "password"):
            var = ENV_PREFIX + secret.upper()
            file_override = overrides.pop(f"{secret}_file", None)
            if overrides.get(secret) is not None:
                continue
            if file_override:
                values[secret] = _read_secret_file(file_override)
            elif env.get(var):
                values[secret] = env[var]
            elif env.get(var + "_FILE"):
                values[secret] = _read_secret_file(env[var + "_FILE"])
        if env.get(ENV_PREFIX + "CA_FILE"):
            values["ca_file"] = env[ENV_PREFIX + "CA_FILE"]
        if env.get(ENV_PREFIX + "VERIFY_CERTS"):
            values["verify_certs"] = env[ENV_PREFIX + "VERIFY_CERTS"].lower() not in (
                "0",
                "false",
                "no",
                "off",
            )
        if env.get(ENV_PREFIX + "NAMESPACE"):
            values["namespace"] = env[ENV_PREFIX + "NAMESPACE"]
        values.update(_tuning(env))
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown search sink settings: {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
