"""``clonewatch redeliver FILE`` with a FILE that is not there is an error (it exited 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clonewatch.cli import main


class TestMissingSpool:
    """A named spool must exist; the default one may be absent."""

    def test_a_named_missing_file_exits_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 1 and a message naming the file."""
        path = tmp_path / "no" / "such" / "file"
        assert main(["redeliver", str(path)]) == 1
        assert f"cannot read {path}" in capsys.readouterr().err

    def test_a_directory_exits_1(self, tmp_path: Path) -> None:
        """A folder is not a spool."""
        assert main(["redeliver", str(tmp_path)]) == 1

    def test_the_default_spool_absent_is_nothing_to_do(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without an argument, no spool yet means nothing failed: exit 0."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("CLONEWATCH_WEBHOOK_DEAD_LETTER", raising=False)
        assert main(["redeliver"]) == 0
        assert "nothing to redeliver" in capsys.readouterr().out
