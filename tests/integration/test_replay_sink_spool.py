"""A hung Elasticsearch never holds ``clonewatch replay``'s local outputs hostage.

The hung server is a loopback TCP server that accepts connections and never answers a
byte: it stands in for an Elasticsearch that hangs (a stuck node, a full disk that blocks
writes, a proxy that black-holes). A second stand-in relays to the real Elasticsearch 9 of
scripts/services.sh until the sink's N-th bulk request, and from then on swallows
everything: a server that hangs in the middle of the run. Request timeout and flush
deadline are cut to seconds through ``CLONEWATCH_ES_REQUEST_TIMEOUT`` and
``CLONEWATCH_ES_FLUSH_DEADLINE`` (defaults 30 s and 120 s). Afterwards ``clonewatch
redeliver`` sends the spool into the real server, where every document arrives once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sinks_fixtures import inspector, namespace
from stream_support import CLI, write_log

from streams.delivery import SPOOL_NAME
from streams.sinks.search import IndexNames, Product, SearchBackend

pytestmark = pytest.mark.integration
__all__ = ["inspector", "namespace"]  # fixtures used by name


@pytest.fixture
def product() -> Product:
    """The search product of these tests: Elasticsearch."""
    return "elasticsearch"


@pytest.fixture
def search_url(elasticsearch_url: str) -> str:
    """The real Elasticsearch (for the inspector and redeliver)."""
    return elasticsearch_url


class HangingServer:
    """A loopback TCP server that accepts and never answers: a hung Elasticsearch.

    With ``relay_to`` it relays to that real server until ``hang_at`` requests whose
    first bytes name ``_bulk`` have started, and from that one on swallows every byte
    in both directions (connections stay open, nothing comes back).
    """

    def __init__(self, relay_to: tuple[str, int] | None = None, hang_at: int = 1) -> None:
        self.relay_to = relay_to
        self.hang_at = hang_at
        self.bulks = 0
        self.hung = relay_to is None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The URL to give the sink."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HangingServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
            if self.relay_to is None:
                continue  # accepted, never read, never answered
            upstream = socket.create_connection(self.relay_to)
            with self._lock:
                self._sockets.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        try:
            while data := src.recv(65536):
                if requests and b"_bulk" in data[:200]:
                    with self._lock:
                        self.bulks += 1
                        if self.bulks >= self.hang_at:
                            self.hung = True
                if self.hung:
                    continue  # swallowed: the server has hung
                dst.sendall(data)
        except OSError:
            return


# Request timeout 1 s, flush deadline 2 s, 50 records a bulk (the log makes about 130).
SHORT = {
    "CLONEWATCH_ES_REQUEST_TIMEOUT": "1",
    "CLONEWATCH_ES_FLUSH_DEADLINE": "2",
    "CLONEWATCH_ES_MAX_RECORDS": "50",
}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``clonewatch`` command with the short deadlines."""
    env = {**os.environ, **SHORT, "CLONEWATCH_LOG_FORMAT": "json"}
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small streaming log (two extraction-like clients among calm ones) and a bad line."""
    path = tmp_path_factory.mktemp("spool") / "log.jsonl"
    write_log(path)
    with path.open("ab") as out:
        out.write(b"not json\n")
    return path


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _replay(log: Path, out: Path, *extra: str) -> tuple[int, dict[str, object]]:
    """``clonewatch replay --json`` with all three local outputs in ``out``: (code, summary)."""
    out.mkdir(exist_ok=True)
    args = ["replay", str(log), "--json", "--alerts", str(out / "alerts.jsonl")]
    args += ["--scores", str(out / "scores.jsonl"), "--dead-letter", str(out / "dl.jsonl")]
    done = _cli(*args, *extra)
    assert "{" in done.stdout, done.stderr[-3000:]
    summary: dict[str, object] = json.loads(done.stdout[done.stdout.index("{") :])
    return done.returncode, summary


def _redeliver(spool: Path, url: str) -> subprocess.CompletedProcess[str]:
    """``clonewatch redeliver SPOOL --url URL``."""
    return _cli("redeliver", str(spool), "--url", url)


def _dead_letters(path: Path) -> list[dict[str, object]]:
    """The dead letters of a file without their ``received_at`` (the time of the run)."""
    return [{k: v for k, v in d.items() if k != "received_at"} for d in _jsonl(path)]


def _ids(inspector: SearchBackend, pattern: str) -> list[str]:
    """Every document id under an index pattern (refreshed first), duplicates kept."""
    inspector.request("POST", f"/{pattern}/_refresh")
    status, body = inspector.request(
        "POST",
        f"/{pattern}/_search",
        {"size": 10_000, "_source": False, "query": {"match_all": {}}},
    )
    assert status == 200, body
    return [hit["_id"] for hit in body["hits"]["hits"]]


class TestHungElasticsearch:
    """Local outputs complete, undelivered documents spooled, redeliver sends each once."""

    @pytest.fixture
    def local(self, log: Path, tmp_path: Path) -> Path:
        """The local outputs of a replay without any sink (what a hung sink must not change)."""
        code, summary = _replay(log, tmp_path / "local")
        assert code == 0, summary
        return tmp_path / "local"

    def _check_complete(self, local: Path, out: Path) -> None:
        for name in ("alerts.jsonl", "scores.jsonl"):
            assert (out / name).read_bytes() == (local / name).read_bytes(), name
        assert _dead_letters(out / "dl.jsonl") == _dead_letters(local / "dl.jsonl")

    def _check_delivered_once(self, inspector: SearchBackend, namespace: str, local: Path) -> None:
        names = IndexNames(namespace)
        alerts = [str(a["event"]["id"]) for a in _jsonl(local / "alerts.jsonl")]  # type: ignore[index]
        scores = [str(s["event"]["id"]) for s in _jsonl(local / "scores.jsonl")]  # type: ignore[index]
        assert alerts and scores
        got_alerts = _ids(inspector, f"{names.alert}*")
        assert sorted(got_alerts) == sorted(alerts)  # each once, none missing
        got_scores = _ids(inspector, f"{names.risk_history}*")
        assert sorted(got_scores) == sorted(scores)
        assert len(_ids(inspector, names.dead_letter)) == len(_jsonl(local / "dl.jsonl"))

    def test_hung_from_the_start_spools_everything(
        self,
        log: Path,
        tmp_path: Path,
        local: Path,
        namespace: str,
        inspector: SearchBackend,
        elasticsearch_url: str,
    ) -> None:
        """A server that never answers: exit 3, outputs complete, redeliver (twice) sends once."""
        out = tmp_path / "hung"
        with HangingServer() as hung:
            code, summary = _replay(log, out, "--elasticsearch", hung.url, "--namespace", namespace)
        assert code == 3, summary
        self._check_complete(local, out)
        spool = out / SPOOL_NAME  # the default: next to the alerts
        entries = _jsonl(spool)
        n_local = sum(len(_jsonl(local / f)) for f in ("alerts.jsonl", "scores.jsonl", "dl.jsonl"))
        assert summary["undelivered"] == {"elasticsearch": len(entries)}
        assert len(entries) == n_local
        assert summary["sink_spool"] == str(spool)

        again = tmp_path / "again.jsonl"
        shutil.copy(spool, again)
        done = _redeliver(spool, elasticsearch_url)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"redelivered {len(entries)}, still failing 0" in done.stdout
        assert spool.read_text() == ""
        # The same documents once more (a spool redelivered twice): 409s, no second copy.
        assert _redeliver(again, elasticsearch_url).returncode == 0
        self._check_delivered_once(inspector, namespace, local)

    def test_hung_mid_run_spools_the_rest(
        self,
        log: Path,
        tmp_path: Path,
        local: Path,
        namespace: str,
        inspector: SearchBackend,
        elasticsearch_url: str,
    ) -> None:
        """A server hung at the second bulk: the first arrived, the rest is spooled then sent."""
        host, port = elasticsearch_url.removeprefix("http://").split(":")
        out = tmp_path / "mid"
        spool_dir = tmp_path / "spool"
        with HangingServer(relay_to=(host, int(port)), hang_at=2) as hung:
            code, summary = _replay(
                log,
                out,
                "--elasticsearch",
                hung.url,
                "--namespace",
                namespace,
                "--sink-spool",
                str(spool_dir),
            )
            assert hung.bulks >= 2
        assert code == 3, summary
        self._check_complete(local, out)
        spool = spool_dir / SPOOL_NAME
        entries = _jsonl(spool)
        n_local = sum(len(_jsonl(local / f)) for f in ("alerts.jsonl", "scores.jsonl", "dl.jsonl"))
        assert 0 < len(entries) < n_local  # the first bulk was delivered
        assert summary["undelivered"] == {"elasticsearch": len(entries)}
        assert all(e["url"] == hung.url and e["namespace"] == namespace for e in entries)

        done = _redeliver(spool, elasticsearch_url)
        assert done.returncode == 0, done.stderr[-3000:]
        self._check_delivered_once(inspector, namespace, local)


@pytest.fixture(autouse=True)
def _no_stray_spool(tmp_path: Path) -> Iterator[None]:
    """Every spool of these tests lives under tmp_path (none in the working directory)."""
    yield
    assert not (Path.cwd() / SPOOL_NAME).exists()
