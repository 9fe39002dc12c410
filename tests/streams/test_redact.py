"""streams.redact: registered secrets, password assignments and URL credentials are masked."""

from __future__ import annotations

from streams.redact import MASK, redact, redact_url, register_secret
from streams.settings import Settings
from streams.sinks.search.settings import SearchSettings


class TestRedact:
    """What redact() masks and what it leaves alone."""

    def test_registered_secret_masked_anywhere(self) -> None:
        """A registered value is masked inside any text."""
        register_secret("tok-9f8e7d6c")
        assert redact("sent Bearer-ish tok-9f8e7d6c to x") == f"sent Bearer-ish {MASK} to x"

    def test_kafka_python_config_dump(self) -> None:
        """The dict repr kafka-python logs at DEBUG loses its password, keeps the rest."""
        text = "Starting KafkaAdminClient with configuration: {'sasl_plain_password': 'pw1'}"
        out = redact(text)
        assert "pw1" not in out
        assert "Starting KafkaAdminClient" in out

    def test_url_userinfo(self) -> None:
        """User and password of a URL are masked, host and path kept."""
        assert redact_url("https://elastic:pw@es:9200/_bulk") == f"https://{MASK}@es:9200/_bulk"
        assert (
            redact("cannot connect to http://kibana:5601") == "cannot connect to http://kibana:5601"
        )

    def test_authorization_header(self) -> None:
        """Basic and Splunk credentials in a header repr are masked."""
        assert "dXNlcjpwdw" not in redact("{'Authorization': 'Basic dXNlcjpwdw=='}")


class TestRegistration:
    """Secrets are registered where they are loaded."""

    def test_sasl_password_registered_by_settings(self) -> None:
        """Loading SASL settings makes the password redactable."""
        Settings.load(
            env={
                "CLONEWATCH_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "CLONEWATCH_SASL_MECHANISM": "PLAIN",
                "CLONEWATCH_SASL_USERNAME": "svc",
                "CLONEWATCH_SASL_PASSWORD": "sasl-Pa55-unit",
            }
        )
        assert redact("x sasl-Pa55-unit y") == f"x {MASK} y"

    def test_search_password_registered(self) -> None:
        """A search sink password is redactable once the settings exist."""
        SearchSettings(username="elastic", password="es-Pa55-unit")  # noqa: S106 - a test value
        assert "es-Pa55-unit" not in redact("auth failed for es-Pa55-unit")
