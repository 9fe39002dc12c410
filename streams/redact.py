"""Secrets out of text: known secret values, ``password=`` patterns and URL credentials.

Every secret Clonewatch reads (the SASL password, search-server passwords and API keys,
webhook secrets, the HEC token) is registered here with :func:`register_secret` when it
is loaded; :func:`redact` replaces each registered value, anything that looks like a
password assignment (``password=...``, ``'sasl_plain_password': '...'``) and the userinfo
of URLs (``https://user:pass@host``) by ``**********``. ``clonewatch.logs`` runs every log
record through it (Clonewatch's own structlog events and every library logger), and error
messages that name a URL use :func:`redact_url`.

>>> register_secret("hunter2-s3cret")
>>> redact("login with hunter2-s3cret failed")
'login with ********** failed'
>>> redact("{'sasl_plain_username': 'u', 'sasl_plain_password': 'pw'}")
"{'sasl_plain_username': 'u', 'sasl_plain_password': '**********'}"
>>> redact("GET https://elastic:changeme@es:9200/_bulk")
'GET https://**********@es:9200/_bulk'
>>> redact_url("http://kibana:5601")
'http://kibana:5601'
"""

from __future__ import annotations

import re
import threading

MASK = "**********"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words; patterns still catch them

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()

# password=VALUE, password: VALUE, "password": "VALUE", 'sasl_plain_password': 'VALUE',
# and the same for secret, token, api_key (the key may be quoted, the value quoted or not).
_ASSIGNMENT = re.compile(
    r"""(?P<key>["']?[\w.-]*(?:password|passwd|secret|token|api_key|apikey)["']?"""
    r"""\s*[:=]\s*)(?P<q>["'])?(?P<value>(?(q)[^"']*|[^\s,;&)}\]]+))""",
    re.IGNORECASE,
)
# scheme://userinfo@host: the userinfo (user and password) is masked.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@]+)@")
# HTTP credentials in a header or a repr of one.
_AUTH_HEADER = re.compile(r"(?P<key>\b(?:Basic|Bearer|ApiKey|Splunk)\s+)(?P<value>[\w+/=.~-]+)")


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` masks it wherever it appears."""
    global _secrets  # noqa: PLW0603 - one process-wide registry, replaced atomically
    if not value:
        return
    parts = {value.strip(), *value.split()}  # a list of secrets separated by spaces, each
    keep = {p for p in parts if len(p) >= MIN_SECRET_LENGTH}
    if not keep:
        return
    with _lock:
        _secrets = _secrets | keep


def registered() -> int:
    """How many secret values are registered (for tests and diagnostics)."""
    return len(_secrets)


def redact_url(url: str) -> str:
    """The URL with its userinfo (``user:password@``) masked.

    >>> redact_url("https://admin:pw@os.example:9200/x")
    'https://**********@os.example:9200/x'
    """
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", url)


def redact(text: str) -> str:
    """``text`` with registered secrets, password assignments and URL credentials masked."""
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: no partial leftovers
        if secret in text:
            text = text.replace(secret, MASK)
    if "://" in text and "@" in text:
        text = redact_url(text)
    text = _ASSIGNMENT.sub(lambda m: f"{m['key']}{m['q'] or ''}{MASK}", text)
    return _AUTH_HEADER.sub(lambda m: f"{m['key']}{MASK}", text)
