"""A search server going away in the middle of a run loses no alert.

The sink talks to the real server through a TCP relay (``TcpProxy``) that the test
shuts (connections cut, new ones refused) and reopens; the server behind it is the
real Elasticsearch 9 / OpenSearch 2.19 of scripts/services.sh. The sink's sleeps go
through a manual clock, so the outage ends at a chosen retry, never after a wall time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from sinks_fixtures import (
    TcpProxy,
    alert_record,
    count,
    ids,
    inspector,
    namespace,
    product,
    search_url,
)

from streams.sinks.base import SinkError
from streams.sinks.search import Product, SearchBackend, SearchSink, build_search_sink

pytestmark = pytest.mark.integration
__all__ = ["inspector", "namespace", "product", "search_url"]  # fixtures used by name


class ManualTime:
    """A clock that only moves when the sink sleeps; a hook runs at each sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep: Callable[[int], None] | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        if self.on_sleep is not None:
            self.on_sleep(self.sleeps)


@pytest.fixture
def proxy(search_url: str) -> Iterator[TcpProxy]:
    """A relay to the real server, open."""
    target = urlsplit(search_url)
    relay = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)
    relay.start()
    yield relay
    relay.stop()


def proxied_sink(
    product: Product, proxy: TcpProxy, namespace: str, time: ManualTime, **settings: object
) -> SearchSink:
    """A sink whose connection goes through the relay, with the manual clock."""
    sink = build_search_sink(
        product,
        f"http://127.0.0.1:{proxy.port}",
        namespace=namespace,
        env={},
        clock=time.clock,
        sleep=time.sleep,
        initial_backoff=1.0,
        max_backoff=4.0,
        request_timeout=20.0,
        **settings,
    )
    sink.setup()
    return sink


def alert_target(sink: SearchSink) -> str:
    """Where the test alerts land (data stream or dated index)."""
    return sink.names.alert if sink.data_streams else f"{sink.names.alert}-2025.03.09"


class TestOutage:
    """Flushes survive a server that disappears and comes back."""

    def test_server_down_mid_run_loses_nothing(
        self,
        product: Product,
        proxy: TcpProxy,
        namespace: str,
        inspector: SearchBackend,
    ) -> None:
        """Alerts written while the server is away arrive once it is back, exactly once."""
        time = ManualTime()
        sink = proxied_sink(product, proxy, namespace, time, max_records=10, flush_deadline=3600)
        sink.write([alert_record(n) for n in range(10)])  # full: flushed while up
        assert sink.buffered == 0

        proxy.stop()  # the server goes away
        time.on_sleep = lambda n: proxy.start() if n == 3 else None  # ...and is back later
        sink.write([alert_record(n) for n in range(10, 20)])  # full: flush blocks and retries
        assert time.sleeps >= 3
        assert sink.buffered == 0

        # The connection dies after the server did the work: the retry finds them (409).
        time.on_sleep = None
        proxy.drop_next_response = True
        sink.write([alert_record(n) for n in range(20, 30)])
        assert proxy.dropped == 1
        sink.close()

        assert sink.counts["duplicate"] == 10
        assert sink.drain_rejected() == []
        assert count(inspector, alert_target(sink)) == 30
        assert ids(inspector, alert_target(sink)) == {f"alert-{n}" for n in range(30)}

    def test_outage_past_the_deadline_raises_and_keeps_records(
        self,
        product: Product,
        proxy: TcpProxy,
        namespace: str,
        inspector: SearchBackend,
    ) -> None:
        """Past the deadline flush raises SinkError, keeping the records; a later flush delivers."""
        time = ManualTime()
        sink = proxied_sink(product, proxy, namespace, time, flush_deadline=30)
        proxy.stop()
        sink.write([alert_record(n) for n in range(5)])
        with pytest.raises(SinkError, match="undelivered"):
            sink.flush()
        assert sink.buffered == 5
        assert time.now <= 30

        proxy.start()  # the caller did not commit; it retries later
        sink.flush()
        sink.close()
        assert count(inspector, alert_target(sink)) == 5
