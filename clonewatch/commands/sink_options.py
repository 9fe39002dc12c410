"""Sink options in one place: the flags of every sink, and the sinks built from them.

The sinks (``streams/sinks/``) know nothing of argparse: each takes a config object,
read from its ``CLONEWATCH_<SINK>_*`` variables by ``<Config>.from_env(env, **overrides)``.
This module adds the ``--<sink>-*`` flags of each sink to a parser and turns the
parsed flags into those overrides (a flag given wins over its variable), so that
``worker`` and ``replay`` build their sinks the same way.

* :func:`add_search_arguments` / :func:`search_sinks`: ``--elasticsearch URL``,
  ``--opensearch URL`` and ``--namespace`` (``clonewatch replay``);
* :func:`add_sink_arguments` / :func:`build_sink`: ``--sink KIND[=URL]`` with the
  ``--webhook-*``, ``--siem-*`` and ``--hec-*`` flags (``clonewatch worker``).

>>> parser = argparse.ArgumentParser()
>>> add_sink_arguments(parser)
>>> args = parser.parse_args(["--sink", "siem=udp://127.0.0.1:5514", "--siem-kinds", "alert"])
>>> build_sink(args.sink[0], args, env={}).config.transport
'udp'
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from clonewatch.cli import CommandError
from streams.sinks.base import Sink
from streams.sinks.hec import HecConfig, HecSink
from streams.sinks.search import MissingClientError, Product, SearchSink, build_search_sink
from streams.sinks.syslog import SiemConfig, SyslogSink
from streams.sinks.webhook import WebhookConfig, WebhookSink

SEARCH_KINDS: tuple[Product, ...] = ("elasticsearch", "opensearch")

# --------------------------------------------------------------------------- search sinks


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--elasticsearch``, ``--opensearch`` and ``--namespace`` flags of ``replay``."""
    parser.add_argument(
        "--elasticsearch", metavar="URL", help="also index results into Elasticsearch"
    )
    parser.add_argument("--opensearch", metavar="URL", help="also index results into OpenSearch")
    parser.add_argument(
        "--namespace", default="default", help="data stream namespace for the search sinks"
    )


def search_sink(kind: Product, url: str, **settings: Any) -> SearchSink:
    """The search sink of ``kind`` at ``url``; a missing client or bad settings stop the command.

    A missing client library (its pip extra not installed) is a failure (exit 1)
    naming the extra; bad settings (a namespace with ``-``, an unreadable secret
    file...) a usage error (exit 2).
    """
    try:
        return build_search_sink(kind, url, **settings)
    except MissingClientError as exc:
        raise CommandError(str(exc), 1) from exc
    except (ValueError, TypeError, OSError) as exc:  # bad or missing sink settings
        raise CommandError(f"the {kind} sink: {exc}", 2) from exc


def search_sinks(args: argparse.Namespace) -> list[Sink]:
    """The search sinks asked for by :func:`add_search_arguments` flags (not yet set up)."""
    sinks: list[Sink] = []
    for kind in SEARCH_KINDS:
        url = getattr(args, kind, None)
        if url:
            sinks.append(search_sink(kind, url, namespace=args.namespace))
    return sinks


def flag_overrides(
    args: argparse.Namespace, sink: str, *names: str, **renamed: str
) -> dict[str, Any]:
    """The config overrides of ``sink``: ``--<sink>-<name>`` flags by setting name (None: unset).

    ``renamed`` maps a setting to a flag of another name (``dead_letter_path="dead_letter"``).

    >>> flag_overrides(argparse.Namespace(hec_url="http://s", hec_dead_letter=None), "hec",
    ...                "url", "index", dead_letter_path="dead_letter")
    {'url': 'http://s', 'index': None, 'dead_letter_path': None}
    """
    wanted = {name: name for name in names} | renamed
    return {setting: getattr(args, f"{sink}_{flag}", None) for setting, flag in wanted.items()}


# --------------------------------------------------------------------------- webhook


def add_webhook_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--webhook-*`` flags (each overrides its ``CLONEWATCH_WEBHOOK_*`` variable)."""
    group = parser.add_argument_group("throttle webhook")
    group.add_argument("--webhook-url", help="gateway endpoint (CLONEWATCH_WEBHOOK_URL)")
    group.add_argument(
        "--webhook-secret-file",
        help="file holding whsec_... secrets, space-separated for rotation "
        "(CLONEWATCH_WEBHOOK_SECRET_FILE; or CLONEWATCH_WEBHOOK_SECRET)",
    )
    group.add_argument(
        "--webhook-actions",
        help="LEVEL=throttle:RATE_PER_MIN:TTL_S or LEVEL=block:TTL_S, comma-separated "
        "(default high=throttle:10:3600,critical=block:86400)",
    )
    group.add_argument("--webhook-cooldown", type=float, help="seconds per client (default 900)")
    group.add_argument("--webhook-allowlist", help="comma-separated clients never throttled")
    group.add_argument("--webhook-max-attempts", type=int, help="attempts before dead letter")
    group.add_argument("--webhook-timeout", type=float, help="seconds per request (default 10)")
    group.add_argument("--webhook-dead-letter", help="dead-letter JSONL path")
    group.add_argument("--webhook-ca-file", help="CA bundle for an https gateway")


def webhook_config(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> WebhookConfig:
    """The webhook settings: the ``--webhook-*`` flags over the ``CLONEWATCH_WEBHOOK_*`` ones."""
    names: tuple[str, ...] = ("url", "secret_file", "actions", "cooldown", "allowlist")
    names += ("max_attempts", "timeout", "dead_letter", "ca_file")
    return WebhookConfig.from_env(env, **flag_overrides(args, "webhook", *names))


# --------------------------------------------------------------------------- SIEM (CEF/syslog)


def add_siem_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--siem-*`` flags (each overrides its ``CLONEWATCH_SIEM_*`` variable)."""
    group = parser.add_argument_group("SIEM (CEF over syslog)")
    group.add_argument("--siem-url", help="tcp://HOST:514, tls://HOST:6514 or udp://HOST:514")
    group.add_argument("--siem-facility", help="syslog facility name or number (default local4)")
    group.add_argument("--siem-kinds", help="record kinds to send: alert[,risk] (default alert)")
    group.add_argument("--siem-tls-ca-file", help="CA bundle that signed the receiver's cert")
    group.add_argument("--siem-tls-cert-file", help="client certificate (mutual TLS)")
    group.add_argument("--siem-tls-key-file", help="client key (mutual TLS)")


