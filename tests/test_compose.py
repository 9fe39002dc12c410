"""docker-compose.yml: valid for docker-compose, and in step with the CLI and the settings."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clonewatch.dashboards import default_bundle
from streams.settings import Settings
from streams.sinks.search import SearchSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = {
    "ELASTIC_PASSWORD": "demo-elastic-pw",
    "KIBANA_PASSWORD": "demo-kibana-pw",
    "KIBANA_ENCRYPTION_KEY": "k" * 32,
}
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's docker-compose pulls in python3-yaml


def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is missing: run scripts/deps.d/compose.sh")
    return subprocess.run(
        [exe, "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=ROOT,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The resolved configuration (interpolated, anchors merged) as docker-compose sees it."""
    result = _compose("config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    to_json = "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"
    converted = subprocess.run(
        [SYSTEM_PYTHON, "-c", to_json],
        input=result.stdout,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    resolved: dict[str, Any] = json.loads(converted.stdout)
    return resolved


def clonewatch_commands(service: dict[str, Any]) -> list[list[str]]:
    """Every clonewatch argv a service runs: its command, or each line of an `sh -ec` script."""
    command = service.get("command") or []
    if isinstance(command, str):
        command = shlex.split(command)
    if command[:1] == ["sh"] and command[1] in ("-c", "-ec"):
        lines = [shlex.split(line) for line in command[2].splitlines() if line.strip()]
        assert all(argv[0] == "clonewatch" for argv in lines), lines
        return lines
    return [command] if command[:1] == ["clonewatch"] else []


class TestComposeFileIsValid:
    """docker-compose itself accepts the file, and refuses it without the secrets."""

    def test_config_accepts_the_file(self, config: dict[str, Any]) -> None:
        """`docker-compose config` resolves every service the issue asks for."""
        assert set(config["services"]) == {
            "kafka",
            "elasticsearch",
            "kibana-password",
            "kibana",
            "setup",
            "worker",
            "producer",
        }

    def test_missing_secret_is_refused(self) -> None:
        """Without ELASTIC_PASSWORD the file does not resolve, and says which variable."""
        env = {k: v for k, v in SECRETS.items() if k != "ELASTIC_PASSWORD"}
        result = _compose("config", "-q", env=env)
        assert result.returncode != 0
        assert "ELASTIC_PASSWORD" in result.stderr

    def test_secrets_are_not_written_in_the_file(self) -> None:
        """No password value is hard-coded: each comes from ${VAR:?...} interpolation."""
        text = COMPOSE.read_text(encoding="utf-8")
        for line in text.splitlines():
            if re.search(r"PASSWORD\s*:", line) and "kibana_system" not in line:
                assert "${" in line, line


class TestServices:
    """Images, health checks, dependencies and volumes hang together."""

    def test_images_are_the_products_the_issue_names(self, config: dict[str, Any]) -> None:
        """Kafka is apache/kafka, Elasticsearch and Kibana are major version 9."""
        services = config["services"]
        assert services["kafka"]["image"].startswith("apache/kafka:")
        assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
        for name, repo in (("elasticsearch", "elasticsearch"), ("kibana", "kibana")):
            image = services[name]["image"]
            assert image.startswith(f"docker.elastic.co/{repo}/{repo}:9."), image
        for name in ("setup", "worker", "producer"):
            assert services[name]["build"]["context"] == str(ROOT)

    def test_dependencies_exist_and_are_checkable(self, config: dict[str, Any]) -> None:
        """A service_healthy dependency has a health check; a completed one is a one-shot job."""
        services = config["services"]
        for name, service in services.items():
            for dep, spec in (service.get("depends_on") or {}).items():
                assert dep in services, (name, dep)
                if spec["condition"] == "service_healthy":
                    assert "healthcheck" in services[dep], dep
                if spec["condition"] == "service_completed_successfully":
                    assert services[dep].get("restart") == "no", dep

    def test_long_running_services_have_health_checks_and_volumes(
        self, config: dict[str, Any]
    ) -> None:
        """Kafka, Elasticsearch, Kibana and the worker are health-checked and keep their data."""
        services = config["services"]
        declared = set(config["volumes"])
        for name in ("kafka", "elasticsearch", "kibana", "worker"):
            assert services[name]["healthcheck"]["test"], name
            sources = {
                v["source"] if isinstance(v, dict) else v.split(":")[0]
                for v in services[name]["volumes"]
            }
            assert sources and sources <= declared, name


class TestInStepWithTheCode:
    """Commands are real sub-commands and every CLONEWATCH_* variable is read by the code."""

    def test_every_clonewatch_command_parses(self, config: dict[str, Any]) -> None:
        """Each clonewatch command line of the file is accepted by clonewatch.cli.build_parser."""
        from clonewatch.cli import build_parser  # noqa: PLC0415 - needs every command module

        parser = build_parser()
        seen = set()
        for name, service in config["services"].items():
            for argv in clonewatch_commands(service):
                args = parser.parse_args(argv[1:])
                assert callable(getattr(args, "func", None)), (name, argv)
                seen.add(argv[1])
        assert {"worker", "setup", "dashboards", "simulate", "produce"} <= seen

    def test_every_variable_is_read(self, config: dict[str, Any], tmp_path: Path) -> None:
        """Each CLONEWATCH_* value changes what the settings, sinks or commands read."""
        unread = []
        for service in config["services"].values():
            env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
            unread.extend(
                key
                for key in env
                if key.startswith("CLONEWATCH_") and not _is_read(key, env, tmp_path / key)
            )
        assert unread == []

    def test_worker_environment_is_accepted_by_the_settings(self, config: dict[str, Any]) -> None:
        """Settings.load accepts the worker's whole environment (it refuses unknown names)."""
        env = {k: str(v) for k, v in config["services"]["worker"]["environment"].items()}
        Settings.load(env=env, config_file=None)


def _is_read(key: str, env: dict[str, str], tmp_path: Path) -> bool:
    """Whether the code reading ``key`` sees its value in ``env`` (behaviour, not a name list)."""
    value = env[key]
    fields = {f"CLONEWATCH_{name.upper()}" for name in Settings.model_fields}
    if key in fields:
        loaded = Settings.load(env={key: value}, config_file=None)
        return str(getattr(loaded, key.removeprefix("CLONEWATCH_").lower())) == value
    if key.startswith("CLONEWATCH_ES_"):
        search_env = {k: v for k, v in env.items() if k.startswith("CLONEWATCH_ES_")}
        with_key = SearchSettings.from_env(search_env)
        try:
            without = SearchSettings.from_env({k: v for k, v in search_env.items() if k != key})
        except ValueError:  # e.g. a password without its username: the key mattered
            return True
        return with_key != without
    if key in ("CLONEWATCH_LOG_FORMAT", "CLONEWATCH_LOG_LEVEL"):
        return key in (ROOT / "clonewatch" / "logs.py").read_text(encoding="utf-8")
    if key.startswith("CLONEWATCH_KIBANA_"):
        source = (ROOT / "clonewatch" / "commands" / "dashboards.py").read_text(encoding="utf-8")
        return 'ENV_PREFIX = "CLONEWATCH_KIBANA_"' in source and key[18:] in (
            "API_KEY",
            "USERNAME",
            "PASSWORD",
        )
    if key == "CLONEWATCH_DASHBOARDS_DIR":
        bundle = tmp_path / "kibana" / "clonewatch.ndjson"
        bundle.parent.mkdir(parents=True, exist_ok=True)
        bundle.write_text("{}\n")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(key, str(tmp_path))
            return default_bundle("kibana") == bundle
    return False


class TestDockerfile:
    """The image holds what the compose services run."""

    def test_copied_paths_exist_and_dashboards_are_found(self) -> None:
        """Every COPY source exists (README.md aside) and the bundle directory is set."""
        text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
        for line in text.splitlines():
            if line.startswith("COPY") and "--from" not in line:
                for source in line.split()[1:-1]:
                    assert (ROOT / source).exists() or source == "README.md", source
        assert "CLONEWATCH_DASHBOARDS_DIR=/opt/clonewatch/dashboards" in text
        assert "COPY dashboards /opt/clonewatch/dashboards" in text
        ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
        assert "dashboards" not in ignored

    def test_the_image_compiles_detectors_itself(self) -> None:
        """The build stage runs the mypyc compile; a local build is never copied in."""
        text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
        assert "python scripts/compile.py" in text
        ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
        assert {"**/*.so", "detectors/native.json", "!scripts/compile.py"} <= set(ignored)
