"""``clonewatch dashboards import`` against an HTTP server that answers like the import API."""

from __future__ import annotations

import argparse
import base64
import email.parser
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from clonewatch.cli import CommandError
from clonewatch.commands import dashboards as command

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KIBANA_BUNDLE = ROOT / "dashboards" / "kibana" / "clonewatch.ndjson"
OSD_BUNDLE = ROOT / "dashboards" / "opensearch" / "clonewatch.ndjson"


@dataclass
class FakeSavedObjects:
    """Server state: the stored objects per space, the requests seen, the credentials wanted."""

    xsrf: str
    authorization: str | None = None
    stored: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)


def _answer(state: FakeSavedObjects, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
    """The import API's contract, as Kibana 8/9 and OpenSearch Dashboards implement it."""
    url = urlsplit(handler.path)
    parts = url.path.strip("/").split("/")
    space = parts[1] if parts[:1] == ["s"] else "default"
    if parts[-3:] != ["api", "saved_objects", "_import"] or len(parts) not in (3, 5):
        return 404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"}
    if handler.headers.get(state.xsrf) is None:
        message = f"Request must contain a {state.xsrf} header."
        return 400, {"statusCode": 400, "error": "Bad Request", "message": message}
    if state.authorization and handler.headers.get("Authorization") != state.authorization:
        return 401, {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"}
    length = int(handler.headers.get("Content-Length", "0"))
    raw = handler.rfile.read(length)
    content_type = handler.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        return 415, {"statusCode": 415, "error": "Unsupported Media Type", "message": content_type}
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    files = [
        p
        for p in message.iter_parts()
        if p.get_param("name", header="content-disposition") == "file"
    ]
    if len(files) != 1:
        return 400, {"statusCode": 400, "error": "Bad Request", "message": "[file]: required"}
    filename = str(files[0].get_filename())
    if not filename.endswith(".ndjson"):
        message_text = f"Invalid file extension {Path(filename).suffix}"
        return 400, {"statusCode": 400, "error": "Bad Request", "message": message_text}
    payload = files[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    overwrite = parse_qs(url.query).get("overwrite") == ["true"]
    state.requests.append(
        {
            "space": space,
            "overwrite": overwrite,
            "payload": payload,
            "headers": {k.lower(): v for k, v in handler.headers.items()},
        }
    )
    objects = [json.loads(line) for line in payload.decode().splitlines() if line.strip()]
    store = state.stored.setdefault(space, {})
    present = set(store) | {(o["type"], o["id"]) for o in objects}
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for obj in objects:
        key = (obj["type"], obj["id"])
        meta = {"title": obj["attributes"].get("title", "")}
        missing = [r for r in obj["references"] if (r["type"], r["id"]) not in present]
        if missing:
            refs = [{"type": r["type"], "id": r["id"]} for r in missing]
            error = {"type": "missing_references", "references": refs}
            errors.append({"type": key[0], "id": key[1], **meta, "meta": meta, "error": error})
        elif key in store and not overwrite:
            errors.append(
                {"type": key[0], "id": key[1], **meta, "meta": meta, "error": {"type": "conflict"}}
            )
        else:
            results.append({"type": key[0], "id": key[1], "meta": meta, "overwrite": key in store})
    for item in results:
        key = (item["type"], item["id"])
        store[key] = next(o for o in objects if (o["type"], o["id"]) == key)
    body = {"success": not errors, "successCount": len(results), "successResults": results}
    if errors:
        body["errors"] = errors
    return 200, body


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeSavedObjects]]:
    """A threaded HTTP server on loopback answering like the saved-objects import API."""
    state = FakeSavedObjects(xsrf=getattr(request, "param", "kbn-xsrf"))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            status, body = _answer(state, self)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def run(argv: list[str]) -> int:
    """Run ``clonewatch dashboards ...`` the way clonewatch.cli.main does."""
    parser = argparse.ArgumentParser(prog="clonewatch")
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except CommandError as exc:
        print(f"error: {exc}")
        return exc.code
    return code


class TestKibanaImport:
    """Importing into Kibana sends the bundle the way the API wants and reports each object."""

    def test_bundle_is_sent_as_multipart_file_with_xsrf_and_overwrite(
        self, server: tuple[str, FakeSavedObjects], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The request carries the exact bundle in `file`, kbn-xsrf and overwrite=true."""
        url, state = server
        assert run(["dashboards", "import", "--kibana", url, "--file", str(KIBANA_BUNDLE)]) == 0
        (req,) = state.requests
        assert req["payload"] == KIBANA_BUNDLE.read_bytes()
        assert req["overwrite"] is True
        assert req["space"] == "default"
        assert req["headers"]["kbn-xsrf"] == "true"
        out = capsys.readouterr().out
        lines = [line for line in out.splitlines() if line.startswith("imported")]
        assert len(lines) == len(KIBANA_BUNDLE.read_text().splitlines())
        assert "dashboard/clonewatch-overview" in out
        assert "ok: 8 imported, 0 not imported" in out

    def test_default_bundle_is_the_shipped_one(self, server: tuple[str, FakeSavedObjects]) -> None:
        """Without --file the Kibana bundle of the checkout is imported."""
        url, state = server
        assert run(["dashboards", "import", "--kibana", url]) == 0
        assert state.requests[0]["payload"] == KIBANA_BUNDLE.read_bytes()

    def test_reimport_overwrites_instead_of_conflicting(
        self, server: tuple[str, FakeSavedObjects]
    ) -> None:
        """A second import of the same bundle succeeds, as overwrite=true replaces the objects."""
        url, state = server
        for _ in range(2):
            assert run(["dashboards", "import", "--kibana", url, "--file", str(KIBANA_BUNDLE)]) == 0
        assert len(state.requests) == 2
        assert len(state.stored["default"]) == 8

    def test_space_goes_into_the_path(self, server: tuple[str, FakeSavedObjects]) -> None:
        """--space soc posts to /s/soc/api/saved_objects/_import."""
        url, state = server
        assert run(["dashboards", "import", "--kibana", url, "--space", "soc"]) == 0
        assert state.requests[0]["space"] == "soc"
        assert set(state.stored) == {"soc"}

    def test_object_errors_are_reported_and_exit_1(
        self,
        server: tuple[str, FakeSavedObjects],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A dashboard whose panel is missing fails with missing_references; the rest imports."""
        url, _ = server
        lines = KIBANA_BUNDLE.read_text().splitlines()
        broken = tmp_path / "broken.ndjson"
        kept = [line for line in lines if json.loads(line)["id"] != "clonewatch-top-clients"]
        broken.write_text("\n".join(kept) + "\n")
        assert run(["dashboards", "import", "--kibana", url, "--file", str(broken)]) == 1
        out = capsys.readouterr().out
        assert "failed       dashboard/clonewatch-overview" in out
        assert "missing_references: lens/clonewatch-top-clients" in out
        assert "imported     lens/clonewatch-alerts-over-time" in out


class TestAuthentication:
    """Credentials from files go into the Authorization header; refusals exit 1."""

    def test_api_key_file(self, server: tuple[str, FakeSavedObjects], tmp_path: Path) -> None:
        """--api-key-file sends `Authorization: ApiKey <key>`."""
        url, state = server
        state.authorization = "ApiKey c2VjcmV0"
        key = tmp_path / "key"
        key.write_text("c2VjcmV0\n")
        assert run(["dashboards", "import", "--kibana", url, "--api-key-file", str(key)]) == 0

    def test_basic_auth(self, server: tuple[str, FakeSavedObjects], tmp_path: Path) -> None:
        """--username with --password-file sends basic auth."""
        url, state = server
        state.authorization = "Basic " + base64.b64encode(b"elastic:changeme").decode()
        secret = tmp_path / "pw"
        secret.write_text("changeme\n")
        argv = ["dashboards", "import", "--kibana", url, "--username", "elastic"]
        assert run([*argv, "--password-file", str(secret)]) == 0

    def test_credentials_from_the_environment(
        self, server: tuple[str, FakeSavedObjects], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """CLONEWATCH_KIBANA_USERNAME and CLONEWATCH_KIBANA_PASSWORD_FILE give basic auth."""
        url, state = server
        state.authorization = "Basic " + base64.b64encode(b"elastic:s3cret").decode()
        secret = tmp_path / "pw"
        secret.write_text("s3cret\n")
        monkeypatch.setenv("CLONEWATCH_KIBANA_USERNAME", "elastic")
        monkeypatch.setenv("CLONEWATCH_KIBANA_PASSWORD_FILE", str(secret))
        assert run(["dashboards", "import", "--kibana", url]) == 0

    def test_wrong_credentials_exit_1_with_the_status(
        self,
        server: tuple[str, FakeSavedObjects],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A 401 answer is reported with a hint and exit code 1."""
        url, state = server
        state.authorization = "ApiKey right"
        key = tmp_path / "key"
        key.write_text("wrong")
        assert run(["dashboards", "import", "--kibana", url, "--api-key-file", str(key)]) == 1
        assert "HTTP 401 (check the credentials)" in capsys.readouterr().out
        assert state.stored == {}


@pytest.mark.parametrize("server", ["osd-xsrf"], indirect=True)
class TestOpenSearchDashboardsImport:
    """OpenSearch Dashboards gets its own bundle and the osd-xsrf header."""

    def test_osd_header_and_bundle(self, server: tuple[str, FakeSavedObjects]) -> None:
        """The OSD bundle is sent with osd-xsrf: true and no kbn-xsrf."""
        url, state = server
        assert run(["dashboards", "import", "--opensearch-dashboards", url]) == 0
        (req,) = state.requests
        assert req["payload"] == OSD_BUNDLE.read_bytes()
        assert req["headers"]["osd-xsrf"] == "true"
        assert "kbn-xsrf" not in req["headers"]
        assert {t for t, _ in state.stored["default"]} == {
            "index-pattern",
            "visualization",
            "dashboard",
        }

    def test_kibana_header_is_refused_by_osd(
        self, server: tuple[str, FakeSavedObjects], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Posting to OSD as if it were Kibana gets the 400 the real server gives."""
        url, state = server
        assert run(["dashboards", "import", "--kibana", url]) == 1
        assert "Request must contain a osd-xsrf header" in capsys.readouterr().out
        assert state.requests == []


class TestUnreachable:
    """A server that is not there is a clean error, not a traceback."""

    def test_connection_refused_exits_1(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Nothing listening on the port gives exit 1 and a 'cannot connect' message."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        assert run(["dashboards", "import", "--kibana", f"http://127.0.0.1:{port}"]) == 1
        assert "cannot connect" in capsys.readouterr().out
