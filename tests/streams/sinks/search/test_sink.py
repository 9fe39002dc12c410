"""The search sink: buffering, retries, backpressure and dead letters, over a fake backend."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from streams.sinks.base import OutputRecord, Sink, SinkError
from streams.sinks.search import (
    BulkHttpError,
    Product,
    SearchSettings,
    SearchSink,
    SearchUnavailableError,
    build_search_sink,
    detect_features,
)
from streams.sinks.search import sink as search_sink

BulkScript = Callable[[list[dict[str, Any]]], Mapping[str, Any]]


class FakeBackend:
    """An in-memory stand-in for a cluster: canned GET answers, a scripted bulk endpoint."""

    def __init__(self, product: Product = "opensearch", data_streams: bool = True) -> None:
        self.product: Product = product
        self.routes: dict[tuple[str, str], tuple[int, Any]] = {
            ("GET", "/"): (200, {"version": {"number": "2.19.1", "distribution": product}}),
            ("GET", "/_data_stream"): (200, {"data_streams": []}) if data_streams else (400, {}),
            ("GET", "/_plugins/_ism/policies"): (400, {"error": "no handler found"}),
            ("GET", "/_ilm/status"): (400, {"error": "no handler found"}),
        }
        self.requests: list[tuple[str, str]] = []
        self.bulks: list[list[dict[str, Any]]] = []
        self.script: list[BulkScript | Exception] = []
        self.stored: dict[tuple[str, str], dict[str, Any]] = {}
        self.closed = False

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Answer from the routes; writes succeed."""
        self.requests.append((method, path))
        return self.routes.get((method, path), (200, {"acknowledged": True}))

    def bulk(self, lines: Sequence[Mapping[str, Any]], refresh: bool) -> Mapping[str, Any]:
        """Run the next scripted step, else store like a cluster would."""
        batch = [dict(line) for line in lines]
        self.bulks.append(batch)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            return step(batch)
        return store(self, batch)

    def close(self) -> None:
        """Remember that the sink released us."""
        self.closed = True


