"""Exit codes and the exception hierarchy.

Every failure a user can cause is a `McrmError` subclass carrying a one-line message, an
optional hint and an optional location (`file:line / key.path`). `exit_code_for` maps any
exception to the one `ExitCode` enum without importing duckdb or requests: foreign errors are
wrapped where they happen (`db.py`, the provider adapters), never here.

"Ran but found problems" (rejects over the limit, failed validation) is not an exception: the
command returns `ExitCode.PROBLEMS` from the result's counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes (documented in `mcrm --help` and the README)."""

    OK = 0
    """Success."""
    PROBLEMS = 1
    """Ran, but found problems: rejects over the limit, failed validation, partial send."""
    USAGE = 2
    """Bad flag or argument, bad or unreadable configuration."""
    DATA = 3
    """Missing file, unreadable data, database locked, schema mismatch."""
    PROVIDER = 4
    """A provider error stopped a send."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C / SIGINT)."""


@dataclass(frozen=True)
class Where:
    """Where a problem is: a file, a 1-based line and a key path, any of them optional."""

    file: str | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.key:
            parts.append(self.key)
        return " / ".join(parts)


class McrmError(Exception):
    """Base of every error a user can cause; `str()` is the one-line message."""

    exit_code: ExitCode = ExitCode.PROBLEMS

    def __init__(self, message: str, hint: str | None = None, where: Where | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def render(self) -> str:
        """`<what> (<where>)` — the text after `mcrm: error: `."""
        loc = str(self.where) if self.where else ""
        return f"{self.message} ({loc})" if loc else self.message


class UsageError(McrmError):
    """A bad flag, argument or combination of them."""

    exit_code = ExitCode.USAGE


class ConfigError(McrmError):
    """A bad, unreadable or inconsistent configuration file (mcrm.yaml, segments.yaml, ...)."""

    exit_code = ExitCode.USAGE


class DataError(McrmError):
    """Missing or unreadable data, a locked database, a schema mismatch."""

    exit_code = ExitCode.DATA


class DatabaseLocked(DataError):
    """Another process holds the database's write lock."""


class NotFound(DataError):
    """A user, import or other named thing does not exist."""


class ProviderError(McrmError):
    """A provider error that stopped a send."""

    exit_code = ExitCode.PROVIDER


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for any exception; unknown exceptions are bugs (code 1)."""
    if isinstance(error, McrmError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.PROBLEMS


def did_you_mean(word: str, choices: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """A `did you mean 'x'?` hint for a misspelt key, or None."""
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
