"""Fixtures for the search sink tests: server URLs, a fresh namespace, records, a TCP proxy.

Import the fixtures into a test module (``from sinks_fixtures import ...``). Server URLs
come from the shared ``elasticsearch_url`` / ``opensearch_url`` fixtures when the
integration conftest defines them, else from ``CLONEWATCH_ES_PORT`` / ``CLONEWATCH_OS_PORT``
(defaults 19200 / 19201, as scripts/services.sh uses).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.alert import Alert, RiskScore
from streams.sinks.base import OutputRecord
from streams.sinks.search import IndexNames, Product, SearchBackend, SearchSettings
from streams.sinks.search.elasticsearch import ElasticsearchBackend
from streams.sinks.search.opensearch import OpenSearchBackend

DEFAULT_PORTS = {
    "elasticsearch": ("CLONEWATCH_ES_PORT", 19200),
    "opensearch": ("CLONEWATCH_OS_PORT", 19201),
}


def _fallback_url(product: Product) -> str:
    var, port = DEFAULT_PORTS[product]
    return f"http://127.0.0.1:{os.environ.get(var, port)}"


@pytest.fixture(params=["elasticsearch", "opensearch"])
def product(request: pytest.FixtureRequest) -> Product:
    """Each search product in turn."""
    value: Product = request.param
    return value


@pytest.fixture
def search_url(request: pytest.FixtureRequest, product: Product) -> str:
    """The URL of the real server of ``product`` (shared fixture when there is one)."""
    try:
        url = request.getfixturevalue(f"{product}_url")
    except pytest.FixtureLookupError:
        url = _fallback_url(product)
    return str(url).rstrip("/")


def make_backend(product: Product, url: str) -> SearchBackend:
    """A raw backend to inspect the server with (counts, mappings, refresh)."""
    settings = SearchSettings()
    if product == "elasticsearch":
        return ElasticsearchBackend(url, settings)
    return OpenSearchBackend(url, settings)


@pytest.fixture
def inspector(product: Product, search_url: str) -> Iterator[SearchBackend]:
    """A backend on the real server, to check what the sink wrote."""
    backend = make_backend(product, search_url)
    status, _ = backend.request("GET", "/_cluster/health")
    if status != 200:
        pytest.fail(f"{product} at {search_url} does not answer: run scripts/services.sh up")
    yield backend
    backend.close()


@pytest.fixture
def namespace(inspector: SearchBackend) -> Iterator[str]:
    """A fresh namespace; its data streams and indices are deleted afterwards."""
    ns = "t" + uuid.uuid4().hex[:10]
    yield ns
    names = IndexNames(ns)
    for stream in (names.alert, names.risk_history):
        inspector.request("DELETE", f"/_data_stream/{stream}")
    # Elasticsearch 9 refuses wildcard deletes (destructive_requires_name): delete by name.
    status, listed = inspector.request(
        "GET", f"/_cat/indices/*-{ns}*", params={"format": "json", "h": "index"}
    )
    dated = [row["index"] for row in listed] if status == 200 else []
    for index in [*dated, names.risk_latest, names.dead_letter]:
        inspector.request("DELETE", f"/{index}")


def alert_record(n: int, client: str = "client-1", model: str = "model-a") -> OutputRecord:
    """A contract-valid alert with id ``alert-<n>``."""
    alert = Alert.model_validate(
        {
            "@timestamp": f"2025-03-09T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "event": {
                "id": f"event-{n}",
                "severity": 73,
                "risk_score": 73.5,
                "risk_score_norm": 73.5,
            },
            "user": {"id": client},
            "source": {"ip": "203.0.113.7"},
            "message": f"{client} risk on {model} rose to high",
            "clonewatch": {
                "model_id": model,
                "risk_level": "high",
                "queries_observed": 1000 + n,
                "trigger_event_id": f"query-{n}",
                "signals": [
                    {"name": "volume", "value": 12.5, "score": 30.0},
                    {"name": "coverage", "value": 0.8, "score": 43.5},
                ],
                "campaign_id": "campaign-7",
                "campaign_members": [client, "client-2"],
            },
        }
    )
    return OutputRecord("alert", f"alert-{n}", client, alert.to_dict())


def risk_record(
    n: int, score: float, ts: str, client: str = "client-1", campaign: str | None = None
) -> OutputRecord:
    """A contract-valid risk score with id ``risk-<n>``."""
    context: dict[str, Any] = {
        "model_id": "model-a",
        "risk_level": "high" if score >= 70 else "moderate",
        "queries_observed": 500 + n,
        "trigger_event_id": f"query-{n}",
        "signals": [{"name": "volume", "value": 3.0, "score": score}],
    }
    if campaign:
        context["campaign_id"] = campaign
    risk = RiskScore.model_validate(
        {
            "@timestamp": ts,
            "event": {"id": f"risk-event-{n}"},
            "user": {
                "id": client,
                "risk": {"calculated_score_norm": score, "calculated_level": context["risk_level"]},
            },
            "clonewatch": context,
        }
    )
    return OutputRecord("risk", f"risk-{n}", client, risk.to_dict())


def count(inspector: SearchBackend, target: str) -> int:
    """Refresh ``target`` and count its documents."""
    inspector.request("POST", f"/{target}/_refresh")
    status, body = inspector.request("GET", f"/{target}/_count")
    assert status == 200, body
    return int(body["count"])


def ids(inspector: SearchBackend, target: str) -> set[str]:
    """Refresh ``target`` and list its document ids."""
    inspector.request("POST", f"/{target}/_refresh")
    status, body = inspector.request(
        "POST", f"/{target}/_search", {"size": 1000, "_source": False, "query": {"match_all": {}}}
    )
    assert status == 200, body
    return {hit["_id"] for hit in body["hits"]["hits"]}


class TcpProxy:
    """A TCP relay to a real server that can be shut (connections refused) and reopened.

    ``drop_next_response`` makes the next response from the server be swallowed and
    the client connection closed: the server did the work, the client saw a failure.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.drop_next_response = False
        self.dropped = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Listen on the proxy port and relay."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            open_sockets, self._sockets = self._sockets, set()
        for sock in open_sockets:
            self._close(sock)
        for thread in self._threads:
            thread.join(5)
        self._threads = []

    @staticmethod
    def _close(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                self._close(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst, responses in ((client, upstream, False), (upstream, client, True)):
                thread = threading.Thread(
                    target=self._pump, args=(src, dst, responses, client, upstream), daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _pump(
        self,
        src: socket.socket,
        dst: socket.socket,
        responses: bool,
        client: socket.socket,
        upstream: socket.socket,
    ) -> None:
        try:
            while data := src.recv(65536):
                if responses and self.drop_next_response:
                    self.drop_next_response = False
                    self.dropped += 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            self._close(sock)
