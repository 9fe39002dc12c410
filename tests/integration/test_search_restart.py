"""Stopping the search server process in the middle of a run and starting it again loses no alert.

Unlike test_search_sinks_outage.py (a TCP relay in front of the shared servers), this test starts
its OWN OpenSearch / Elasticsearch with scripts/services.sh (a private services dir and free
ports, 512 MB heap), really stops the JVM with ``services.sh stop`` (SIGTERM, data kept) and
starts it again with ``services.sh up`` on the same data directory. One test per product: each
starts a JVM twice. The sink's backoff sleeps go through a manual clock, so the flush made while
the server is down gives up at once, after its retries, instead of after a wall time.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from functools import cache
from typing import Any, cast

import pytest
from private_services import OwnService, own_service, port_free
from service_probes import http_json
from sinks_fixtures import make_backend

from detectors.engine import Engine
from schemas import Alert, QueryEvent
from streams.replay import to_record
from streams.sinks.base import OutputRecord, SinkError
from streams.sinks.search import Product, SearchBackend, build_search_sink
from tests.synthetic import synthetic_events

pytestmark = pytest.mark.integration

# Per product: the variables of scripts/services.sh for the HTTP port and the first transport port.
PORT_VARS = {
    "opensearch": ("CLONEWATCH_OS_PORT", "CLONEWATCH_OS_TRANSPORT_PORT", "CLONEWATCH_OS_HEAP"),
    "elasticsearch": ("CLONEWATCH_ES_PORT", "CLONEWATCH_ES_TRANSPORT_PORT", "CLONEWATCH_ES_HEAP"),
}
NAMESPACE = "restart"


class ManualTime:
    """A clock that only moves when the sink sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1


def free_ports() -> tuple[int, int]:
    """A free HTTP port and the first of 10 free transport ports (below the ephemeral range)."""
    rng = random.Random()
    for _ in range(200):
        http, transport = rng.randrange(20_000, 32_000, 20), rng.randrange(20_000, 32_000, 20)
        wanted = [http, *range(transport, transport + 10)]
        if http not in range(transport, transport + 10) and all(port_free(p) for p in wanted):
            return http, transport
    raise RuntimeError("no free ports for a private search server")


class OwnServer(OwnService):
    """A search server of our own, run by scripts/services.sh in a private services dir."""

    @property
    def product(self) -> Product:
        return cast(Product, self.service)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any]:
        """Cluster health once every primary shard is assigned and none is initialising."""
        status, body = http_json(
            "GET",
            f"{self.url}/_cluster/health?wait_for_status=yellow"
            "&wait_for_no_initializing_shards=true&timeout=120s",
            timeout=130.0,
        )
        assert status == 200, body
        assert isinstance(body, dict)
        return body


@pytest.fixture(params=["opensearch", "elasticsearch"])
def own_server(request: pytest.FixtureRequest) -> Iterator[OwnServer]:
    """A private server of the product, started; stopped and deleted after the test."""
    product: Product = request.param
    # Reuse the unpacked servers, except Elasticsearch under root: its own user may not reach
    # the checkout (a clone in a 0700 directory), so it unpacks a copy from the Maven cache.
    as_es_user = product == "elasticsearch" and os.geteuid() == 0
    port, transport = free_ports()
    port_var, transport_var, heap_var = PORT_VARS[product]
    variables = {port_var: str(port), transport_var: str(transport), heap_var: "512m"}
    with own_service(
        OwnServer, product, port, variables, prefix="cw-restart-", reuse_dist=not as_es_user
    ) as server:
        yield server


@cache
def engine_alerts() -> tuple[OutputRecord, ...]:
    """Real alerts: the engine on four synthetic days, each with its own attacker and clients."""
    records: list[OutputRecord] = []
    for seed in range(1, 5):
        events = []
        for raw in synthetic_events(seed=seed):
            raw["event_id"] = f"s{seed}-{raw['event_id']}"
            raw["client_id"] = f"s{seed}-{raw['client_id']}"
            events.append(QueryEvent.model_validate(raw))
        outputs = Engine().process_batch(events)
        records.extend(to_record(o) for o in outputs if isinstance(o, Alert))
    return tuple(records)


def alert_ids(inspector: SearchBackend, target: str) -> Counter[str]:
    """How many times each document id occurs under ``target`` (after a refresh)."""
    status, body = inspector.request("POST", f"/{target}/_refresh")
    assert status == 200, body
    status, body = inspector.request(
        "POST", f"/{target}/_search", {"size": 1000, "_source": False, "query": {"match_all": {}}}
    )
    assert status == 200, body
    return Counter(hit["_id"] for hit in body["hits"]["hits"])


class TestServerRestart:
    """A search server process stopped mid-run and started again on its data loses no alert."""

    def test_stop_and_restart_loses_no_alert(self, own_server: OwnServer) -> None:
        """Alerts flushed before the stop survive it; those written during it arrive once after."""
        alerts = engine_alerts()
        assert len({r.id for r in alerts}) == len(alerts) >= 8
        first, second = alerts[: len(alerts) // 2], alerts[len(alerts) // 2 :]
        time = ManualTime()
        sink = build_search_sink(
            own_server.product,
            own_server.url,
            namespace=NAMESPACE,
            env={},
            clock=time.clock,
            sleep=time.sleep,
            initial_backoff=1.0,
            max_backoff=4.0,
            flush_deadline=30.0,
            request_timeout=20.0,
        )
        inspector = make_backend(own_server.product, own_server.url)
        try:
            sink.setup()
            sink.write(first)
            sink.flush()
            assert sink.buffered == 0
            assert sink.counts["written"] == len(first)

            running = own_server.pid()
            own_server.run("stop")  # SIGTERM to the JVM; the data directory stays
            assert running is not None and own_server.pid() is None
            sink.write(second)
            with pytest.raises(SinkError, match="undelivered"):
                sink.flush()
            assert sink.buffered == len(second)  # nothing dropped, nothing acknowledged
            assert time.sleeps >= 3 and time.now <= 30.0

            own_server.run("up")  # the same data directory
            restarted = own_server.pid()
            assert restarted is not None and restarted != running
            own_server.health()
            sink.flush()  # the caller did not commit; it flushes again
            assert sink.buffered == 0
            sink.close()

            target = f"{sink.names.alert}*"  # the data stream or the dated indices
            seen = alert_ids(inspector, target)
            assert seen == Counter({r.id: 1 for r in alerts})  # none lost, none twice
            status, body = inspector.request(
                "POST", f"/{target}/_count", {"query": {"ids": {"values": [r.id for r in alerts]}}}
            )
            assert status == 200 and body["count"] == len(alerts), body
            assert sink.drain_rejected() == []
            assert sink.counts["written"] == len(alerts)
        finally:
            inspector.close()
