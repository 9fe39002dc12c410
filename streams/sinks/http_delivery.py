"""HTTP delivery shared by the HEC and webhook sinks: retries with full jitter, ``Retry-After``,
a dead-letter JSONL file, and small helpers to read settings from the environment.

Only the standard library is used (``urllib.request``).
"""

from __future__ import annotations

import email.utils
import fcntl
import json
import os
import random
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.logread import read_objects
from streams.redact import register_secret

RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry: ``sleep = random(0, min(cap, base * 2**n))``.

    ``Retry-After`` from the server wins over the jitter (never above ``retry_after_cap``).
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    retry_after_cap: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.retry_after_cap < 0:
            raise ValueError("delays cannot be negative")

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """The sleep before retry number ``retry`` (0 for the first retry).

        >>> RetryPolicy(base_delay=1, max_delay=4).backoff(0, retry_after=2.5)
        2.5
        >>> 0 <= RetryPolicy(base_delay=1, max_delay=4).backoff(10) <= 4
        True
        """
        if retry_after is not None:
            return min(self.retry_after_cap, max(retry_after, 0.0))
        return random.uniform(0.0, min(self.max_delay, self.base_delay * (2**retry)))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True, slots=True)
class HttpResult:
    """The outcome of one HTTP attempt: a status (0 when no response arrived) and what came back."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """No answer (timeout, refused), 408/425/429, or any 5xx."""
        return self.status == 0 or self.status in RETRYABLE_STATUS or self.status >= 500

    @property
    def retry_after(self) -> float | None:
        """The server's ``Retry-After``, in seconds."""
        for key, value in self.headers.items():
            if key.lower() == "retry-after":
                return parse_retry_after(value)
        return None

    def describe(self) -> str:
        """A short text for logs and dead letters (the body is cut to 300 characters)."""
        if self.status == 0:
            return self.error or "no response"
        snippet = self.body[:300].decode("utf-8", errors="replace")
        return f"HTTP {self.status}: {snippet}".rstrip(": ")


def ssl_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    """A client TLS context: system CAs or ``ca_file``, verification on unless told otherwise."""
    ctx = ssl.create_default_context(cafile=ca_file)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> HttpResult:
    """One POST; never raises for HTTP or network failures (they come back in the result)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"only http and https URLs are supported, got {url!r}")
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            return HttpResult(
                status=response.status, body=response.read(), headers=dict(response.headers)
            )
    except urllib.error.HTTPError as exc:
        with exc:
            payload = exc.read()
        return HttpResult(status=exc.code, body=payload, headers=dict(exc.headers or {}))
    except urllib.error.URLError as exc:
        return HttpResult(status=0, error=f"{type(exc.reason).__name__}: {exc.reason}")
    except TimeoutError as exc:
        return HttpResult(status=0, error=f"timeout: {exc}")
    except OSError as exc:  # reset, broken pipe, ...
        return HttpResult(status=0, error=f"{type(exc).__name__}: {exc}")


def deliver_with_retries(
    attempt: Callable[[], HttpResult],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    on_retry: Callable[[int, HttpResult, float], None] | None = None,
) -> tuple[HttpResult, int]:
    """Call ``attempt`` until it succeeds, fails for good, or ``policy.max_attempts`` is used up.

    Returns the last result and the number of attempts made.
    """
    result = attempt()
    attempts = 1
    while not result.ok and result.retryable and attempts < policy.max_attempts:
        delay = policy.backoff(attempts - 1, result.retry_after)
        if on_retry is not None:
            on_retry(attempts, result, delay)
        sleep(delay)
        result = attempt()
        attempts += 1
    return result, attempts


class DeadLetterFile:
    """An append-only JSONL file of deliveries that failed; ``rewrite`` keeps what still fails.

    A sibling ``.lock`` file serialises writers (a running worker and ``clonewatch redeliver``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock of this dead-letter file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def append(self, entries: list[dict[str, Any]]) -> None:
        """Append entries, one JSON object a line, flushed to disk."""
        if not entries:
            return
        with self.locked(), self.path.open("a", encoding="utf-8") as out:
            for entry in entries:
                out.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def _read_unlocked(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return list(read_objects(self.path))  # ValueError naming path:line for a bad one

    def read(self) -> list[dict[str, Any]]:
        """Every entry, oldest first."""
        with self.locked():
            return self._read_unlocked()

    def process(self, handle: Callable[[dict[str, Any]], dict[str, Any] | None]) -> tuple[int, int]:
        """Run ``handle`` on every entry under the lock; an entry is kept when it returns a dict
        (the updated entry) and removed when it returns None. Returns (removed, kept).
        """

        def each(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [kept for entry in entries if (kept := handle(entry)) is not None]

        return self.process_all(each)

    def process_all(
        self, handle: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
    ) -> tuple[int, int]:
        """Run ``handle`` on all entries at once under the lock (batched resending); the
        entries it returns are kept, the others removed. Returns (removed, kept).
        """
        with self.locked():
            entries = self._read_unlocked()
            kept = handle(entries)
            tmp = self.path.with_name(self.path.name + ".tmp")
            with tmp.open("w", encoding="utf-8") as out:
                for entry in kept:
                    out.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(self.path)
            return len(entries) - len(kept), len(kept)


def utc_now_iso() -> str:
    """The current time, ISO 8601 in UTC with a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Settings from the environment.


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    """A non-empty variable, or the default."""
    value = env.get(name)
    return value if value not in (None, "") else default


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off."""
    value = env_str(env, name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}: expected a boolean, got {value!r}")


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    """A number variable."""
    value = env_str(env, name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ValueError(f"{name}: expected a number, got {value!r}") from exc


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """An integer variable."""
    value = env_str(env, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name}: expected an integer, got {value!r}") from exc


def read_secret(value: str | None, file: str | None, what: str) -> str | None:
    """A secret given directly or as a file path (the file wins; surrounding whitespace dropped)."""
    if file:
        try:
            text = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read the {what} file {file}: {exc.strerror}") from exc
        if not text:
            raise ValueError(f"the {what} file {file} is empty")
        register_secret(text)  # masked in every log from now on
        return text
    register_secret(value)
    return value.strip() if value else None
