"""Sink options (clonewatch/commands/sink_options.py): each ``--sink KIND`` reaches its sink."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from clonewatch.cli import CommandError
from clonewatch.commands import replay, sink_options, worker
from streams.sinks.search import SearchSink
from streams.sinks.webhook import Action
from streams.sinks.webhook_verify import generate_secret

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROOT = Path(__file__).resolve().parents[3]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    worker.register(parser.add_subparsers())
    return parser.parse_args(["worker", *argv])


def _flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sink_options.add_sink_arguments(parser)
    return parser.parse_args(list(argv))


class TestSinkWiring:
    """The worker builds the SIEM, HEC and webhook sinks from flags over the environment."""

    def test_siem_url_in_the_spec_reaches_the_syslog_sink(self) -> None:
        """--sink siem=tcp://H:P builds the syslog sink aimed at that receiver."""
        args = _args("--sink", "siem=tcp://127.0.0.1:5514", "--siem-kinds", "alert,risk")
        sink = sink_options.build_sink(args.sink[0], args)
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
        sink = sink_options.build_sink(args.sink[0], args)
        assert sink.name == "hec"
        assert sink.config.url == "http://127.0.0.1:8088"  # type: ignore[attr-defined]
        assert sink.config.batch_size == 7  # type: ignore[attr-defined]

    def test_flag_wins_over_the_url_in_the_spec(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An explicit --webhook-url is kept even when the spec also names a URL."""
        monkeypatch.setenv("CLONEWATCH_WEBHOOK_SECRET", SECRET)
        args = _args("--sink", "webhook=http://a.invalid/x", "--webhook-url", "http://b.invalid/y")
        sink = sink_options.build_sink(args.sink[0], args)
        assert sink.config.url == "http://b.invalid/y"  # type: ignore[attr-defined]

    def test_missing_settings_are_a_usage_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A HEC sink without a token stops the command with exit code 2 and the reason."""
        monkeypatch.delenv("CLONEWATCH_HEC_TOKEN", raising=False)
        monkeypatch.delenv("CLONEWATCH_HEC_TOKEN_FILE", raising=False)
        args = _args("--sink", "hec=http://127.0.0.1:8088")
        with pytest.raises(CommandError, match="HEC token") as err:
            sink_options.build_sink(args.sink[0], args)
        assert err.value.code == 2

    def test_unknown_kind_is_a_usage_error(self) -> None:
        """A kind no sink answers to names every known kind, with exit code 2."""
        args = _args("--sink", "kafka=x")
        with pytest.raises(CommandError, match="elasticsearch, opensearch, webhook") as err:
            sink_options.build_sink(args.sink[0], args)
        assert err.value.code == 2

    @pytest.mark.parametrize("kind", ["elasticsearch", "opensearch"])
    def test_search_sink_from_the_spec(self, kind: str) -> None:
        """--sink elasticsearch=URL builds the search sink of that product (no connection yet)."""
        args = _args("--sink", f"{kind}=http://127.0.0.1:9")
        sink = sink_options.build_sink(args.sink[0], args, env={})
        assert isinstance(sink, SearchSink)
        assert (sink.name, sink.names.namespace) == (kind, "default")

    def test_search_sink_needs_a_url(self) -> None:
        """--sink opensearch without a URL is a usage error."""
        args = _args("--sink", "opensearch")
        with pytest.raises(CommandError, match="needs the cluster URL") as err:
            sink_options.build_sink(args.sink[0], args)
        assert err.value.code == 2


class TestFlagsOverEnvironment:
    """A flag given on the command line wins over its CLONEWATCH_* variable."""

    def test_siem_flags_override_environment(self) -> None:
        """--siem-url wins over CLONEWATCH_SIEM_URL; the facility comes from the environment."""
        args = _flags("--siem-url", "tls://flag-host:7000")
        env = {"CLONEWATCH_SIEM_URL": "tcp://env-host:514", "CLONEWATCH_SIEM_FACILITY": "local7"}
        config = sink_options.siem_config(args, env)
        assert (config.host, config.port, config.transport) == ("flag-host", 7000, "tls")
        assert config.facility == 23

    def test_webhook_config_from_env_and_flags(self) -> None:
        """Flags override env; secrets may be several (rotation); the repr hides them."""
        secret_a, secret_b = generate_secret(), generate_secret()
        env = {
            "CLONEWATCH_WEBHOOK_URL": "https://gw.example/hook",
            "CLONEWATCH_WEBHOOK_SECRET": f"{secret_a} {secret_b}",
            "CLONEWATCH_WEBHOOK_ALLOWLIST": "ops, partner",
            "CLONEWATCH_WEBHOOK_MAX_ATTEMPTS": "7",
        }
        args = _flags("--webhook-cooldown", "30", "--webhook-actions", "low=block:5")
        config = sink_options.webhook_config(args, env)
        assert config.secrets == (secret_a, secret_b)
        assert config.policy.allowlist == frozenset({"ops", "partner"})
        assert config.policy.cooldown_seconds == 30
        assert config.policy.action_for("low") == Action("block", 5)
        assert config.retry.max_attempts == 7
        assert secret_a not in repr(config)

    def test_hec_flags_override_environment(self) -> None:
        """--hec-url and --hec-index win over CLONEWATCH_HEC_URL and CLONEWATCH_HEC_INDEX."""
        env = {
            "CLONEWATCH_HEC_URL": "http://env:8088",
            "CLONEWATCH_HEC_INDEX": "env_index",
            "CLONEWATCH_HEC_TOKEN": "t",
        }
        config = sink_options.hec_config(_flags("--hec-url", "http://f:1", "--hec-index", "i"), env)
        assert (config.url, config.index, config.token) == ("http://f:1", "i", "t")


class TestReplaySearchFlags:
    """``clonewatch replay --elasticsearch/--opensearch`` builds its sinks through sink_options."""

    def test_replay_flags_build_both_search_sinks(self) -> None:
        """Both flags give one sink each, in the namespace asked for."""
        parser = argparse.ArgumentParser()
        replay.register(parser.add_subparsers())
        argv = [
            "replay",
            "x.jsonl",
            "--elasticsearch",
            "http://e:9200",
            "--opensearch",
            "http://o:1",
        ]
        args = parser.parse_args([*argv, "--namespace", "prod_eu"])
        sinks = sink_options.search_sinks(args)
        assert [(s.name, s.names.namespace) for s in sinks] == [  # type: ignore[attr-defined]
            ("elasticsearch", "prod_eu"),
            ("opensearch", "prod_eu"),
        ]

    def test_bad_namespace_is_a_usage_error(self) -> None:
        """A namespace a data stream cannot carry stops the command with exit code 2."""
        parser = argparse.ArgumentParser()
        replay.register(parser.add_subparsers())
        args = parser.parse_args(
            ["replay", "x", "--opensearch", "http://o:1", "--namespace", "a-b"]
        )
        with pytest.raises(CommandError, match="invalid namespace") as err:
            sink_options.search_sinks(args)
        assert err.value.code == 2


class TestExplicitImports:
    """The sinks know nothing of argparse; the worker's sinks are imported, not looked up."""

    def test_no_sink_module_imports_argparse(self) -> None:
        """No module under streams/sinks/ imports argparse."""
        offenders = [
            str(path.relative_to(ROOT))
            for path in (ROOT / "streams" / "sinks").rglob("*.py")
            if "import argparse" in path.read_text(encoding="utf-8")
        ]
        assert offenders == []

    def test_worker_help_lists_every_sink_flag_group(self) -> None:
        """The worker's parser carries the flags of the webhook, SIEM and HEC sinks."""
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        worker.register(sub)
        out = sub.choices["worker"].format_help()
        for flag in ("--sink KIND[=URL]", "--webhook-url", "--siem-url", "--hec-url"):
            assert flag in out
