"""What the search sink needs from a client library, and the errors a backend raises.

A backend wraps one client (``elasticsearch`` or ``opensearch-py``) in two calls,
``request`` and ``bulk``; everything else the sink does is the same for both products.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Protocol

import structlog

Product = Literal["elasticsearch", "opensearch"]

log = structlog.get_logger(__name__)

# The log event of a client warning (a server's Warning header), per product.
WARNING_EVENTS: dict[Product, str] = {
    "elasticsearch": "elasticsearch_warning",
    "opensearch": "opensearch_warning",
}

# Each product's client library (its pip distribution) and the extra that installs it.
EXTRAS: dict[Product, tuple[str, str]] = {
    "elasticsearch": ("elasticsearch", "elasticsearch"),
    "opensearch": ("opensearch-py", "opensearch"),
}


class MissingClientError(ImportError):
    """The client library of a product is not installed; the message names the pip extra.

    >>> print(MissingClientError("opensearch"))
    the opensearch sink needs the opensearch-py client: pip install 'clonewatch[opensearch]'
    """

    def __init__(self, product: Product) -> None:
        client, extra = EXTRAS[product]
        super().__init__(
            f"the {product} sink needs the {client} client: pip install 'clonewatch[{extra}]'"
        )
        self.product = product


class SearchUnavailableError(Exception):
    """The server could not be reached (connection refused, reset, timeout, TLS)."""


class BulkHttpError(Exception):
    """The bulk request as a whole failed with an HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status}: {reason}")
        self.status = status
        self.reason = reason


class SearchBackend(Protocol):
    """What the sink needs from a client library."""

    product: Product

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return (status, body) for any HTTP status.

        Raises SearchUnavailableError when there is no HTTP answer.
        """
        ...

    def bulk(self, lines: Sequence[Mapping[str, Any]], refresh: bool) -> Mapping[str, Any]:
        """Send a bulk request; return its body (HTTP 200).

        Raises SearchUnavailableError, or BulkHttpError on another status.
        """
        ...

    def close(self) -> None:
        """Release the connection pool."""
        ...


def error_reason(body: Any) -> str:
    """``type: reason`` of an Elasticsearch/OpenSearch error body, never the whole body."""
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            kind = err.get("type", "error")
            reason = err.get("reason", "")
            caused = err.get("caused_by")
            text = f"{kind}: {reason}"
            if isinstance(caused, Mapping):
                text += f" (caused by {caused.get('type')}: {caused.get('reason')})"
            return text
        return str(err)[:500]
    return str(body)[:500]


@contextmanager
def logged_warnings(product: Product) -> Iterator[None]:
    """Turn the client's Warning-header warnings into log lines (pytest makes warnings errors).

    Each becomes a :data:`WARNING_EVENTS` log event, its text cut to 500 characters.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        log.warning(WARNING_EVENTS[product], warning=str(warning.message)[:500])
