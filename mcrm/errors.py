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
from pathlib import Path


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


def os_reason(e: OSError | ValueError, out: Path) -> str:
    """Why reading or writing `out` failed, in words: the OS's reason (never `None`: an
    OSError made without an errno has no `strerror`), naming the path at fault when it is not
    `out` itself (a parent that is a file, ...)."""
    if isinstance(e, ValueError):  # a NUL byte in the path
        return str(e) or "invalid path"
    where = Path(e.filename) if isinstance(e.filename, str) and e.filename else None
    if isinstance(e, FileExistsError | NotADirectoryError):
        # mkdir or open met a file where a directory must be
        blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), where)
        if blocker is not None:
            return f"{blocker} is a file, not a directory"
    if isinstance(e, IsADirectoryError) and (where is None or where == out):
        return "it is a directory (give a file name)"
    if isinstance(e, FileNotFoundError) and not out.parent.is_dir():
        return f"directory {out.parent} does not exist"
    reason = e.strerror or str(e) or type(e).__name__
    if where is not None and where != out:
        reason += f" ({where})"
    return reason
