"""The command line's argument parsing: one-line errors that name the closest option or command.

argparse (before Python 3.14) reports a mistyped option of a subcommand with the top-level usage
and no hint (`tracehouse traces --limt 3`: "unrecognized arguments"); here the error names the
subcommand, the closest option (`did you mean --limit?`) and where help is, on one line.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import NoReturn, Optional, Sequence

_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)'")


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0-65535 (0: any free port, chosen when it is bound)."""
    expected = "expected a port number (0-65535; 0 for any free one)"
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{expected}, got {port}")
    return port


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line with a suggestion; subparsers are Parsers too."""

    def error(self, message: str) -> NoReturn:
        """Print `prog: error: message (did you mean ...?)` and a pointer to --help; exit 2."""
        hint = self._suggestion(message)
        sys.stderr.write(f"{self.prog}: error: {message}{hint}; see `{self.prog} --help`\n")
        raise SystemExit(2)

    def _suggestion(self, message: str) -> str:
        match = _INVALID_CHOICE.search(message)
        if match is None:
            return ""
        choices = [name for action in self._actions if action.choices for name in action.choices]
        return _closest(match.group(1), [str(c) for c in choices])

    def parse_args(  # type: ignore[override]
        self, args: Optional[Sequence[str]] = None, namespace: Optional[argparse.Namespace] = None
    ) -> argparse.Namespace:
        """Parse; an unknown option is reported by the subcommand it was given to, with the closest match."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            chosen = self._chosen(parsed)
            options = [o for action in chosen._actions for o in action.option_strings]
            unknown = next((e for e in extras if e.startswith("-")), extras[0])
            hint = _closest(unknown.split("=", 1)[0], options) if unknown.startswith("-") else ""
            chosen.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed

    def _chosen(self, parsed: argparse.Namespace) -> Parser:
        """The deepest subcommand parser the arguments chose."""
        parser: Parser = self
        while True:
            sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
            name = getattr(parsed, sub.dest, None) if sub is not None else None
            if sub is None or name not in sub.choices:
                return parser
            parser = sub.choices[name]


def refuse(parser: argparse.ArgumentParser, option: str, reason: str) -> None:
    """`option` on `parser` is an error that says why it does not apply (not silently ignored)."""

    class Refused(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
            parser.error(f"{option} does not apply here: {reason}")

    parser.add_argument(option, nargs="?", action=Refused, help=argparse.SUPPRESS)


def _closest(word: str, candidates: list[str]) -> str:
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {found[0]}?)" if found else ""


def command_options(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Every command path (`traces`, `keys create`) and its option strings (for the docs test)."""
    found: dict[str, list[str]] = {}

    def walk(current: argparse.ArgumentParser, path: list[str]) -> None:
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        shown = [a for a in current._actions if a.help != argparse.SUPPRESS]
        options = [
            o for a in shown for o in a.option_strings if o.startswith("--") and o not in ("--help", "--version")
        ]
        if path:
            found[" ".join(path)] = options
        for sub in subs:
            for name, child in sub.choices.items():
                walk(child, [*path, name])

    walk(parser, [])
    return found


__all__ = ["Parser", "command_options", "port_number", "refuse"]
