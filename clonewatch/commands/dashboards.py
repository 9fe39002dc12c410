"""``clonewatch dashboards import``: load the saved-object bundle into Kibana or OSD."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from clonewatch.cli import CommandError
from clonewatch.dashboards import (
    DashboardImportError,
    Product,
    default_bundle,
    import_bundle,
)

# Credentials when no option gives them: CLONEWATCH_KIBANA_API_KEY, or CLONEWATCH_KIBANA_USERNAME
# and CLONEWATCH_KIBANA_PASSWORD (each also as *_FILE naming a file that holds it).
ENV_PREFIX = "CLONEWATCH_KIBANA_"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dashboards`` and its ``import`` sub-command."""
    parser = subparsers.add_parser(
        "dashboards",
        help="manage the Kibana / OpenSearch Dashboards objects",
        description="Manage the Clonewatch dashboards.",
    )
    actions = parser.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import",
        help="import the dashboards through the saved-objects API",
        description=(
            "Import the Clonewatch data views, panels and dashboard (overwriting older "
            "copies) and report each object's result. Exit 1 if any object failed."
        ),
    )
    target = imp.add_mutually_exclusive_group(required=True)
    target.add_argument("--kibana", metavar="URL", help="Kibana base URL (8.9 or newer)")
    target.add_argument(
        "--opensearch-dashboards", metavar="URL", help="OpenSearch Dashboards base URL"
    )
    imp.epilog = (
        "Without --api-key-file or --username, credentials come from CLONEWATCH_KIBANA_API_KEY "
        "or CLONEWATCH_KIBANA_USERNAME and CLONEWATCH_KIBANA_PASSWORD (or their *_FILE variants)."
    )
    imp.add_argument("--space", help="Kibana space id (default: the default space)")
    imp.add_argument("--file", type=Path, help="bundle to import (default: the shipped one)")
    auth = imp.add_mutually_exclusive_group()
    auth.add_argument("--api-key-file", type=Path, metavar="F", help="file holding an API key")
    auth.add_argument("--username", metavar="U", help="basic-auth user (with --password-file)")
    imp.add_argument("--password-file", type=Path, metavar="F", help="file holding the password")
    imp.add_argument("--ca-file", type=Path, metavar="F", help="CA bundle to verify TLS with")
    imp.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    imp.set_defaults(func=run_import)


def _secret(path: Path, what: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CommandError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from exc
    if not value:
        raise CommandError(f"the {what} file {path} is empty")
    return value


def _env_secret(name: str) -> str | None:
    """``$NAME``, or the content of the file named by ``$NAME_FILE``."""
    value = os.environ.get(name)
    if value:
        return value
    path = os.environ.get(f"{name}_FILE")
    return _secret(Path(path), name) if path else None


def _credentials_from_env() -> tuple[str | None, str | None, str | None]:
    """API key, or username and password, from the CLONEWATCH_KIBANA_* environment."""
    api_key = _env_secret(f"{ENV_PREFIX}API_KEY")
    if api_key:
        return api_key, None, None
    username = _env_secret(f"{ENV_PREFIX}USERNAME")
    password = _env_secret(f"{ENV_PREFIX}PASSWORD") if username else None
    return None, username, password


def run_import(args: argparse.Namespace) -> int:
    """Import the bundle and print one line per object; 0 if all imported, else 1."""
    product: Product = "kibana" if args.kibana else "opensearch-dashboards"
    url: str = args.kibana or args.opensearch_dashboards
    if args.password_file and not args.username:
        raise CommandError("--password-file needs --username", code=2)
    if args.space and product == "opensearch-dashboards":
        raise CommandError("--space is a Kibana option", code=2)
    api_key = _secret(args.api_key_file, "API key") if args.api_key_file else None
    password = _secret(args.password_file, "password") if args.password_file else None
    username: str | None = args.username
    if api_key is None and username is None:
        api_key, username, password = _credentials_from_env()
    try:
        bundle = args.file or default_bundle(product)
        result = import_bundle(
            url,
            product,
            bundle,
            space=args.space,
            api_key=api_key,
            username=username,
            password=password,
            ca_file=args.ca_file,
            timeout=args.timeout,
        )
    except DashboardImportError as exc:
        raise CommandError(str(exc)) from exc
    for obj in result.objects:
        line = f"{obj.status:12} {obj.type}/{obj.id}  {obj.title}"
        if obj.error:
            line += f"  ({obj.error})"
        print(line)
    failed = sum(o.status != "imported" for o in result.objects)
    verdict = "ok" if result.ok else "FAILED"
    print(
        f"{verdict}: {result.success_count} imported, {failed} not imported, into {url}",
        file=sys.stderr if not result.ok else sys.stdout,
    )
    return 0 if result.ok else 1
