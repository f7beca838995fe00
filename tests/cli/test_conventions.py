"""The CLI contract (SPEC §2, house style §2-§5): clean stdout, one-line errors with hints, one
exit code per kind of outcome, strict mcrm.yaml, secrets masked, read-only `mcrm sql`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mcrm.db import SCHEMA_VERSION
from tests.conftest import WS, Cli, CliResult, Query, WorkspaceFactory, check_invariant

CliImport = Callable[..., tuple[CliResult, list[dict[str, Any]]]]

EVENTS = "event_id,user_id,name,timestamp\ne1,u1,open,2024-01-01 10:00\ne2,u2,buy,2024-01-02\n"


@pytest.fixture
def loaded(ws: WS, cli_import: CliImport) -> WS:
    ws.write("e.csv", EVENTS)
    assert cli_import(ws, "events", "e.csv")[0].exit_code == 0
    return ws


def assert_one_error(stderr: str, *, hint: bool | None = None) -> None:
    """`mcrm: error: ...` on one line, optionally a `hint:` line, nothing else."""
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("mcrm: error: "), stderr
    assert len(lines) in (1, 2), stderr
    if len(lines) == 2:
        assert lines[1].startswith("hint: "), stderr
    if hint is not None:
        assert (len(lines) == 2) is hint, stderr
    assert "Traceback" not in stderr


# -- exit codes: one test per code ------------------------------------------------------------


def test_exit_0_ok(loaded: WS, cli: Cli) -> None:
    r = cli(loaded, "users", "list", "--format", "json")
    assert r.exit_code == 0 and r.stderr == ""
    assert [u["user_id"] for u in json.loads(r.stdout)] == ["u1", "u2"]


def test_exit_1_problems(ws: WS, cli_import: CliImport) -> None:
    ws.write("e.csv", EVENTS + "e3,u3,open,garbage\n")
    r, rows = cli_import(ws, "events", "e.csv")
    assert r.exit_code == 1 and rows[0]["rejected"] == 1
    assert "rejected" in r.stderr and "over the limit" in r.stderr


def test_exit_1_unexpected_error_is_a_bug_with_a_hint(
    loaded: WS, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcrm import api

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaputt")

    monkeypatch.setattr(api, "list_users", boom)
    r = cli(loaded, "users", "list", "--format", "json")
    assert r.exit_code == 1 and r.stdout == ""
    assert_one_error(r.stderr, hint=True)
    assert "kaputt" in r.stderr and "hint: rerun with --debug" in r.stderr
    r = cli(loaded, "--debug", "users", "list", "--format", "json")
    assert r.exit_code == 1 and "Traceback" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("import", "events", "e.csv", "--no-such-flag"),
        ("import", "evnts", "e.csv"),
        ("users", "list", "--format", "xml"),
        ("users", "list", "--limit", "-1"),
    ],
)
def test_exit_2_usage(loaded: WS, cli: Cli, args: tuple[str, ...]) -> None:
    r = cli(loaded, *args)
    assert r.exit_code == 2
    assert r.stdout == ""
    assert_one_error(r.stderr)


def test_exit_2_bad_yaml_key_with_line_and_suggestion(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    w = workspace("base_currency: EUR\ntimezon: Europe/Prague\n")
    r = cli(w, "users", "list")
    assert r.exit_code == 2
    assert_one_error(r.stderr, hint=True)
    assert "unknown key 'timezon'" in r.stderr
    assert "mcrm.yaml:2" in r.stderr
    assert "hint: did you mean 'timezone'?" in r.stderr


def test_exit_2_duplicate_yaml_key(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = workspace("timezone: UTC\nbase_currency: EUR\ntimezone: Europe/Prague\n")
    r = cli(w, "config", "show")
    assert r.exit_code == 2
    assert_one_error(r.stderr, hint=True)
    assert "duplicate key 'timezone'" in r.stderr and "mcrm.yaml:3" in r.stderr


def test_exit_2_yaml_type_surprise(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = workspace("base_currency: NO\n")
    r = cli(w, "config", "show")
    assert r.exit_code == 2
    assert "mcrm.yaml:1" in r.stderr and 'hint: quote it: "NO"' in r.stderr


def test_exit_2_no_workspace(tmp_path: object, cli: Cli) -> None:
    r = cli(None, "users", "list")  # cwd is an empty temporary folder
    assert r.exit_code == 2
    assert_one_error(r.stderr, hint=True)
    assert "no mcrm workspace" in r.stderr


def test_exit_3_missing_file(ws: WS, cli: Cli) -> None:
    r = cli(ws, "import", "events", "missing.csv")
    assert r.exit_code == 3
    assert_one_error(r.stderr)
    assert "missing.csv" in r.stderr


def test_exit_3_no_database_yet(ws: WS, cli: Cli) -> None:
    r = cli(ws, "users", "show", "u1")
    assert r.exit_code == 3
    assert_one_error(r.stderr, hint=True)
    assert "no database yet" in r.stderr
    assert not ws.ws.db_path.exists()  # reading never creates it


def test_exit_130_interrupted(loaded: WS, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcrm import api

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "list_users", interrupt)
    r = cli(loaded, "users", "list")
    assert r.exit_code == 130 and r.stderr == "mcrm: error: interrupted\n"


def test_debug_shows_traceback_for_mcrm_errors(ws: WS, cli: Cli) -> None:
    assert "Traceback" in cli(ws, "--debug", "import", "events", "nope.csv").stderr
    r = cli(ws, "import", "events", "nope.csv", env={"MCRM_DEBUG": "1"})
    assert "Traceback" in r.stderr and r.exit_code == 3


def test_help_lists_exit_codes(cli: Cli) -> None:
    r = cli(None, "--help")
    assert r.exit_code == 0
    for code in ("0 ok", "1 ran but found problems", "2 usage", "3 data", "130 interrupted"):
        assert code in r.stdout


# -- config -----------------------------------------------------------------------------------


def test_env_var_in_config(workspace: WorkspaceFactory, cli: Cli, cli_import: CliImport) -> None:
    w = workspace({"database": "${MCRM_TEST_DIR}/crm.duckdb"})
    w.write("e.csv", EVENTS)
    r = cli(w, "import", "events", "e.csv")
    assert r.exit_code == 2
    assert_one_error(r.stderr, hint=True)
    assert "MCRM_TEST_DIR" in r.stderr and "mcrm.yaml:1" in r.stderr
    r = cli(w, "import", "events", "e.csv", "--format", "json", env={"MCRM_TEST_DIR": str(w.root)})
    assert r.exit_code == 0, r.stderr
    check_invariant(r.json()[0])
    assert (w.root / "crm.duckdb").exists()


def test_config_show_masks_secrets(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = workspace(
        {
            "timezone": "Europe/Prague",
            "providers": {
                "sendgrid": {"api_key": "secret123", "from": "shop@example.com"},
                "twilio": {"auth_token": "${TWILIO_TOKEN}", "account_sid": "AC1"},
            },
        }
    )
    r = cli(w, "config", "show", "--format", "json", env={"TWILIO_TOKEN": "tok-456"})
    assert r.exit_code == 0, r.stderr
    assert "secret123" not in r.stdout and "tok-456" not in r.stdout
    data = json.loads(r.stdout)
    assert data["timezone"] == "Europe/Prague"
    assert data["providers"]["sendgrid"]["api_key"] == "****"
    assert data["providers"]["sendgrid"]["from"] == "shop@example.com"
    assert data["sources"]["timezone"] == "mcrm.yaml:1"
    assert data["sources"]["base_currency"] == "default"


def test_config_validate_reports_every_problem(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = workspace("timezon: UTC\nbase_currency: euro\nproviders: {sg: {api_key: '${NOPE}'}}\n")
    r = cli(w, "config", "validate")
    assert r.exit_code == 1
    assert "timezon" in r.stderr and "base_currency" in r.stderr and "NOPE" in r.stderr
    assert "3 problem(s)" in r.stderr


# -- sql and db -------------------------------------------------------------------------------


def test_sql_json_parses(loaded: WS, cli: Cli) -> None:
    r = cli(loaded, "sql", "SELECT event_id, ts FROM events ORDER BY 1", "--format", "json")
    assert r.exit_code == 0 and r.stderr == ""
    assert json.loads(r.stdout) == [
        {"event_id": "e1", "ts": "2024-01-01T10:00:00Z"},
        {"event_id": "e2", "ts": "2024-01-02T00:00:00Z"},
    ]


def test_sql_is_read_only(loaded: WS, cli: Cli, query: Query) -> None:
    r = cli(loaded, "sql", "DELETE FROM events")
    assert r.exit_code == 2
    assert_one_error(r.stderr, hint=True)
    assert "read-only" in r.stderr
    assert query(loaded, "SELECT count(*) FROM events") == [(2,)]


def test_sql_error_is_usage(loaded: WS, cli: Cli) -> None:
    r = cli(loaded, "sql", "SELEC 1")
    assert r.exit_code == 2
    assert_one_error(r.stderr)


def test_db_stats(loaded: WS, cli: Cli) -> None:
    r = cli(loaded, "db", "stats", "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["schema_version"] == str(SCHEMA_VERSION)
    assert data["tables"]["events"] == 2 and data["tables"]["users"] == 2
    assert data["events_from"] == "2024-01-01T10:00:00Z"
    t = cli(loaded, "db", "stats", "--format", "csv")
    assert t.stdout.splitlines()[0] == "table,rows"
    assert f"schema_version: {SCHEMA_VERSION}" in t.stderr


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "table"])
def test_stdout_is_only_data(loaded: WS, cli: Cli, fmt: str) -> None:
    r = cli(loaded, "users", "list", "--format", fmt)
    assert r.exit_code == 0 and r.stderr == ""
    if fmt == "json":
        assert len(json.loads(r.stdout)) == 2
    elif fmt == "jsonl":
        assert len(r.jsonl()) == 2
    elif fmt == "csv":
        assert len(r.stdout.splitlines()) == 3
    else:
        assert "u1" in r.stdout and "u2" in r.stdout


def test_out_file_matches_stdout(loaded: WS, cli: Cli) -> None:
    r = cli(loaded, "users", "list", "--format", "csv")
    out = loaded.root / "users.csv"
    r2 = cli(loaded, "users", "list", "--out", str(out))
    assert r2.exit_code == 0 and r2.stdout == ""
    assert out.read_text(encoding="utf-8") == r.stdout


def test_out_file_errors_say_why(loaded: WS, cli: Cli) -> None:
    """`--out` into a missing directory or under a file: the reason, never None."""
    (loaded.root / "afile").write_text("x")
    cases = {
        "nowhere/users.csv": "directory",
        "afile/users.csv": "afile is a file, not a directory",
    }
    for out, words in cases.items():
        r = cli(loaded, "users", "list", "--format", "csv", "--out", str(loaded.root / out))
        assert r.exit_code == 2, (out, r.stderr)
        assert_one_error(r.stderr)
        assert f"cannot write {loaded.root / out}: " in r.stderr and words in r.stderr, r.stderr
        assert "None" not in r.stderr
    assert not (loaded.root / "nowhere").exists()


def test_broken_pipe_is_not_an_error(
    loaded: WS, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mcrm.output

    def closed(*args: object, **kwargs: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(mcrm.output, "write_rows", closed)
    r = cli(loaded, "users", "list", "--format", "csv")  # as in `mcrm users list | head -1`
    assert r.exit_code == 0 and r.stderr == ""