def pairs(batch: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(op_type, meta, source) for each operation of a bulk body."""
    out = []
    for action, source in zip(batch[::2], batch[1::2], strict=True):
        ((op, meta),) = action.items()
        out.append((op, meta, source))
    return out


def store(backend: FakeBackend, batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply a bulk body to the fake store with create/index/update semantics."""
    items = []
    for op, meta, source in pairs(batch):
        key = (meta["_index"], meta["_id"])
        if op == "create" and key in backend.stored:
            status = 409
        else:
            status = 201
            backend.stored[key] = source["doc"] if op == "update" else source
        items.append({op: {"_index": key[0], "_id": key[1], "status": status}})
    return {"errors": any(i[next(iter(i))]["status"] >= 300 for i in items), "items": items}


def statuses(*codes: int, error: str = "mapper_parsing_exception") -> BulkScript:
    """A bulk step answering the given status per item, in order."""

    def answer(batch: list[dict[str, Any]]) -> Mapping[str, Any]:
        items = []
        for (op, meta, _), code in zip(pairs(batch), codes, strict=True):
            result: dict[str, Any] = {"_index": meta["_index"], "_id": meta["_id"], "status": code}
            if code >= 300:
                result["error"] = {"type": error, "reason": f"status {code}"}
            items.append({op: result})
        return {"errors": True, "items": items}

    return answer


class Clock:
    """A manual clock; sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def alert(n: int, ts: str = "2025-03-09T10:00:00Z") -> OutputRecord:
    """An alert record with id a<n>."""
    doc = {"@timestamp": ts, "event": {"kind": "alert", "id": f"e{n}"}, "user": {"id": "c"}}
    return OutputRecord("alert", f"a{n}", "c", doc)


def make_sink(backend: FakeBackend, clock: Clock, **settings: Any) -> SearchSink:
    """A sink over the fake backend with the manual clock."""
    return SearchSink(
        backend.product,
        lambda: backend,
        SearchSettings(**settings),
        clock=clock,
        sleep=clock.sleep,
    )


@pytest.fixture
def backend() -> FakeBackend:
    """A fresh fake cluster with data streams."""
    return FakeBackend()


@pytest.fixture
def clock() -> Clock:
    """A manual clock."""
    return Clock()


class TestBuffering:
    """The buffer is bounded and flushed by size and by age."""

    def test_is_a_sink(self, backend: FakeBackend, clock: Clock) -> None:
        """SearchSink satisfies the Sink protocol and is named after its product."""
        sink = make_sink(backend, clock)
        assert isinstance(sink, Sink)
        assert sink.name == "opensearch"

    def test_write_below_the_limits_sends_nothing(self, backend: FakeBackend, clock: Clock) -> None:
        """Records stay buffered until a limit is reached or flush is called."""
        sink = make_sink(backend, clock, max_records=10)
        sink.setup()
        sink.write([alert(1), alert(2)])
        assert backend.bulks == []
        assert sink.buffered == 2
        sink.flush()
        assert len(backend.stored) == 2
        assert sink.buffered == 0

    def test_full_buffer_flushes_synchronously(self, backend: FakeBackend, clock: Clock) -> None:
        """Writing 7 records with max_records 3 sends two bulks of 3 and keeps 1 buffered."""
        sink = make_sink(backend, clock, max_records=3)
        sink.setup()
        sink.write([alert(n) for n in range(7)])
        assert [len(b) // 2 for b in backend.bulks] == [3, 3]
        assert sink.buffered == 1

    def test_byte_limit_flushes(self, backend: FakeBackend, clock: Clock) -> None:
        """A buffer over max_bytes is flushed even with few records."""
        sink = make_sink(backend, clock, max_records=100, max_bytes=150)
        sink.setup()
        sink.write([alert(1), alert(2)])
        assert len(backend.bulks) == 1
        assert sink.buffered == 0

    def test_age_is_checked_on_write(self, backend: FakeBackend, clock: Clock) -> None:
        """A write after max_age seconds flushes the old records with the new one."""
        sink = make_sink(backend, clock, max_age=5.0)
        sink.setup()
        sink.write([alert(1)])
        clock.now += 6
        sink.write([alert(2)])
        assert len(backend.bulks) == 1
        assert len(backend.bulks[0]) == 4

    def test_maybe_flush_only_when_old(self, backend: FakeBackend, clock: Clock) -> None:
        """maybe_flush does nothing before max_age and flushes after it."""
        sink = make_sink(backend, clock, max_age=5.0)
        sink.setup()
        sink.write([alert(1)])
        clock.now += 4
        assert sink.maybe_flush() is False
        clock.now += 2
        assert sink.maybe_flush() is True
        assert ("logs-clonewatch.alert-default", "a1") in backend.stored
        assert sink.maybe_flush() is False

    def test_flush_sets_up_lazily_and_close_flushes(
        self, backend: FakeBackend, clock: Clock
    ) -> None:
        """A sink used without setup() sets up on first flush; close() flushes and releases."""
        sink = make_sink(backend, clock)
        sink.write([alert(1)])
        sink.close()
        assert ("GET", "/_data_stream") in backend.requests
        assert ("logs-clonewatch.alert-default", "a1") in backend.stored
        assert backend.closed


class TestRetries:
    """Transient failures are retried with backoff until the deadline."""

    def test_429_and_503_items_are_retried_alone(self, backend: FakeBackend, clock: Clock) -> None:
        """Only the items answered 429/503 are sent again, after a backoff."""
        backend.script = [statuses(201, 429, 503)]
        sink = make_sink(backend, clock)
        sink.setup()
        sink.write([alert(1), alert(2), alert(3)])
        sink.flush()
        assert [len(b) // 2 for b in backend.bulks] == [3, 2]
        assert [m["_id"] for _, m, _ in pairs(backend.bulks[1])] == ["a2", "a3"]
        assert len(clock.sleeps) == 1
        assert sink.counts["written"] == 3

    def test_backoff_grows_exponentially(self, backend: FakeBackend, clock: Clock) -> None:
        """Each consecutive failure waits about twice as long, up to max_backoff."""
        backend.script = [SearchUnavailableError("refused")] * 6
        sink = make_sink(backend, clock, initial_backoff=1.0, max_backoff=8.0, flush_deadline=1000)
        sink.setup()
        sink.write([alert(1)])
        sink.flush()
        bounds = [(0.5, 1), (1, 2), (2, 4), (4, 8), (4, 8), (4, 8)]
        assert len(clock.sleeps) == 6
        assert all(lo <= s <= hi for s, (lo, hi) in zip(clock.sleeps, bounds, strict=True))
        assert ("logs-clonewatch.alert-default", "a1") in backend.stored

    def test_failed_write_keeps_every_undelivered_record(
        self, backend: FakeBackend, clock: Clock
    ) -> None:
        """A write whose flush fails keeps the full buffer and the records after it."""
        backend.script = [SearchUnavailableError("hung")] * 10
        sink = make_sink(backend, clock, max_records=2, flush_deadline=3)
        sink.setup()
        with pytest.raises(SinkError, match="undelivered"):
            sink.write([alert(1), alert(2), alert(3), alert(4)])
        assert [r.id for r in sink.take_undelivered()] == ["a1", "a2", "a3", "a4"]
        assert sink.buffered == 0
        sink.close()
        assert backend.stored == {}

    def test_whole_request_429_is_retried(self, backend: FakeBackend, clock: Clock) -> None:
        """A bulk request refused as a whole with 429 is sent again."""
        backend.script = [BulkHttpError(429, "es_rejected_execution_exception")]
        sink = make_sink(backend, clock)
        sink.setup()
        sink.write([alert(1)])
        sink.flush()
        assert len(backend.bulks) == 2
        assert ("logs-clonewatch.alert-default", "a1") in backend.stored

    def test_deadline_raises_and_keeps_the_records(
        self, backend: FakeBackend, clock: Clock
    ) -> None:
        """An outage longer than flush_deadline raises SinkError; a later flush delivers."""
        backend.script = [SearchUnavailableError("refused")] * 50
        sink = make_sink(backend, clock, flush_deadline=10, initial_backoff=1, max_backoff=2)
        sink.setup()
        sink.write([alert(1), alert(2)])
        with pytest.raises(SinkError, match="undelivered"):
            sink.flush()
        assert sink.buffered == 2
        assert clock.now - 1000 <= 10
        backend.script = []
        sink.flush()
        assert sink.buffered == 0
        assert len(backend.stored) == 2

    def test_partial_progress_keeps_only_the_undelivered(
        self, backend: FakeBackend, clock: Clock
    ) -> None:
        """Records written before the deadline leave the buffer; the others stay."""
        backend.script = [statuses(201, 503), *[statuses(503)] * 50]
        sink = make_sink(backend, clock, flush_deadline=5, initial_backoff=1, max_backoff=1)
        sink.setup()
        sink.write([alert(1), alert(2)])
        with pytest.raises(SinkError):
            sink.flush()
        assert sink.buffered == 1

    def test_auth_failure_is_not_retried(self, backend: FakeBackend, clock: Clock) -> None:
        """A 401 on the bulk request raises SinkError at once without sleeping."""
        backend.script = [BulkHttpError(401, "security_exception: missing authentication")]
        sink = make_sink(backend, clock)
        sink.setup()
        sink.write([alert(1)])
        with pytest.raises(SinkError, match="401"):
            sink.flush()
        assert clock.sleeps == []
        assert sink.buffered == 1


class TestItemResults:
    """Duplicates count as written; rejected items become dead letters."""

    def test_replay_counts_409_as_written(self, backend: FakeBackend, clock: Clock) -> None:
        """Writing the same records twice stores them once and counts duplicates."""
        sink = make_sink(backend, clock)
        sink.setup()
        for _ in range(2):
            sink.write([alert(1), alert(2)])
            sink.flush()
        assert len(backend.stored) == 2
        assert sink.counts["duplicate"] == 2
        assert sink.drain_rejected() == []

    def test_400_becomes_a_dead_letter_with_the_reason(
        self, backend: FakeBackend, clock: Clock
    ) -> None:
        """A 400 item is not retried and is drained as a DeadLetter holding the document."""
        backend.script = [statuses(201, 400)]
        sink = make_sink(backend, clock)
        sink.setup()
        sink.write([alert(1), alert(2)])
        sink.flush()
        assert len(backend.bulks) == 1
        (dead,) = sink.drain_rejected()
        assert "a2" in dead.reason
        assert "mapper_parsing_exception" in dead.reason
        assert dead.source == "sink:opensearch"
        assert b'"id":"e2"' in dead.original_bytes()
        assert sink.drain_rejected() == []

    def test_undrained_dead_letters_are_bounded(
        self, backend: FakeBackend, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past MAX_REJECTED undrained dead letters the oldest are dropped and counted."""
        monkeypatch.setattr(search_sink, "MAX_REJECTED", 2)
        backend.script = [statuses(400, 400, 400)]
        sink = make_sink(backend, clock)
        sink.setup()
        sink.write([alert(1), alert(2), alert(3)])
        sink.flush()
        assert sink.rejected_dropped == 1
        assert [("a2" in d.reason, "a3" in d.reason) for d in sink.drain_rejected()] == [
            (True, False),
            (False, True),
        ]

    def test_unroutable_record_is_rejected_locally(
        self, backend: FakeBackend, clock: Clock
    ) -> None:
        """A record without @timestamp never reaches the bulk and becomes a dead letter."""
        bad = OutputRecord("alert", "bad", "c", {"event": {"kind": "alert"}})
        sink = make_sink(backend, clock)
        sink.setup()
        sink.write([bad, alert(1)])
        sink.flush()
        assert len(backend.bulks[0]) == 2
        (dead,) = sink.drain_rejected()
        assert "@timestamp" in dead.reason

    def test_risk_updates_latest_and_history(self, backend: FakeBackend, clock: Clock) -> None:
        """A risk record lands in the history and as the latest document of its pair."""
        doc = {
            "@timestamp": "2025-03-09T10:00:00Z",
            "event": {"kind": "metric", "id": "r"},
            "user": {"id": "c", "risk": {"calculated_score_norm": 50.0}},
            "clonewatch": {"model_id": "m"},
        }
        sink = make_sink(backend, clock)
        sink.setup()
        sink.write([OutputRecord("risk", "r1", "c", doc)])
        sink.flush()
        indices = sorted(index for index, _ in backend.stored)
        assert indices == ["clonewatch-risk-latest", "logs-clonewatch.risk-default"]


class TestSetup:
    """Setup detects features and installs templates where managed."""

    def test_without_data_streams_uses_dated_indices(self, clock: Clock) -> None:
        """A cluster without data streams gets dated indices and no data stream creation."""
        backend = FakeBackend("elasticsearch", data_streams=False)
        sink = make_sink(backend, clock)
        sink.setup()
        assert sink.data_streams is False
        assert not any(p.startswith("/_data_stream/") for m, p in backend.requests if m == "PUT")
        sink.write([alert(1)])
        sink.flush()
        assert ("logs-clonewatch.alert-default-2025.03.09", "a1") in backend.stored

    def test_unmanaged_templates_are_not_touched(self, backend: FakeBackend, clock: Clock) -> None:
        """With manage_templates False setup only reads."""
        sink = make_sink(backend, clock, manage_templates=False)
        sink.setup()
        assert {m for m, _ in backend.requests} == {"GET"}

    def test_forced_mode_overrides_detection(self, backend: FakeBackend, clock: Clock) -> None:
        """index_mode dated wins over a cluster that has data streams."""
        sink = make_sink(backend, clock, index_mode="dated")
        sink.setup()
        assert sink.data_streams is False

    def test_elasticsearch_without_root_endpoint(self) -> None:
        """Without GET / (integ-test distribution) the version comes from _nodes."""
        backend = FakeBackend("elasticsearch")
        backend.routes[("GET", "/")] = (405, {"error": "Incorrect HTTP method"})
        backend.routes[("GET", "/_nodes/_local")] = (200, {"nodes": {"n": {"version": "9.5.3"}}})
        backend.routes[("GET", "/_ilm/status")] = (200, {"operation_mode": "RUNNING"})
        features = detect_features(backend)
        assert (features.version, features.data_streams, features.lifecycle) == (
            "9.5.3",
            True,
            "ilm",
        )

    def test_wrong_product_is_refused(self) -> None:
        """An OpenSearch answer to the Elasticsearch sink is an error naming the product."""
        backend = FakeBackend("elasticsearch")
        backend.routes[("GET", "/")] = (
            200,
            {"version": {"number": "2.19.1", "distribution": "opensearch"}},
        )
        with pytest.raises(SinkError, match="OpenSearch"):
            detect_features(backend)

    def test_unreachable_setup_raises_sink_error(self, backend: FakeBackend, clock: Clock) -> None:
        """A connection failure during setup is a SinkError."""

        def refuse(*_: Any, **__: Any) -> tuple[int, Any]:
            raise SearchUnavailableError("refused")

        backend.request = refuse  # type: ignore[method-assign]
        with pytest.raises(SinkError, match="unreachable"):
            make_sink(backend, clock).setup()


class TestSettings:
    """Settings come from arguments, then the CLONEWATCH_ES_* environment."""

    def test_env_and_files(self, tmp_path: Path) -> None:
        """API key and password are read from env values or *_FILE files."""
        secret = tmp_path / "pw"
        secret.write_text("s3cret\n", encoding="utf-8")
        env = {
            "CLONEWATCH_ES_USERNAME": "writer",
            "CLONEWATCH_ES_PASSWORD_FILE": str(secret),
            "CLONEWATCH_ES_CA_FILE": "/etc/ca.pem",
        }
        settings = SearchSettings.from_env(env)
        assert (settings.username, settings.password, settings.ca_file) == (
            "writer",
            "s3cret",
            "/etc/ca.pem",
        )

    def test_arguments_win_over_env(self) -> None:
        """An explicit api_key beats the environment's."""
        settings = SearchSettings.from_env({"CLONEWATCH_ES_API_KEY": "env"}, api_key="arg")
        assert settings.api_key == "arg"

    def test_secrets_stay_out_of_repr(self) -> None:
        """repr() shows neither the API key nor the password."""
        text = repr(SearchSettings(api_key="KEY123", username="u", password="PW456"))  # noqa: S106 - a dummy
        assert "KEY123" not in text
        assert "PW456" not in text
        assert "username='u'" in text

    def test_unknown_setting_is_an_error(self) -> None:
        """A misspelt setting raises TypeError instead of being ignored."""
        with pytest.raises(TypeError, match="max_recrods"):
            SearchSettings.from_env({}, max_recrods=5)

    def test_timeouts_and_bulk_size_from_env(self) -> None:
        """CLONEWATCH_ES_REQUEST_TIMEOUT, _FLUSH_DEADLINE and _MAX_RECORDS set those settings."""
        env = {
            "CLONEWATCH_ES_REQUEST_TIMEOUT": "1.5",
            "CLONEWATCH_ES_FLUSH_DEADLINE": "10",
            "CLONEWATCH_ES_MAX_RECORDS": "50",
        }
        settings = SearchSettings.from_env(env)
        assert (settings.request_timeout, settings.flush_deadline, settings.max_records) == (
            1.5,
            10.0,
            50,
        )
        assert SearchSettings.from_env(env, max_records=7).max_records == 7

    @pytest.mark.parametrize(
        ("var", "value"),
        [
            ("CLONEWATCH_ES_FLUSH_DEADLINE", "inf"),
            ("CLONEWATCH_ES_REQUEST_TIMEOUT", "-1"),
            ("CLONEWATCH_ES_MAX_RECORDS", "0"),
            ("CLONEWATCH_ES_MAX_RECORDS", "1e3"),
        ],
    )
    def test_bad_timeouts_are_errors(self, var: str, value: str) -> None:
        """A duration that is not a positive finite number, or a bulk size of 0, is refused."""
        with pytest.raises(ValueError, match=var):
            SearchSettings.from_env({var: value})

    def test_factory_builds_each_product(self) -> None:
        """build_search_sink returns a sink named after the product, without connecting."""
        for kind in ("elasticsearch", "opensearch"):
            sink = build_search_sink(kind, "http://127.0.0.1:1", env={}, namespace="t1")
            assert sink.name == kind
            assert sink.names.alert == "logs-clonewatch.alert-t1"
        with pytest.raises(ValueError, match="unknown search product"):
            build_search_sink("solr", "http://x", env={})  # type: ignore[arg-type]


# Runs in a fresh interpreter where the two client libraries cannot be imported.
_WITHOUT_CLIENTS = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("elasticsearch", "elastic_transport", "opensearchpy"):
            raise ImportError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, Block())
