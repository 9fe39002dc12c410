"""The Elasticsearch backend of the search sink, over the ``elasticsearch`` 9.x client."""

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
    import elastic_transport
    from elasticsearch import ApiError, Elasticsearch
except ImportError as exc:  # the optional client: pip install 'clonewatch[elasticsearch]'
    raise MissingClientError("elasticsearch") from exc

__all__ = ["ElasticsearchBackend"]

log = structlog.get_logger(__name__)

_JSON = {"accept": "application/json", "content-type": "application/json"}


class ElasticsearchBackend:
    """A SearchBackend over ``elasticsearch.Elasticsearch`` (no client-side retries)."""

    product: Product = "elasticsearch"

    def __init__(self, url: str, settings: SearchSettings) -> None:
        kwargs: dict[str, Any] = {
            "request_timeout": settings.request_timeout,
            "max_retries": 0,
            "retry_on_timeout": False,
            "verify_certs": settings.verify_certs,
        }
        if settings.api_key:
            kwargs["api_key"] = settings.api_key
        elif settings.username is not None:
            kwargs["basic_auth"] = (settings.username, settings.password or "")
        if settings.ca_file:
            kwargs["ca_certs"] = settings.ca_file
        if not settings.verify_certs:
            kwargs["ssl_show_warn"] = False
            log.warning("tls_verification_disabled", sink="elasticsearch")
        self._bulk_params: dict[str, Any] = {}
        self._client = Elasticsearch(url, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request; (status, body) for any HTTP status."""
        try:
            with logged_warnings("elasticsearch"):
                response = self._client.perform_request(
                    method, path, params=params, headers=_JSON, body=body
                )
        except ApiError as exc:
            return exc.meta.status, exc.body
        except elastic_transport.TransportError as exc:
            raise SearchUnavailableError(f"{type(exc).__name__}: {exc.message}") from exc
        return response.meta.status, response.body

    def bulk(self, lines: Sequence[Mapping[str, Any]], refresh: bool) -> Mapping[str, Any]:
        """Send a bulk request; its body on HTTP 200."""
        try:
            with logged_warnings("elasticsearch"):
                response = self._client.bulk(
                    operations=lines,
                    refresh=refresh or None,
                    # keep document values out of error reasons (they reach logs and dead letters)
                    include_source_on_error=False,
                )
        except ApiError as exc:
            raise BulkHttpError(exc.meta.status, error_reason(exc.body)) from exc
        except elastic_transport.TransportError as exc:
            raise SearchUnavailableError(f"{type(exc).__name__}: {exc.message}") from exc
        body: Mapping[str, Any] = response.body
        return body

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()
