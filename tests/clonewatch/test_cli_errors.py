"""A command's error line never shows a secret, however the failing library words it."""

from __future__ import annotations

import pytest

from clonewatch.cli import main


class TestErrorLines:
    """The CLI prints errors through streams.redact."""

    def test_url_password_is_masked_in_the_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A Kibana URL with a password, unreachable: exit 1, the password nowhere on stderr."""
        code = main(["dashboards", "import", "--kibana", "http://elastic:s3cretpw@127.0.0.1:9"])
        err = capsys.readouterr().err
        assert code == 1
        assert "clonewatch dashboards: error:" in err
        assert "s3cretpw" not in err