import streams.sinks.search as search
from clonewatch.commands import replay, setup, worker
print("imported")
for kind in ("elasticsearch", "opensearch"):
    try:
        search.build_search_sink(kind, "http://127.0.0.1:1", env={})
    except search.MissingClientError as exc:
        print(exc)
"""


class TestOptionalClients:
    """The package imports without either client; a missing one names its pip extra."""

    def test_import_without_clients_and_the_extra_to_install(self) -> None:
        """Without the clients the package and commands import; building a sink names the extra."""
        root = Path(__file__).resolve().parents[4]
        out = subprocess.run(
            [sys.executable, "-c", _WITHOUT_CLIENTS],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        ).stdout.splitlines()
        assert out == [
            "imported",
            "the elasticsearch sink needs the elasticsearch client: "
            "pip install 'clonewatch[elasticsearch]'",
            "the opensearch sink needs the opensearch-py client: "
            "pip install 'clonewatch[opensearch]'",
        ]

    def test_the_base_knows_no_product(self) -> None:
        """streams/sinks/base.py and the package __init__ name neither product nor client."""
        sinks = Path(__file__).resolve().parents[4] / "streams" / "sinks"
        for path in (sinks / "base.py", sinks / "__init__.py"):
            text = path.read_text(encoding="utf-8").lower()
            assert "elasticsearch" not in text
            assert "opensearch" not in text
