"""``clonewatch worker --sink KIND``: each kind reaches its real factory with its own flags."""

from __future__ import annotations

import argparse

import pytest

from clonewatch.cli import CommandError
from clonewatch.commands import worker

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    worker.register(parser.add_subparsers())
    return parser.parse_args(["worker", *argv])


class TestSinkWiring:
    """The worker builds the SIEM, HEC and webhook sinks from flags over the environment."""

    def test_siem_url_in_the_spec_reaches_the_syslog_sink(self) -> None:
        """--sink siem=tcp://H:P builds the syslog sink aimed at that receiver."""
        args = _args("--sink", "siem=tcp://127.0.0.1:5514", "--siem-kinds", "alert,risk")
        sink = worker._build_sink(args.sink[0], args)
        assert type(sink).__name__ == "SyslogSink"
        assert sink.name == "siem"
        config = sink.config  # type: ignore[attr-defined]
        assert (config.transport, config.host, config.port) == ("tcp", "127.0.0.1", 5514)

    def test_hec_flags_and_token_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--sink hec with --hec-url and CLONEWATCH_HEC_TOKEN builds the HEC sink."""
        monkeypatch.setenv("CLONEWATCH_HEC_TOKEN", "00000000-0000-0000-0000-000000000001")
        args = _args("--sink", "hec", "--hec-url", "http://127.0.0.1:8088", "--hec-batch-size", "7")
        sink = worker._build_sink(args.sink[0], args)
        assert sink.name == "hec"
        assert sink.config.url == "http://127.0.0.1:8088"  # type: ignore[attr-defined]
        assert sink.config.batch_size == 7  # type: ignore[attr-defined]

    def test_flag_wins_over_the_url_in_the_spec(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An explicit --webhook-url is kept even when the spec also names a URL."""
        monkeypatch.setenv("CLONEWATCH_WEBHOOK_SECRET", SECRET)
        args = _args("--sink", "webhook=http://a.invalid/x", "--webhook-url", "http://b.invalid/y")
        sink = worker._build_sink(args.sink[0], args)
        assert sink.config.url == "http://b.invalid/y"  # type: ignore[attr-defined]

    def test_missing_settings_are_a_usage_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A HEC sink without a token stops the command with exit code 2 and the reason."""
        monkeypatch.delenv("CLONEWATCH_HEC_TOKEN", raising=False)
        monkeypatch.delenv("CLONEWATCH_HEC_TOKEN_FILE", raising=False)
        args = _args("--sink", "hec=http://127.0.0.1:8088")
        with pytest.raises(CommandError, match="HEC token") as err:
            worker._build_sink(args.sink[0], args)
        assert err.value.code == 2
