"""Worker settings: environment over file, validation, secrets never shown."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest

from streams.settings import Settings, SettingsError


class TestLoading:
    """Where each setting comes from."""

    def test_defaults_name_the_documented_topics(self) -> None:
        """Without file or environment the four topics have their documented names."""
        s = Settings.load(env={})
        assert (s.topic_queries, s.topic_alerts, s.topic_risk, s.topic_dead_letter) == (
            "clonewatch.queries",
            "clonewatch.alerts",
            "clonewatch.risk",
            "clonewatch.dead-letter",
        )
        assert s.store == "memory://"

    def test_environment_overrides_the_file(self, tmp_path: Path) -> None:
        """A CLONEWATCH_* variable wins over the same key in the TOML file."""
        f = tmp_path / "cw.toml"
        f.write_text('partitions = 3\ntopic_alerts = "from-file"\n[engine]\nrisk_every_n = 7\n')
        s = Settings.load(f, env={"CLONEWATCH_PARTITIONS": "5"})
        assert s.partitions == 5
        assert s.topic_alerts == "from-file"
        assert s.engine == {"risk_every_n": 7}

    def test_json_file_and_nested_engine_variables(self, tmp_path: Path) -> None:
        """A JSON file is read too, and CLONEWATCH_ENGINE__X sets engine threshold x."""
        f = tmp_path / "cw.json"
        f.write_text(json.dumps({"clonewatch": {"store": "rocksdb://"}}))
        s = Settings.load(f, env={"CLONEWATCH_ENGINE__HYSTERESIS": "12.5"})
        assert s.store == "rocksdb://"
        assert s.engine == {"hysteresis": 12.5}

    def test_unknown_variable_is_an_error(self) -> None:
        """A misspelt CLONEWATCH_ variable is reported rather than ignored."""
        with pytest.raises(SettingsError, match="CLONEWATCH_PARTITONS"):
            Settings.load(env={"CLONEWATCH_PARTITONS": "3"})

    def test_unknown_variable_names_the_closest_setting(self) -> None:
        """A typo of a worker setting is refused with the setting it probably meant."""
        with pytest.raises(SettingsError, match="did you mean CLONEWATCH_PARTITIONS"):
            Settings.load(env={"CLONEWATCH_PARTITONS": "3"})

    def test_typo_of_a_worker_setting_is_still_refused_beside_sink_variables(self) -> None:
        """Sink variables being accepted does not let a typo of the worker's own names through."""
        env = {"CLONEWATCH_ES_USERNAME": "cw", "CLONEWATCH_BOOTSTRAP_SERVER": "k:9092"}
        with pytest.raises(SettingsError, match="CLONEWATCH_BOOTSTRAP_SERVER"):
            Settings.load(env=env)

    @pytest.mark.parametrize(
        "key",
        [
            "CLONEWATCH_ES_USERNAME",
            "CLONEWATCH_ES_PASSWORD",
            "CLONEWATCH_ES_API_KEY_FILE",
            "CLONEWATCH_ES_PORT",
            "CLONEWATCH_OS_PORT",
            "CLONEWATCH_SIEM_URL",
            "CLONEWATCH_HEC_TOKEN",
            "CLONEWATCH_WEBHOOK_SECRET",
            "CLONEWATCH_KIBANA_API_KEY",
            "CLONEWATCH_LOG_FORMAT",
            "CLONEWATCH_LOG_LEVEL",
            "CLONEWATCH_KAFKA_PORT",
            "CLONEWATCH_SERVICES_DIR",
            "CLONEWATCH_DASHBOARDS_DIR",
        ],
    )
    def test_variables_of_other_components_are_accepted(self, key: str) -> None:
        """A variable read by a sink, the CLI or the services does not stop the worker."""
        s = Settings.load(env={key: "x", "CLONEWATCH_PARTITIONS": "2"}, config_file=None)
        assert s.partitions == 2
        assert "x" not in {str(v) for v in s.redacted().values()}

    def test_worker_with_search_credentials_loads(self) -> None:
        """A worker given Elasticsearch credentials and a log format gets its Kafka settings."""
        env = {
            "CLONEWATCH_BOOTSTRAP_SERVERS": "kafka:9092",
            "CLONEWATCH_ES_USERNAME": "elastic",
            "CLONEWATCH_ES_PASSWORD": "s3cret-pw",
            "CLONEWATCH_LOG_FORMAT": "json",
        }
        s = Settings.load(env=env, config_file=None)
        assert s.servers == ["kafka:9092"]
        assert "s3cret-pw" not in json.dumps(s.redacted())

    def test_invalid_store_is_rejected(self) -> None:
        """Only memory:// and rocksdb:// are accepted state stores."""
        with pytest.raises(SettingsError, match="store"):
            Settings.load(env={"CLONEWATCH_STORE": "redis://"})


class TestSecurity:
    """SASL and TLS settings."""

    def test_sasl_requires_credentials(self) -> None:
        """SASL_SSL without a mechanism and credentials is refused with the reason."""
        with pytest.raises(SettingsError, match="sasl_mechanism"):
            Settings.load(env={"CLONEWATCH_SECURITY_PROTOCOL": "SASL_SSL"})

    def test_password_from_file_is_secret(self, tmp_path: Path) -> None:
        """A password read from *_FILE reaches the client config but never repr or logs."""
        pw = tmp_path / "pw"
        pw.write_text("hunter2-s3cret\n")
        s = Settings.load(
            env={
                "CLONEWATCH_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "CLONEWATCH_SASL_MECHANISM": "SCRAM-SHA-512",
                "CLONEWATCH_SASL_USERNAME": "cw",
                "CLONEWATCH_SASL_PASSWORD_FILE": str(pw),
            }
        )
        cfg = s.kafka_python_config()
        assert cfg["sasl_plain_password"] == "hunter2-s3cret"  # noqa: S105 - test value
        assert cfg["sasl_mechanism"] == "SCRAM-SHA-512"
        assert "hunter2" not in repr(s)
        assert "hunter2" not in json.dumps(s.redacted())

    def test_missing_ca_file_is_reported(self, tmp_path: Path) -> None:
        """A TLS CA file that does not exist is a configuration error."""
        with pytest.raises(SettingsError, match="ssl_cafile"):
            Settings.load(
                env={
                    "CLONEWATCH_SECURITY_PROTOCOL": "SSL",
                    "CLONEWATCH_SSL_CAFILE": str(tmp_path / "none.pem"),
                }
            )

    def test_ssl_gives_a_verifying_context(self) -> None:
        """SSL yields a TLS context that verifies the broker's certificate."""
        s = Settings.load(env={"CLONEWATCH_SECURITY_PROTOCOL": "SSL"})
        ctx = s.kafka_python_config()["ssl_context"]
        assert isinstance(ctx, ssl.SSLContext)
        assert ctx.verify_mode == ssl.CERT_REQUIRED
