"""CEF escaping, formatting and parsing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.alert import Alert
from streams.sinks.cef import (
    CefError,
    CefEvent,
    alert_to_cef,
    escape_extension,
    escape_header,
    format_cef,
    parse_cef,
    parse_extension,
    risk_to_cef,
    unescape_extension,
    unescape_header,
)

_KEYS = st.from_regex(r"\A[A-Za-z][A-Za-z0-9]{0,11}\Z")
_ONE_LINE = st.text().filter(lambda s: "\n" not in s and "\r" not in s)


def _alert_doc(**ctx: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "model_id": "resnet|v2=prod",
        "risk_level": "high",
        "queries_observed": 4210,
        "trigger_event_id": "evt-9",
        "signals": [
            {"name": "coverage", "value": 0.8, "score": 30.0},
            {"name": "entropy", "value": 3.1, "score": 45.5},
        ],
    }
    context.update(ctx)
    return Alert.model_validate(
        {
            "@timestamp": "2025-03-01T12:00:00.250Z",
            "event": {"id": "al-1", "severity": 73, "risk_score": 76.4, "risk_score_norm": 76.4},
            "user": {"id": "client\\a=b"},
            "source": {"ip": "203.0.113.7"},
            "message": "Client client\\a=b probes resnet\nline two | pipes",
            "clonewatch": context,
        }
    ).to_dict()


class TestEscaping:
    """The escaping rules of the CEF specification."""

    def test_header_escapes_backslash_and_pipe(self) -> None:
        """A header field escapes a backslash before a pipe so both survive."""
        assert escape_header("a\\|b") == "a\\\\\\|b"

    def test_header_line_breaks_become_spaces(self) -> None:
        """Line breaks cannot appear in a header and are replaced by spaces."""
        assert escape_header("a\r\nb\nc") == "a b c"

    def test_extension_escapes_equals_backslash_and_newlines(self) -> None:
        """An extension value escapes equals, backslash, LF and CR but not pipes."""
        assert escape_extension("k=v\\x|y\nz\r") == "k\\=v\\\\x|y\\nz\\r"

    @given(st.text())
    def test_extension_round_trip(self, value: str) -> None:
        """Unescaping an escaped extension value gives the original string back."""
        assert unescape_extension(escape_extension(value)) == value

    @given(_ONE_LINE)
    def test_header_round_trip(self, value: str) -> None:
        """Unescaping an escaped one-line header value gives the original string back."""
        assert unescape_header(escape_header(value)) == value

    @given(st.text())
    def test_escaped_extension_has_no_raw_line_break_or_equals(self, value: str) -> None:
        """An escaped value never contains a raw line break or an unescaped equals sign."""
        escaped = escape_extension(value)
        assert "\n" not in escaped and "\r" not in escaped
        assert parse_extension(f"k={escaped}") == {"k": value}


class TestLineRoundTrip:
    """A formatted line parses back to the same event."""

    @given(
        name=_ONE_LINE,
        sig=_ONE_LINE,
        severity=st.integers(0, 10),
        ext=st.dictionaries(_KEYS, st.text(), max_size=6),
    )
    def test_arbitrary_event_round_trips(
        self, name: str, sig: str, severity: int, ext: dict[str, str]
    ) -> None:
        """Arbitrary header strings and extension values survive format then parse."""
        event = CefEvent(signature_id=sig, name=name, severity=severity, extension=ext)
        line = format_cef(event)
        assert "\n" not in line
        assert parse_cef(line) == event

    def test_syslog_prefix_is_ignored(self) -> None:
        """Parsing skips a syslog header in front of the CEF prefix."""
        event = CefEvent(signature_id="1", name="n", severity=3, extension={"msg": "a b"})
        line = "<164>1 2025-01-01T00:00:00Z host app - alert - " + format_cef(event)
        assert parse_cef(line) == event

    def test_severity_out_of_range_is_rejected(self) -> None:
        """A severity above 10 cannot be formatted."""
        with pytest.raises(CefError):
            format_cef(CefEvent(signature_id="1", name="n", severity=11))

    def test_bad_key_is_rejected(self) -> None:
        """An extension key with a space cannot be formatted."""
        with pytest.raises(CefError):
            format_cef(CefEvent(signature_id="1", name="n", severity=1, extension={"a b": "x"}))

    def test_unescaped_equals_without_key_is_rejected(self) -> None:
        """A parser input with a dangling equals sign is not CEF."""
        with pytest.raises(CefError):
            parse_extension("msg=a =b")


class TestAlertMapping:
    """The fields an alert puts into CEF."""

    def test_alert_fields(self) -> None:
        """Every documented key carries the alert's value."""
        event = parse_cef(format_cef(alert_to_cef(_alert_doc(campaign_id="camp-1"))))
        ext = event.extension
        assert event.severity == 8
        assert event.signature_id == "7c1e0f3a-5d2b-4d7e-9a51-c10e3a7c4a01"
        assert ext["rt"] == "1740830400250"
        assert ext["suser"] == "client\\a=b"
        assert ext["src"] == "203.0.113.7"
        assert ext["act"] == "alert"
        assert ext["cat"] == "intrusion_detection/api"
        assert ext["cnt"] == "4210"
        assert ext["msg"] == "Client client\\a=b probes resnet\nline two | pipes"
        assert ext["externalId"] == "al-1"
        assert (ext["cs1Label"], ext["cs1"]) == ("model", "resnet|v2=prod")
        assert (ext["cs2Label"], ext["cs2"]) == ("riskLevel", "high")
        assert (ext["cs3Label"], ext["cs3"]) == ("triggerEventId", "evt-9")
        assert (ext["cs4Label"], ext["cs4"]) == ("signals", "entropy:45.5,coverage:30.0")
        assert (ext["cs5Label"], ext["cs5"]) == ("campaignId", "camp-1")
        assert ext["cs6"] == "AML.T0024.002 Extract AI Model"
        assert (ext["cn1Label"], ext["cn1"]) == ("riskScore", "76")
        assert (ext["cn2Label"], ext["cn2"]) == ("ecsSeverity", "73")
        assert ext["cfp1"] == "76.40"

    @pytest.mark.parametrize(
        ("level", "severity"), [("low", 3), ("moderate", 5), ("high", 8), ("critical", 10)]
    )
    def test_severity_follows_level(self, level: str, severity: int) -> None:
        """The CEF severity grows with the alert level."""
        assert alert_to_cef(_alert_doc(risk_level=level)).severity == severity

    def test_missing_campaign_leaves_no_cs5(self) -> None:
        """Optional context without a value adds neither the field nor its label."""
        ext = alert_to_cef(_alert_doc()).extension
        assert "cs5" not in ext and "cs5Label" not in ext

    def test_risk_document(self) -> None:
        """A risk-score document maps to its own signature id with the score."""
        doc = {
            "@timestamp": "2025-03-01T12:00:00Z",
            "event": {"kind": "metric", "id": "r-1"},
            "user": {
                "id": "c1",
                "risk": {"calculated_score_norm": 92.0, "calculated_level": "critical"},
            },
            "clonewatch": {
                "model_id": "m",
                "risk_level": "critical",
                "queries_observed": 5,
                "trigger_event_id": "e",
                "signals": [],
            },
        }
        event = risk_to_cef(doc)
        assert (event.signature_id, event.severity) == ("clonewatch:risk", 10)
        assert event.extension["cn1"] == "92"


class TestProductVersion:
    """The CEF header names the installed version without streams/ importing clonewatch."""

    def test_header_version_is_the_package_version(self) -> None:
        """The version read from the package metadata equals clonewatch.__version__."""
        import clonewatch  # noqa: PLC0415 - the layer above, imported only to compare

        line = format_cef(CefEvent(signature_id="x", name="n", severity=1))
        assert line.split("|")[3] == clonewatch.__version__
