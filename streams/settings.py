"""Worker settings: environment variables ``CLONEWATCH_*`` over an optional TOML/JSON file.

Precedence, highest first: explicit keyword overrides, environment variables,
the file, the defaults below. A field ``foo`` is read from ``CLONEWATCH_FOO``;
engine thresholds from ``CLONEWATCH_ENGINE__<NAME>`` (or an ``[engine]`` table
in the file). The SASL password comes from ``CLONEWATCH_SASL_PASSWORD`` or from
the file named by ``CLONEWATCH_SASL_PASSWORD_FILE``; it is a ``SecretStr`` and
never appears in ``repr``, logs or :meth:`Settings.redacted`.

An unknown ``CLONEWATCH_*`` variable is an error (a typo of a setting would
otherwise be silently ignored), except the variables owned by other components
(:data:`FOREIGN_PREFIXES`, :data:`FOREIGN_NAMES`: the sinks' ``CLONEWATCH_ES_*``,
``CLONEWATCH_WEBHOOK_*``..., the CLI's ``CLONEWATCH_LOG_*``, the services' ports).

>>> s = Settings.load(env={"CLONEWATCH_PARTITIONS": "4"}, config_file=None)
>>> s.partitions, s.topic_queries
(4, 'clonewatch.queries')
"""

from __future__ import annotations

import difflib
import json
import os
import socket
import ssl
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from streams.redact import register_secret

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

ENV_PREFIX = "CLONEWATCH_"
CONFIG_ENV = "CLONEWATCH_CONFIG"

# CLONEWATCH_* variables that belong to other components (which validate them): a worker's
# environment legitimately carries them, so they are not typos of the worker's settings.
FOREIGN_PREFIXES: tuple[str, ...] = (
    "CLONEWATCH_ES_",  # search sinks (streams/sinks/search/settings.py); also services.sh ports
    "CLONEWATCH_OS_",  # services.sh: OpenSearch port and heap
    "CLONEWATCH_SIEM_",  # syslog/CEF sink (streams/sinks/syslog.py)
    "CLONEWATCH_HEC_",  # Splunk HEC sink (streams/sinks/hec.py)
    "CLONEWATCH_WEBHOOK_",  # webhook sink (streams/sinks/webhook.py)
    "CLONEWATCH_KIBANA_",  # clonewatch dashboards
    "CLONEWATCH_SERVICES_",  # scripts/services.sh
)
FOREIGN_NAMES: frozenset[str] = frozenset(
    {
        "CLONEWATCH_SASL_PASSWORD_FILE",  # read below, by the settings themselves
        "CLONEWATCH_LOG_FORMAT",  # the CLI's logging (clonewatch/logs.py)
        "CLONEWATCH_LOG_LEVEL",
        "CLONEWATCH_DASHBOARDS_DIR",  # clonewatch dashboards (set in the Dockerfile)
        "CLONEWATCH_VERSION",  # docker-compose image tag
        "CLONEWATCH_KAFKA_PORT",  # scripts/services.sh and the test fixtures
        "CLONEWATCH_KAFKA_CONTROLLER_PORT",
        "CLONEWATCH_KAFKA_HEAP",
        "CLONEWATCH_JAVA",
        "CLONEWATCH_MVN_ARGS",
        "CLONEWATCH_PYTHON",
        "CLONEWATCH_TEST_CLI",  # tests/integration/stream_support.py
        "CLONEWATCH_PURE",  # detectors/native.py: run the pure Python engine
        "CLONEWATCH_COMPILE",  # scripts/compile.py: 0 skips the mypyc build
    }
)


def is_foreign(key: str) -> bool:
    """Whether ``key`` is a CLONEWATCH_* variable owned by another component.

    >>> is_foreign("CLONEWATCH_ES_PASSWORD"), is_foreign("CLONEWATCH_PARTITONS")
    (True, False)
    """
    return key in FOREIGN_NAMES or key.startswith(FOREIGN_PREFIXES)


class SettingsError(ValueError):
    """The configuration is invalid; the message says which setting and why."""


