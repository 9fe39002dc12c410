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