def siem_config(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> SiemConfig:
    """The SIEM settings: the ``--siem-*`` flags over the ``CLONEWATCH_SIEM_*`` variables."""
    names = ("url", "facility", "kinds", "tls_ca_file", "tls_cert_file", "tls_key_file")
    return SiemConfig.from_env(env, **flag_overrides(args, "siem", *names))


# --------------------------------------------------------------------------- Splunk HEC


def add_hec_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--hec-*`` flags (each overrides its ``CLONEWATCH_HEC_*`` variable)."""
    group = parser.add_argument_group("Splunk HTTP Event Collector")
    group.add_argument("--hec-url", help="https://splunk:8088 (CLONEWATCH_HEC_URL)")
    group.add_argument(
        "--hec-token-file", help="file holding the HEC token (or CLONEWATCH_HEC_TOKEN)"
    )
    group.add_argument("--hec-index", help="Splunk index (default: the token's)")
    group.add_argument("--hec-kinds", help="record kinds to send (default alert,risk)")
    group.add_argument("--hec-ca-file", help="CA bundle of the Splunk certificate")
    group.add_argument("--hec-batch-size", type=int, help="events per request (default 100)")
    group.add_argument("--hec-dead-letter", help="dead-letter JSONL path")


def hec_config(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> HecConfig:
    """The HEC settings: the ``--hec-*`` flags over the ``CLONEWATCH_HEC_*`` variables."""
    names = ("url", "token_file", "index", "kinds", "ca_file", "batch_size")
    overrides = flag_overrides(args, "hec", *names, dead_letter_path="dead_letter")
    return HecConfig.from_env(env, **overrides)


# --------------------------------------------------------------------------- --sink KIND[=URL]

SinkBuilder = Callable[[argparse.Namespace, Mapping[str, str] | None], Sink]


def _webhook(args: argparse.Namespace, env: Mapping[str, str] | None) -> Sink:
    return WebhookSink(webhook_config(args, env))


def _siem(args: argparse.Namespace, env: Mapping[str, str] | None) -> Sink:
    return SyslogSink(siem_config(args, env))


def _hec(args: argparse.Namespace, env: Mapping[str, str] | None) -> Sink:
    return HecSink(hec_config(args, env))


# The sinks ``--sink`` names besides the search ones, built from their flags over their variables.
FLAG_SINKS: dict[str, SinkBuilder] = {"webhook": _webhook, "siem": _siem, "hec": _hec}
SINK_KINDS: tuple[str, ...] = (*SEARCH_KINDS, *FLAG_SINKS)


def add_sink_arguments(parser: argparse.ArgumentParser) -> None:
    """``--sink KIND[=URL]`` (repeatable) and the flags of every sink it can name."""
    parser.add_argument(
        "--sink",
        action="append",
        default=[],
        metavar="KIND[=URL]",
        help="also deliver to elasticsearch=URL, opensearch=URL, webhook[=URL], siem[=URL] or "
        "hec[=URL] (repeatable; a URL given here is the default of --webhook-url etc.)",
    )
    add_webhook_arguments(parser)
    add_siem_arguments(parser)
    add_hec_arguments(parser)


def build_sink(spec: str, args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Sink:
    """The sink of one ``--sink KIND[=URL]`` (not yet set up); bad settings stop the command.

    A search sink needs the URL in the spec; the others take it as the default of
    their ``--KIND-url`` flag (an explicit flag wins). ``env`` defaults to the process
    environment.
    """
    kind, _, url = spec.partition("=")
    if kind in SEARCH_KINDS:
        if not url:
            raise CommandError(f"--sink {kind}=URL needs the cluster URL", 2)
        product: Product = "elasticsearch" if kind == "elasticsearch" else "opensearch"
        return search_sink(product, url, env=env)
    builder = FLAG_SINKS.get(kind)
    if builder is None:
        raise CommandError(f"unknown sink {kind!r}: one of {', '.join(SINK_KINDS)}", 2)
    if url and not getattr(args, f"{kind}_url", None):
        args = argparse.Namespace(**{**vars(args), f"{kind}_url": url})
    try:
        return builder(args, env)
    except (ValueError, TypeError, OSError) as exc:  # bad or missing sink settings
        raise CommandError(f"the {kind} sink: {exc}", 2) from exc
