"""``clonewatch setup``: create the index templates, policies and indices Clonewatch writes to."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from clonewatch.cli import CommandError
from streams.sinks.base import SinkError
from streams.sinks.search import Product, build_search_sink


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``setup`` sub-command."""
    parser = subparsers.add_parser(
        "setup",
        help="create index templates, lifecycle policy and indices in Elasticsearch/OpenSearch",
        description=(
            "Detect what the cluster supports (data streams, ILM or ISM) and create, "
            "idempotently, the Clonewatch index templates with explicit ECS mappings, the "
            "retention policy, the alert and risk data streams (or dated indices), the "
            "latest-risk index and the dead-letter index. Secrets default to the "
            "CLONEWATCH_ES_API_KEY, CLONEWATCH_ES_USERNAME and CLONEWATCH_ES_PASSWORD "
            "variables (or their *_FILE variants); the CA file to CLONEWATCH_ES_CA_FILE."
        ),
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--elasticsearch", metavar="URL", help="Elasticsearch 8/9 URL")
    target.add_argument("--opensearch", metavar="URL", help="OpenSearch 2.x URL")
    parser.add_argument(
        "--namespace", default=None, help="data stream namespace (default: default)"
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--api-key-file", type=Path, metavar="F", help="file holding an API key")
    auth.add_argument("--username", metavar="U", help="basic-auth user (with --password-file)")
    parser.add_argument("--password-file", type=Path, metavar="F", help="file holding the password")
    parser.add_argument("--ca-file", type=Path, metavar="F", help="CA bundle to verify TLS with")
    parser.add_argument(
        "--no-verify", action="store_true", help="do not verify the TLS certificate (insecure)"
    )
    parser.add_argument(
        "--retention-days", type=int, default=None, help="delete history after N days (90)"
    )
    parser.add_argument(
        "--index-mode",
        choices=("auto", "data_stream", "dated"),
        default=None,
        help="data streams or dated indices (default: auto, detected)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--timeout", type=float, default=30.0, help="request seconds (30)")
    parser.set_defaults(func=run)


def _readable(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        if not path.read_text(encoding="utf-8").strip():
            raise CommandError(f"the {what} file {path} is empty")
    except OSError as exc:
        raise CommandError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from exc
    return str(path)


def run(args: argparse.Namespace) -> int:
    """Run the setup and print what was detected and done."""
    product: Product = "elasticsearch" if args.elasticsearch else "opensearch"
    url: str = args.elasticsearch or args.opensearch
    if args.password_file and not args.username:
        raise CommandError("--password-file needs --username", code=2)
    if args.ca_file is not None and not args.ca_file.is_file():
        raise CommandError(f"the CA file {args.ca_file} does not exist")
    try:
        sink = build_search_sink(
            product,
            url,
            namespace=args.namespace,
            api_key_file=_readable(args.api_key_file, "API key"),
            username=args.username,
            password_file=_readable(args.password_file, "password"),
            ca_file=str(args.ca_file) if args.ca_file else None,
            verify_certs=False if args.no_verify else None,
            retention_days=args.retention_days,
            index_mode=args.index_mode,
            request_timeout=args.timeout,
            manage_templates=True,
        )
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc), code=2) from exc
    except OSError as exc:
        raise CommandError(f"cannot read a secret file: {exc}") from exc
    try:
        sink.setup()
    except SinkError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        sink.close()
    features = sink.features
    assert features is not None  # noqa: S101 - set by setup()
    report: dict[str, Any] = {
        "product": product,
        "version": features.version,
        "namespace": sink.names.namespace,
        "data_streams": sink.data_streams,
        "lifecycle": features.lifecycle,
        "detected": dict(features.details),
        "targets": {
            "alerts": sink.names.alert if sink.data_streams else f"{sink.names.alert}-YYYY.MM.DD",
            "risk_history": (
                sink.names.risk_history
                if sink.data_streams
                else f"{sink.names.risk_history}-YYYY.MM.DD"
            ),
            "risk_latest": sink.names.risk_latest,
            "dead_letter": sink.names.dead_letter,
        },
        "actions": [{"what": what, "result": result} for what, result in sink.setup_actions],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{product} {features.version}, namespace {sink.names.namespace}")
    print(
        "  data streams: "
        + ("yes" if features.data_streams else "no (dated indices)")
        + f"; lifecycle: {features.lifecycle or 'none (no ILM/ISM on this cluster)'}"
    )
    for what, result in sink.setup_actions:
        print(f"  {result:<9} {what}")
    for role, name in report["targets"].items():
        print(f"  {role:<13} -> {name}")
    return 0
