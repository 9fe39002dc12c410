"""Splunk HEC event objects, success detection and settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.sinks.base import OutputRecord
from streams.sinks.hec import HecConfig, HecSink, build_hec_sink, hec_success
from streams.sinks.http_delivery import HttpResult

_TOKEN = "tok-123"  # noqa: S105 (a test token)


def _risk() -> OutputRecord:
    doc = {
        "@timestamp": "2025-01-01T00:00:02Z",
        "event": {"kind": "metric", "id": "r1"},
        "user": {"id": "c1", "risk": {"calculated_score_norm": 45.0,
                                      "calculated_level": "moderate"}},
        "clonewatch": {"model_id": "m1", "risk_level": "moderate", "queries_observed": 9,
                       "trigger_event_id": "e", "signals": []},
    }  # fmt: skip
    return OutputRecord(kind="risk", id="r1", key="c1", doc=doc)


class TestEvents:
    """The event object for each record kind."""

    def test_risk_event(self) -> None:
        """A risk record gets the risk sourcetype, its epoch time and string indexed fields."""
        sink = HecSink(HecConfig(url="http://splunk:8088", token=_TOKEN, host="h"))
        event = sink.event(_risk())
        assert event["time"] == 1735689602.0
        assert event["sourcetype"] == "clonewatch:risk"
        assert "index" not in event  # the token's default index
        assert event["fields"] == {
            "clonewatch_kind": "risk",
            "client": "c1",
            "model": "m1",
            "risk_level": "moderate",
        }
        assert event["event"] == _risk().doc

    def test_kinds_filter(self) -> None:
        """Records of kinds not configured are not buffered."""
        sink = HecSink(HecConfig(url="http://s", token=_TOKEN, kinds=frozenset({"alert"})))
        sink.write([_risk()])
        sink.flush()  # nothing to send: no request is attempted
        assert sink.sent == 0


class TestSuccess:
    """Success is Splunk's answer, not the status alone."""

    @pytest.mark.parametrize(
        ("status", "body", "ok"),
        [
            (200, b'{"text":"Success","code":0}', True),
            (200, b'{"text":"Success","code":0,"ackId":7}', True),
            (200, b"<html>proxy</html>", False),
            (200, b'{"text":"Invalid data format","code":6}', False),
            (503, b'{"text":"Server is busy","code":9}', False),
        ],
    )
    def test_hec_success(self, status: int, body: bytes, ok: bool) -> None:
        """Only a 200 with code 0 counts as delivered."""
        assert hec_success(HttpResult(status=status, body=body)) is ok


class TestSettings:
    """Configuration."""

    def test_endpoint_from_root_or_full_url(self) -> None:
        """The URL may be the server root or the event endpoint itself."""
        root = HecConfig(url="https://s:8088/", token=_TOKEN)
        full = HecConfig(url="https://s:8088/services/collector/event", token=_TOKEN)
        assert root.endpoint == full.endpoint == "https://s:8088/services/collector/event"

    def test_token_file_and_hidden_repr(self, tmp_path: Path) -> None:
        """The token may come from a file and never appears in the config's repr."""
        token_file = tmp_path / "token"
        token_file.write_text("file-token\n")
        sink = build_hec_sink(
            env={"CLONEWATCH_HEC_URL": "http://s", "CLONEWATCH_HEC_TOKEN_FILE": str(token_file)}
        )
        assert sink.config.auth_headers() == {"Authorization": "Splunk file-token"}
        assert "file-token" not in repr(sink.config)

    def test_token_required(self) -> None:
        """Without a token the sink cannot be built."""
        with pytest.raises(ValueError, match="token is required"):
            HecConfig.from_env({"CLONEWATCH_HEC_URL": "http://s"})
