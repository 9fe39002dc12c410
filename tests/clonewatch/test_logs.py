"""clonewatch.logs: library records redacted at creation, repeated library errors rate-limited."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from clonewatch import logs
from streams.redact import register_secret


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Configure logging as the CLI does, with the root handler writing to a buffer."""
    logs.configure("DEBUG", "json")
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class TestRedaction:
    """No secret reaches a log line."""

    def test_library_debug_record_redacted(self, captured: io.StringIO) -> None:
        """A kafka logger's DEBUG dump of its config loses the password."""
        logging.getLogger("kafka.admin.client").debug(
            "Starting KafkaAdminClient with configuration: %s",
            {"sasl_plain_username": "u", "sasl_plain_password": "plain-pw-77"},
        )
        text = captured.getvalue()
        assert "Starting KafkaAdminClient" in text
        assert "plain-pw-77" not in text

    def test_exception_text_redacted(self, captured: io.StringIO) -> None:
        """A traceback naming a secret URL is masked too."""
        register_secret("exc-secret-123")
        err = RuntimeError("cannot reach https://u:exc-secret-123@es:9200")
        logging.getLogger("elastic_transport").error("failed", exc_info=(RuntimeError, err, None))
        assert "exc-secret-123" not in captured.getvalue()

    def test_structlog_event_redacted(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Clonewatch's own JSON events have their strings redacted."""
        logs.configure("INFO", "json")
        register_secret("struct-secret-456")
        structlog.get_logger("t").warning("sink_failed", error="401 for struct-secret-456")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert json.loads(line)["error"] == "401 for **********"


class TestRepeatFilter:
    """Repeated library warnings and errors give one line per interval with a count."""

    def test_repeats_dropped_then_counted(self) -> None:
        """Within the interval repeats are dropped; the next one after it carries the count."""
        now = [0.0]
        f = logs.RepeatFilter(interval=10, clock=lambda: now[0])

        def rec(port: int) -> logging.LogRecord:
            return logging.LogRecord(
                "aiokafka", logging.ERROR, "", 0, "Unable connect to %s:%d", ("h", port), None
            )

        assert f.filter(rec(1))
        assert not any(f.filter(rec(p)) for p in range(100))
        now[0] = 10.5
        last = rec(7)
        assert f.filter(last)
        assert "100 similar messages suppressed" in last.getMessage()

    def test_info_never_dropped(self) -> None:
        """Records below WARNING pass whatever their number."""
        f = logs.RepeatFilter(interval=10, clock=lambda: 0.0)
        rec = logging.LogRecord("kafka", logging.INFO, "", 0, "same", None, None)
        assert all(f.filter(rec) for _ in range(5))

    def test_installed_on_library_loggers(self) -> None:
        """configure() puts the filter on every library logger, including children."""
        logging.getLogger("aiokafka.consumer.fetcher")
        logs.configure("INFO", "json")
        for name in ("aiokafka", "aiokafka.consumer.fetcher", "kafka"):
            assert any(isinstance(f, logs.RepeatFilter) for f in logging.getLogger(name).filters)


class TestModeFormatting:
    """Records redacted at creation still format under mode's (Faust's) formatter."""

    def test_mode_formatter_formats_a_redacted_record(self) -> None:
        """mode wraps non-tuple args into a tuple: redacted records must carry an empty one."""
        import logging  # noqa: PLC0415 - local to the test

        from mode.utils.logging import ExtensionFormatter  # noqa: PLC0415 - faust's formatter

        from clonewatch.logs import _install_record_factory  # noqa: PLC0415

        _install_record_factory()
        record = logging.getLogger("mode.test").makeRecord(
            "mode.test", logging.WARNING, __file__, 1, "took %s ms (100%% done)", (5,), None
        )
        formatter = ExtensionFormatter(fmt="%(message)s")
        assert formatter.format(record) == "took 5 ms (100% done)"
