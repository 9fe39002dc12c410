"""Global options are accepted before and after the sub-command (only before, until now)."""

from __future__ import annotations

import pytest

from clonewatch.cli import build_parser


class TestGlobalOptions:
    """--log-level and --log-format anywhere on the command line."""

    @pytest.mark.parametrize(
        "argv",
        [
            ["--log-level", "DEBUG", "--log-format", "json", "replay", "x.jsonl"],
            ["replay", "x.jsonl", "--log-level", "DEBUG", "--log-format", "json"],
            ["replay", "--log-format", "json", "x.jsonl", "--log-level", "DEBUG"],
        ],
    )
    def test_before_or_after(self, argv: list[str]) -> None:
        """Each position gives the same values."""
        args = build_parser().parse_args(argv)
        assert (args.log_level, args.log_format, args.log) == ("DEBUG", "json", "x.jsonl")

    def test_after_wins_and_absent_stays_none(self) -> None:
        """Given in both places the sub-command's wins; given nowhere, both are None."""
        args = build_parser().parse_args(
            ["--log-level", "INFO", "tail", "alerts", "--log-level", "ERROR"]
        )
        assert args.log_level == "ERROR"
        args = build_parser().parse_args(["tail", "alerts"])
        assert (args.log_level, args.log_format) == (None, None)

    def test_every_command_takes_them(self) -> None:
        """No sub-command is left out."""
        parser = build_parser()
        sub = next(a for a in parser._actions if a.dest == "command")
        for name, command in sub.choices.items():  # type: ignore[union-attr]
            options = {o for a in command._actions for o in a.option_strings}
            assert {"--log-level", "--log-format"} <= options, name
