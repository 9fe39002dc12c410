"""The OpenSearch backend of the search sink, over ``opensearchpy.OpenSearch``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from streams.sinks.search.backend import (
    BulkHttpError,
    MissingClientError,
    Product,
    SearchUnavailableError,
    error_reason,
    logged_warnings,
)
from streams.sinks.search.settings import SearchSettings

try:
    from opensearchpy import OpenSearch
    from opensearchpy.exceptions import ConnectionError as OSConnectionError
    from opensearchpy.exceptions import TransportError
except ImportError as exc:  # the optional client: pip install 'clonewatch[opensearch]'
    raise MissingClientError("opensearch") from exc

__all__ = ["OpenSearchBackend"]

log = structlog.get_logger(__name__)


def _http_status(exc: TransportError) -> int:
    """The HTTP status of a failed request; SearchUnavailableError if there was no HTTP answer."""
    status = exc.status_code
    if isinstance(exc, OSConnectionError) or not isinstance(status, int):
        raise SearchUnavailableError(f"{type(exc).__name__}: {exc.error}") from exc
    return status


class OpenSearchBackend:
    """A SearchBackend over ``opensearchpy.OpenSearch`` (no client-side retries).

    OpenSearch has no API keys of its own; an ``api_key`` is sent as
    ``Authorization: ApiKey <key>`` for proxies and services that accept one.
    """

    product: Product = "opensearch"

    def __init__(self, url: str, settings: SearchSettings) -> None:
        kwargs: dict[str, Any] = {
            "timeout": settings.request_timeout,
            "max_retries": 0,
            "retry_on_timeout": False,
            "verify_certs": settings.verify_certs,
        }
        if settings.api_key:
            kwargs["headers"] = {"authorization": f"ApiKey {settings.api_key}"}
        elif settings.username is not None:
            kwargs["http_auth"] = (settings.username, settings.password or "")
        if settings.ca_file:
            kwargs["ca_certs"] = settings.ca_file
        if not settings.verify_certs:
            kwargs["ssl_show_warn"] = False
            log.warning("tls_verification_disabled", sink="opensearch")
        with logged_warnings("opensearch"):
            self._client = OpenSearch(hosts=[url], **kwargs)

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request; (status, body) for any HTTP status."""
        try:
            with logged_warnings("opensearch"):
                answer = self._client.transport.perform_request(
                    method, path, params=params, body=body
                )
        except TransportError as exc:  # ConnectionError too: no HTTP answer
            return _http_status(exc), exc.info
        return 200, answer

    def bulk(self, lines: Sequence[Mapping[str, Any]], refresh: bool) -> Mapping[str, Any]:
        """Send a bulk request; its body on HTTP 200."""
        params = {"refresh": "true"} if refresh else None
        try:
            with logged_warnings("opensearch"):
                answer: Mapping[str, Any] = self._client.bulk(body=list(lines), params=params)
        except TransportError as exc:  # ConnectionError too: no HTTP answer
            raise BulkHttpError(_http_status(exc), error_reason(exc.info)) from exc
        return answer

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()