class Settings(BaseModel):
    """Everything a worker, ``produce`` and ``tail`` need to reach Kafka and run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Kafka connection
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_check_hostname: bool = True
    client_id: str = "clonewatch"

    # Application identity: the consumer group and prefix of internal topics.
    app_id: str = "clonewatch"
    worker_id: str = Field(default_factory=socket.gethostname)

    # Topics
    topic_queries: str = "clonewatch.queries"
    topic_alerts: str = "clonewatch.alerts"
    topic_risk: str = "clonewatch.risk"
    topic_dead_letter: str = "clonewatch.dead-letter"
    topic_population: str = "clonewatch.population"
    partitions: int = Field(default=8, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    max_message_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)

    # State
    store: str = "memory://"
    data_dir: Path = Path("clonewatch-data")
    standby_replicas: int = Field(default=1, ge=0)
    # Deprecated, ignored: the score stage checkpoints the baseline with every batch that
    # changes it (streams/checkpoint.py); kept so configurations that set it still load.
    population_checkpoint_seconds: float = Field(default=30.0, gt=0)

    # Processing
    batch_max: int = Field(default=500, ge=1)
    batch_within_seconds: float = Field(default=0.05, gt=0)
    commit_interval_seconds: float = Field(default=2.0, gt=0)
    lag_interval_seconds: float = Field(default=5.0, gt=0)
    # A crashed worker's partitions move to the others after this long without heartbeats.
    session_timeout_seconds: float = Field(default=30.0, ge=6.0)

    # Observability: /metrics and /health; port 0 picks a free port, -1 disables.
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped from outside the container
    metrics_port: int = Field(default=9308, ge=-1, le=65535)

    # The operator's model registry (schemas/registry.py): dimensions, ranges, pinned models.
    model_registry: Path | None = None

    # Engine thresholds, passed to detectors.engine.EngineConfig(**engine).
    engine: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.store not in ("memory://", "rocksdb://"):
            raise ValueError("store must be memory:// or rocksdb://")
        if self.security_protocol.startswith("SASL_"):
            if self.sasl_mechanism is None:
                raise ValueError(f"sasl_mechanism is required with {self.security_protocol}")
            if not self.sasl_username or self.sasl_password is None:
                raise ValueError(
                    f"sasl_username and sasl_password are required with {self.security_protocol}"
                )
        if self.ssl_cafile is not None and not self.ssl_cafile.is_file():
            raise ValueError(f"ssl_cafile {self.ssl_cafile} is not a readable file")
        if not self.bootstrap_servers.strip():
            raise ValueError("bootstrap_servers is empty")
        if self.sasl_password is not None:  # masked in every log from now on
            register_secret(self.sasl_password.get_secret_value())
        return self

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        config_file: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings from ``config_file`` (or ``$CLONEWATCH_CONFIG``), the environment, overrides."""
        environ = os.environ if env is None else env
        path = config_file if config_file is not None else environ.get(CONFIG_ENV)
        data: dict[str, Any] = _read_file(Path(path)) if path else {}
        engine = dict(data.pop("engine", {}) or {})
        names = set(cls.model_fields)
        for key, value in environ.items():
            if not key.startswith(ENV_PREFIX) or key == CONFIG_ENV:
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name.startswith("engine__"):
                engine[name[len("engine__") :]] = _scalar(value)
            elif name in names and name != "engine":
                data[name] = value
            elif is_foreign(key):
                continue
            else:
                raise SettingsError(f"unknown setting {key}{_suggestion(name, names)}")
        secret_file = environ.get(f"{ENV_PREFIX}SASL_PASSWORD_FILE") or data.pop(
            "sasl_password_file", None
        )
        if secret_file and "sasl_password" not in data:
            try:
                data["sasl_password"] = Path(secret_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(f"cannot read the SASL password file: {exc}") from exc
        data.update({k: v for k, v in overrides.items() if v is not None})
        data["engine"] = engine
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            parts = [
                f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            ]
            raise SettingsError("invalid settings: " + "; ".join(parts)) from None

    def redacted(self) -> dict[str, Any]:
        """The settings as a loggable mapping (the password shown as set or not)."""
        out = self.model_dump(mode="json")
        out["sasl_password"] = "**********" if self.sasl_password is not None else None
        return out

    # ---- client configuration ------------------------------------------------------------

    @property
    def servers(self) -> list[str]:
        """Bootstrap servers as a list."""
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context for SSL and SASL_SSL, else None."""
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        ctx = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile is not None else None
        )
        ctx.check_hostname = self.ssl_check_hostname
        return ctx

    def kafka_python_config(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients (KafkaProducer/KafkaConsumer)."""
        cfg: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
        }
        if self.security_protocol.startswith("SASL_"):
            assert self.sasl_password is not None  # noqa: S101 - checked by the validator
            cfg["sasl_mechanism"] = self.sasl_mechanism
            cfg["sasl_plain_username"] = self.sasl_username
            cfg["sasl_plain_password"] = self.sasl_password.get_secret_value()
        if self.security_protocol in ("SSL", "SASL_SSL"):
            cfg["ssl_context"] = self.ssl_context()
        return cfg

    def aiokafka_config(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients (used by the benchmark)."""
        cfg: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL_"):
            assert self.sasl_password is not None  # noqa: S101 - checked by the validator
            cfg["sasl_mechanism"] = self.sasl_mechanism
            cfg["sasl_plain_username"] = self.sasl_username
            cfg["sasl_plain_password"] = self.sasl_password.get_secret_value()
        if self.security_protocol in ("SSL", "SASL_SSL"):
            cfg["ssl_context"] = self.ssl_context()
        return cfg


def _suggestion(name: str, names: set[str]) -> str:
    """``" (did you mean CLONEWATCH_X?)"`` for the closest setting name, or nothing."""
    close = difflib.get_close_matches(name, sorted(names - {"engine"}), n=1, cutoff=0.75)
    return f" (did you mean {ENV_PREFIX}{close[0].upper()}?)" if close else ""


def _scalar(value: str) -> Any:
    """An environment value as JSON when it parses (numbers, booleans), else the string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"config file {path} is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must hold a table/object")
    # Allow a [clonewatch] section or top-level keys.
    section = data.get("clonewatch", data)
    if not isinstance(section, dict):
        raise SettingsError(f"config file {path}: [clonewatch] must be a table")
    return dict(section)
