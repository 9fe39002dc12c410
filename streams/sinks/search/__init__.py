"""The Elasticsearch and OpenSearch sinks: one search sink, one small backend per product.

The rooms, from the bottom up:

* :mod:`~streams.sinks.search.backend`: what the sink needs from a client library
  (:class:`SearchBackend`) and the errors a backend raises;
* :mod:`~streams.sinks.search.layout`: index and data stream names, deterministic
  ids, the index templates and mappings (``templates/*.json``), ILM and ISM policies;
* :mod:`~streams.sinks.search.install`: feature detection and the idempotent install;
* :mod:`~streams.sinks.search.settings`: :class:`SearchSettings` over ``CLONEWATCH_ES_*``;
* :mod:`~streams.sinks.search.bulk`: bulk operations and per-item outcomes;
* :mod:`~streams.sinks.search.sink`: :class:`SearchSink`, buffering and retries;
* :mod:`~streams.sinks.search.elasticsearch` and :mod:`~streams.sinks.search.opensearch`:
  one backend per client library, imported only when that product is asked for.

The product is chosen here, by :func:`build_search_sink`. Importing this package needs
neither client; asking for a product whose client is missing raises
:class:`MissingClientError`, which names the pip extra to install.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from streams.sinks.search.backend import (
    BulkHttpError,
    MissingClientError,
    Product,
    SearchBackend,
    SearchUnavailableError,
    error_reason,
)
from streams.sinks.search.install import detect_features, install
from streams.sinks.search.layout import (
    TEMPLATE_PRIORITY,
    Features,
    IndexNames,
    Retention,
    effective_mappings,
)
from streams.sinks.search.settings import SearchSettings
from streams.sinks.search.sink import SearchSink

__all__ = [
    "TEMPLATE_PRIORITY",
    "BulkHttpError",
    "Features",
    "IndexNames",
    "MissingClientError",
    "Product",
    "Retention",
    "SearchBackend",
    "SearchSettings",
    "SearchSink",
    "SearchUnavailableError",
    "backend_factory",
    "build_search_sink",
    "detect_features",
    "effective_mappings",
    "error_reason",
    "install",
]


def backend_factory(
    kind: Product, url: str, settings: SearchSettings
) -> Callable[[], SearchBackend]:
    """A function creating the backend of ``kind`` at ``url`` (its client is imported now).

    Raises :class:`MissingClientError` when the product's client is not installed, and
    ValueError for an unknown product.
    """
    if kind == "elasticsearch":
        # the optional client, imported only when asked for
        from streams.sinks.search.elasticsearch import ElasticsearchBackend  # noqa: PLC0415

        def es_factory() -> SearchBackend:
            return ElasticsearchBackend(url, settings)

        return es_factory
    if kind == "opensearch":
        from streams.sinks.search.opensearch import OpenSearchBackend  # noqa: PLC0415

        def os_factory() -> SearchBackend:
            return OpenSearchBackend(url, settings)

        return os_factory
    raise ValueError(f"unknown search product {kind!r}: elasticsearch or opensearch")


def build_search_sink(kind: Product, url: str, **settings: Any) -> SearchSink:
    """A search sink for ``kind`` at ``url``; settings as :class:`SearchSettings` fields.

    Unset secrets and the CA file come from the ``CLONEWATCH_ES_*`` environment.
    ``clock``, ``sleep`` and ``env`` may be passed too (tests). Raises
    :class:`MissingClientError` when the product's client library is not installed.
    """
    clock = settings.pop("clock", time.monotonic)
    sleep = settings.pop("sleep", time.sleep)
    env = settings.pop("env", None)
    resolved = SearchSettings.from_env(env, **settings)
    factory = backend_factory(kind, url, resolved)
    return SearchSink(kind, factory, resolved, clock=clock, sleep=sleep)
