"""Import the Clonewatch dashboards into Kibana or OpenSearch Dashboards.

Both products take the same saved-objects import API:
``POST /api/saved_objects/_import?overwrite=true`` (``/s/<space>/api/...`` for a Kibana
space) with the NDJSON bundle in the multipart field ``file``, plus an anti-CSRF header:
``kbn-xsrf: true`` for Kibana, ``osd-xsrf: true`` for OpenSearch Dashboards. The answer
says ``success``, ``successCount``, and lists ``successResults`` and ``errors`` per object.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

Product = Literal["kibana", "opensearch-dashboards"]

XSRF_HEADER: dict[Product, str] = {"kibana": "kbn-xsrf", "opensearch-dashboards": "osd-xsrf"}
BUNDLE_DIR: dict[Product, str] = {"kibana": "kibana", "opensearch-dashboards": "opensearch"}
BUNDLE_NAME = "clonewatch.ndjson"

log = structlog.get_logger(__name__)


class DashboardImportError(Exception):
    """The import could not be sent or the server refused the request as a whole."""


@dataclass(frozen=True)
class ObjectResult:
    """What the server said about one saved object of the bundle."""

    type: str
    id: str
    title: str
    status: Literal["imported", "failed", "not reported"]
    error: str | None = None


@dataclass(frozen=True)
class ImportResult:
    """The server's verdict on the whole bundle and on each object."""

    success: bool
    success_count: int
    objects: tuple[ObjectResult, ...]

    @property
    def ok(self) -> bool:
        """True when the server reports success and every object was imported."""
        return self.success and all(o.status == "imported" for o in self.objects)


def default_bundle(product: Product) -> Path:
    """The bundle shipped with Clonewatch for ``product``.

    Looked up under ``$CLONEWATCH_DASHBOARDS_DIR``, then the source checkout the package
    runs from, then ``./dashboards``.
    """
    candidates: list[Path] = []
    env = os.environ.get("CLONEWATCH_DASHBOARDS_DIR")
    if env:
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parents[1] / "dashboards")
    candidates.append(Path.cwd() / "dashboards")
    for root in candidates:
        path = root / BUNDLE_DIR[product] / BUNDLE_NAME
        if path.is_file():
            return path
    searched = ", ".join(str(c / BUNDLE_DIR[product]) for c in candidates)
    raise DashboardImportError(f"no {BUNDLE_NAME} found (searched {searched}); pass --file")


def import_url(base_url: str, space: str | None = None) -> str:
    """The import endpoint under ``base_url`` (a Kibana base path is kept), for ``space``."""
    base = base_url.rstrip("/")
    prefix = f"/s/{urllib.parse.quote(space, safe='')}" if space and space != "default" else ""
    return f"{base}{prefix}/api/saved_objects/_import?overwrite=true"


def multipart_body(content: bytes, filename: str = BUNDLE_NAME) -> tuple[bytes, str]:
    """A multipart/form-data body carrying ``content`` as the field ``file``."""
    boundary = f"clonewatch-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + content + tail, f"multipart/form-data; boundary={boundary}"


def auth_header(
    api_key: str | None = None, username: str | None = None, password: str | None = None
) -> str | None:
    """The Authorization header value for an API key or for basic auth, if any."""
    if api_key:
        return f"ApiKey {api_key}"
    if username is not None:
        token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
        return f"Basic {token}"
    return None


def read_bundle(path: Path) -> tuple[bytes, list[dict[str, Any]]]:
    """The raw bytes of an NDJSON bundle and its objects (checked to be JSON objects)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DashboardImportError(f"cannot read {path}: {exc.strerror or exc}") from exc
    objects: list[dict[str, Any]] = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DashboardImportError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        if not isinstance(obj, dict) or "type" not in obj or "id" not in obj:
            raise DashboardImportError(f"{path}:{number}: not a saved object")
        objects.append(obj)
    if not objects:
        raise DashboardImportError(f"{path}: no saved objects")
    return raw, objects


def _describe_error(error: dict[str, Any]) -> str:
    detail = error.get("error") or {}
    kind = str(detail.get("type", "unknown"))
    if kind == "missing_references":
        refs = ", ".join(f"{r.get('type')}/{r.get('id')}" for r in detail.get("references", []))
        return f"missing_references: {refs}"
    message = detail.get("message") or detail.get("reason")
    return f"{kind}: {message}" if message else kind


def parse_response(body: dict[str, Any], submitted: list[dict[str, Any]]) -> ImportResult:
    """Per-object results from an import answer, in the order the objects were sent."""
    errors = {(str(e.get("type")), str(e.get("id"))): e for e in body.get("errors") or []}
    successes = body.get("successResults")
    imported = (
        {(str(s.get("type")), str(s.get("id"))) for s in successes}
        if isinstance(successes, list)
        else None
    )
    success = bool(body.get("success"))
    results: list[ObjectResult] = []
    for obj in submitted:
        key = (str(obj["type"]), str(obj["id"]))
        title = str((obj.get("attributes") or {}).get("title", ""))
        if key in errors:
            results.append(ObjectResult(*key, title, "failed", _describe_error(errors[key])))
        elif (imported is not None and key in imported) or (imported is None and success):
            results.append(ObjectResult(*key, title, "imported"))
        else:
            results.append(ObjectResult(*key, title, "not reported"))
    extra = set(errors) - {(str(o["type"]), str(o["id"])) for o in submitted}
    for key in sorted(extra):
        error = errors[key]
        title = str(error.get("title", ""))
        results.append(ObjectResult(*key, title, "failed", _describe_error(error)))
    return ImportResult(success, int(body.get("successCount", 0)), tuple(results))


def import_bundle(
    base_url: str,
    product: Product,
    bundle: Path,
    *,
    space: str | None = None,
    api_key: str | None = None,
    username: str | None = None,
    password: str | None = None,
    ca_file: Path | None = None,
    timeout: float = 60.0,
) -> ImportResult:
    """Send ``bundle`` to the saved-objects import API of ``base_url``; return the verdict."""
    raw, objects = read_bundle(bundle)
    body, content_type = multipart_body(raw, bundle.name)
    url = import_url(base_url, space)
    if not url.startswith(("http://", "https://")):
        raise DashboardImportError(f"not an http(s) URL: {base_url}")
    headers = {
        "Content-Type": content_type,
        XSRF_HEADER[product]: "true",
        "Accept": "application/json",
    }
    authorization = auth_header(api_key, username, password)
    if authorization:
        headers["Authorization"] = authorization
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    log.info("dashboards_import", url=url, product=product, objects=len(objects))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            payload = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        hint = " (check the credentials)" if exc.code in (401, 403) else ""
        raise DashboardImportError(f"{url}: HTTP {exc.code}{hint}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DashboardImportError(f"{url}: cannot connect: {reason}") from exc
    try:
        answer = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise DashboardImportError(f"{url}: the answer is not JSON") from exc
    if not isinstance(answer, dict):
        raise DashboardImportError(f"{url}: unexpected answer {payload[:200]!r}")
    result = parse_response(answer, objects)
    log.info(
        "dashboards_imported",
        success=result.success,
        success_count=result.success_count,
        failed=sum(o.status != "imported" for o in result.objects),
    )
    return result
