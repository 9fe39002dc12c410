"""Standard Webhooks verification, and the verify-webhook command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from clonewatch.cli import CommandError
from clonewatch.commands import verify_webhook
from streams.sinks.webhook_verify import (
    WebhookVerificationError,
    generate_secret,
    sign,
    verify,
)

# The test vector published with the Standard Webhooks reference libraries.
_VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105
_VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
_VECTOR_TS = 1614265330
_VECTOR_BODY = b'{"test": 2432232314}'
_VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _vector_headers(signature: str = _VECTOR_SIG) -> dict[str, str]:
    return {
        "webhook-id": _VECTOR_ID,
        "webhook-timestamp": str(_VECTOR_TS),
        "webhook-signature": signature,
    }


class TestVerify:
    """The library function a receiver calls."""

    def test_reference_vector_signs_and_verifies(self) -> None:
        """Signing reproduces the reference signature, and it verifies."""
        assert sign(_VECTOR_BODY, _VECTOR_SECRET, msg_id=_VECTOR_ID, timestamp=_VECTOR_TS) == (
            _vector_headers()
        )
        verify(_VECTOR_BODY, _vector_headers(), _VECTOR_SECRET, now=_VECTOR_TS + 10)

    def test_header_names_are_case_insensitive(self) -> None:
        """Capitalised header names (as proxies send them) are accepted."""
        headers = {k.title(): v for k, v in _vector_headers().items()}
        verify(_VECTOR_BODY, headers, _VECTOR_SECRET, now=_VECTOR_TS)

    def test_tampered_body_is_rejected(self) -> None:
        """One changed byte of the body fails verification."""
        with pytest.raises(WebhookVerificationError, match="no signature matches"):
            verify(b'{"test": 2432232315}', _vector_headers(), _VECTOR_SECRET, now=_VECTOR_TS)

    def test_wrong_secret_is_rejected(self) -> None:
        """Another secret does not verify the signature."""
        with pytest.raises(WebhookVerificationError):
            verify(_VECTOR_BODY, _vector_headers(), generate_secret(), now=_VECTOR_TS)

    @pytest.mark.parametrize(("offset", "word"), [(-301, "stale"), (301, "future")])
    def test_timestamps_outside_tolerance_are_rejected(self, offset: int, word: str) -> None:
        """A timestamp more than five minutes away from now is rejected."""
        with pytest.raises(WebhookVerificationError, match=word):
            verify(_VECTOR_BODY, _vector_headers(), _VECTOR_SECRET, now=_VECTOR_TS - offset)

    def test_tolerance_is_configurable(self) -> None:
        """A wider tolerance accepts an older timestamp."""
        verify(_VECTOR_BODY, _vector_headers(), _VECTOR_SECRET, tolerance=1000,
               now=_VECTOR_TS + 900)  # fmt: skip

    def test_any_of_several_signatures_may_match(self) -> None:
        """During a key rotation the header carries several signatures; one match suffices."""
        headers = _vector_headers(f"v1,AAAA v2,whatever {_VECTOR_SIG}")
        verify(_VECTOR_BODY, headers, _VECTOR_SECRET, now=_VECTOR_TS)

    def test_sender_with_two_secrets_verifies_under_either(self) -> None:
        """Signed with old and new secret, the body verifies with each of them alone."""
        old, new = generate_secret(), generate_secret()
        headers = sign(b"{}", [old, new], msg_id="msg_1", timestamp=100)
        assert len(headers["webhook-signature"].split()) == 2
        verify(b"{}", headers, old, now=100)
        verify(b"{}", headers, new, now=100)

    @pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
    def test_missing_header_is_rejected(self, missing: str) -> None:
        """Each of the three headers is required."""
        headers = _vector_headers()
        del headers[missing]
        with pytest.raises(WebhookVerificationError, match=missing):
            verify(_VECTOR_BODY, headers, _VECTOR_SECRET, now=_VECTOR_TS)

    def test_non_numeric_timestamp_is_rejected(self) -> None:
        """A timestamp that is not an integer is rejected."""
        headers = {**_vector_headers(), "webhook-timestamp": "yesterday"}
        with pytest.raises(WebhookVerificationError, match="integer"):
            verify(_VECTOR_BODY, headers, _VECTOR_SECRET, now=_VECTOR_TS)

    def test_only_v1_signatures_count(self) -> None:
        """A header without any v1 signature is rejected."""
        with pytest.raises(WebhookVerificationError, match="no v1"):
            verify(_VECTOR_BODY, _vector_headers("v2,abc"), _VECTOR_SECRET, now=_VECTOR_TS)


def _run(args: list[str]) -> int:
    parser = argparse.ArgumentParser()
    verify_webhook.register(parser.add_subparsers())
    parsed = parser.parse_args(["verify-webhook", *args])
    code: int = parsed.func(parsed)
    return code


class TestVerifyCommand:
    """``clonewatch verify-webhook``."""

    @pytest.fixture
    def files(self, tmp_path: Path) -> tuple[Path, Path, Path]:
        """A body, its headers as HTTP lines, and the secret file."""
        body = tmp_path / "body.json"
        body.write_bytes(_VECTOR_BODY)
        headers = tmp_path / "headers.txt"
        headers.write_text(
            "POST /hook HTTP/1.1\n" + "".join(f"{k}: {v}\n" for k, v in _vector_headers().items())
        )
        secret = tmp_path / "secret"
        secret.write_text(_VECTOR_SECRET + "\n")
        return body, headers, secret

    def test_valid_exits_zero(
        self, files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A genuine webhook prints valid and exits 0."""
        body, headers, secret = files
        code = _run([str(body), "--headers-file", str(headers), "--secret-file", str(secret),
                     "--now", str(_VECTOR_TS)])  # fmt: skip
        assert code == 0
        assert capsys.readouterr().out.startswith("valid")

    def test_stale_exits_one_with_reason(self, files: tuple[Path, Path, Path]) -> None:
        """A stale webhook fails with exit code 1 and says why."""
        body, headers, secret = files
        with pytest.raises(CommandError, match="stale") as info:
            _run([str(body), "--headers-file", str(headers), "--secret-file", str(secret)])
        assert info.value.code == 1

    def test_json_headers_and_env_secret(
        self, files: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Headers may be a JSON object and the secret may come from the environment."""
        body, _, _ = files
        headers = tmp_path / "headers.json"
        headers.write_text(json.dumps(_vector_headers()))
        monkeypatch.setenv("CLONEWATCH_WEBHOOK_SECRET", _VECTOR_SECRET)
        assert _run([str(body), "--headers-file", str(headers), "--now", str(_VECTOR_TS)]) == 0

    def test_missing_secret_is_a_usage_error(
        self, files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without any secret the command exits 2."""
        body, headers, _ = files
        monkeypatch.delenv("CLONEWATCH_WEBHOOK_SECRET", raising=False)
        with pytest.raises(CommandError) as info:
            _run([str(body), "--headers-file", str(headers)])
        assert info.value.code == 2
