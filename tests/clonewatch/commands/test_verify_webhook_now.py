"""``clonewatch verify-webhook --now``: only a finite unix time.

Before, ``--now nan`` verified a webhook of any age (both tolerance comparisons false) and
``--now inf`` ended in an OverflowError traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clonewatch.cli import main
from streams.sinks.webhook_verify import sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - the spec's test vector


@pytest.fixture
def request_files(tmp_path: Path) -> list[str]:
    """A body, its headers signed in 2023 and the secret, as the command's arguments."""
    body = tmp_path / "body.json"
    body.write_bytes(b'{"a":1}')
    headers = tmp_path / "headers.json"
    headers.write_text(
        json.dumps(sign(body.read_bytes(), SECRET, msg_id="m", timestamp=1700000000))
    )
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    return [str(body), "--headers-file", str(headers), "--secret-file", str(secret)]


class TestNow:
    """A non-finite --now is a usage error naming the reason."""

    @pytest.mark.parametrize("now", ["nan", "inf", "-inf", "NaN", "infinity", "soon"])
    def test_rejected(
        self, request_files: list[str], now: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 2 with "not a finite unix time", never "valid"."""
        with pytest.raises(SystemExit) as exc:
            main(["verify-webhook", *request_files, f"--now={now}"])
        assert exc.value.code == 2
        captured = capsys.readouterr()
        assert "not a finite unix time" in captured.err
        assert "valid" not in captured.out

    def test_a_finite_now_still_decides(self, request_files: list[str]) -> None:
        """At the signing time it verifies; a day later it is stale (exit 1)."""
        assert main(["verify-webhook", *request_files, "--now", "1700000000"]) == 0
        assert main(["verify-webhook", *request_files, "--now", "1700086400"]) == 1
