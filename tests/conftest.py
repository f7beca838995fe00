"""Shared fixtures: workspaces built from dicts, a CLI runner, a read-only DB query helper.

Promises, not implementation: tests assert what a user sees (exit code, clean stdout, one-line
errors on stderr, rows in the database), never how mcrm gets there.

- `workspace(config=..., files=...)` builds a workspace in `tmp_path` and returns a `WS` (root
  path plus a `mcrm.config.Workspace`).
- `cli(ws, *args)` runs `mcrm --workspace ROOT *args` in-process and returns exit code, stdout and
  stderr separately (never the interleaved `output`).
- `query(ws, sql)` reads the database with a read-only connection that is always closed
  (DuckDB's file lock allows one writer process and blocks readers while it is held).
- `importer(ws, kind, files, ...)` runs `mcrm.api.import_files` at a fixed `now` and checks
  read = inserted + updated + duplicates + rejected + forgotten for every file.
- No network: an autouse fixture refuses every non-loopback connection.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcrm.config import Workspace, open_workspace
from mcrm.ingest.run import FileSummary, ImportResult

# the provider fakes (tests/fakes/fixtures.py): fcm_fake, sendgrid_fake, webhook_fake, ...
pytest_plugins = ["tests.fakes.fixtures"]

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
"""The fixed import moment of library-level imports (never the wall clock)."""


class WS:
    """A temporary workspace: its folder and the loaded `Workspace` (loaded on first use, so a
    test can build a workspace whose mcrm.yaml is deliberately broken)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ws: Workspace | None = None

    @property
    def ws(self) -> Workspace:
        if self._ws is None:
            self._ws = open_workspace(str(self.root), {}, self.root)
        return self._ws

    def write(self, name: str, content: str | bytes) -> Path:
        """Write a file (text as UTF-8, exactly as given: no newline translation)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def reload(self) -> WS:
        """Re-read mcrm.yaml (after a test rewrote it)."""
        self._ws = None
        return self


WorkspaceFactory = Callable[..., WS]


@pytest.fixture
def workspace(tmp_path: Path) -> WorkspaceFactory:
    """Build a workspace: `workspace(config={...} | "yaml text", files={"a.csv": "..."})`."""
    counter = iter(range(1000))

    def make(
        config: Mapping[str, Any] | str | None = None,
        files: Mapping[str, str | bytes] | None = None,
    ) -> WS:
        root = tmp_path / f"ws{next(counter)}"
        root.mkdir()
        if isinstance(config, str):
            text = config
        else:
            text = yaml.safe_dump(dict(config or {}), sort_keys=False)
        (root / "mcrm.yaml").write_text(text, encoding="utf-8")
        w = WS(root)
        for name, content in (files or {}).items():
            w.write(name, content)
        return w

    return make


@pytest.fixture
def ws(workspace: WorkspaceFactory) -> WS:
    """An empty workspace with default settings."""
    return workspace()


# ---------------------------------------------------------------------------------------------
# CLI


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def jsonl(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


Cli = Callable[..., CliResult]


@pytest.fixture
def cli() -> Cli:
    """`cli(ws_or_root_or_None, *args, env=None, stdin=None)` -> CliResult."""
    from typer.testing import CliRunner

    from mcrm.cli.main import app

    def run(
        where: WS | Path | None,
        *args: str,
        env: Mapping[str, str | None] | None = None,
        stdin: str | None = None,
    ) -> CliResult:
        runner = CliRunner()
        argv: list[str] = []
        if where is not None:
            root = where.root if isinstance(where, WS) else where
            argv += ["--workspace", str(root)]
        argv += list(args)
        # run from the workspace, as a user would: relative files and globs resolve there
        before = os.getcwd()
        if where is not None:
            os.chdir(where.root if isinstance(where, WS) else where)
        try:
            result = runner.invoke(app, argv, env=env, input=stdin)
        finally:
            os.chdir(before)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MCRM_* setting of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("MCRM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")


# ---------------------------------------------------------------------------------------------
# No network


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every connection that is not to the loopback interface (or a Unix socket)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        host = address[0] if isinstance(address, tuple) else str(address)
        if host in ("localhost", "::1") or str(host).startswith("127."):
            return real_connect(self, address)
        raise OSError(f"network access refused in tests: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)


# ---------------------------------------------------------------------------------------------
# Database


Query = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def query() -> Query:
    """`query(ws, sql, params=None)` -> rows, on a read-only connection that is always closed."""
    from mcrm.db import connect

    def run(w: WS | Workspace, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
        path = w.ws.db_path if isinstance(w, WS) else w.db_path
        con = connect(str(path), read_only=True)
        try:
            rows = con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()
            return list(rows)
        finally:
            con.close()

    return run


TABLES = (
    "users",
    "identities",
    "devices",
    "events",
    "purchases",
    "consents",
    "fx_rates",
    "ad_spend",
    "message_events",
    "imports",
    "import_rejects",
    "user_merges",
    "tombstones",
)


@pytest.fixture
def counts(query: Query) -> Callable[[WS], dict[str, int]]:
    """Row counts of every table (empty dict when there is no database yet)."""

    def run(w: WS) -> dict[str, int]:
        if not w.ws.db_path.exists():
            return {}
        return {t: int(query(w, f"SELECT count(*) FROM {t}")[0][0]) for t in TABLES}

    return run


# ---------------------------------------------------------------------------------------------
# Imports


def check_invariant(f: FileSummary | Mapping[str, Any]) -> None:
    """read = inserted + updated + duplicates + rejected + forgotten, for one file."""
    d = f if isinstance(f, Mapping) else asdict(f)
    total = d["inserted"] + d["updated"] + d["duplicates"] + d["rejected"] + d["forgotten"]
    assert d["rows_read"] == total, f"invariant broken for {d['file']}: {d}"


Importer = Callable[..., ImportResult]


@pytest.fixture
def importer() -> Importer:
    """`importer(ws, kind, files, **opts)`: a library import at NOW, invariant checked."""
    from mcrm import api

    def run(w: WS, kind: str, files: Sequence[str], **kw: Any) -> ImportResult:
        kw.setdefault("now", NOW)
        result = api.import_files(w.ws, kind, list(files), cwd=w.root, **kw)
        for f in result.files:
            check_invariant(f)
        return result

    return run


@pytest.fixture
def cli_import(cli: Cli) -> Callable[..., tuple[CliResult, list[dict[str, Any]]]]:
    """`cli_import(ws, kind, *args)`: `mcrm import KIND ... --format json`, invariant checked;
    returns the result and the parsed per-file summaries."""

    def run(w: WS, kind: str, *args: str) -> tuple[CliResult, list[dict[str, Any]]]:
        r = cli(w, "import", kind, *args, "--format", "json")
        rows: list[dict[str, Any]] = []
        if r.exit_code in (0, 1) and r.stdout.strip():
            rows = json.loads(r.stdout)
            for row in rows:
                check_invariant(row)
        return r, rows

    return run


@pytest.fixture(autouse=True)
def _chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run every test from its temporary folder, so nothing depends on the repo's cwd."""
    monkeypatch.chdir(tmp_path)
    yield
