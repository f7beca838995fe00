"""`mcrm users ...`: profiles, lists, exports, merges, erasure, data access (SPEC §3.3, §9)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW, TABLES, WS, Cli, CliResult, Query, check_invariant

CliImport = Callable[..., tuple[CliResult, list[dict[str, Any]]]]

USERS = (
    "user_id,email,phone,first_name,last_name,city\n"
    "u1,ann@example.com,+420601234567,Ann,Novak,Praha\n"
    'u2,bob@example.com,,"=HYPERLINK(""http://x"")",-Smith,Brno\n'
    "u3,,,Cyril,@home,Ostrava\n"
)
EVENTS = (
    "event_id,user_id,anonymous_id,name,timestamp\n"
    "e1,u1,d1,app_open,2024-01-01 10:00\n"
    "e2,,d1,view,2024-01-01 09:00\n"
    "e3,u2,d2,app_open,2024-01-02 10:00\n"
)
ORDERS = (
    "order_id,user_id,email,timestamp,amount,currency\n"
    "o1,,ann@example.com,2024-01-03 10:00,10.00,EUR\n"
    "o2,u2,,2024-01-04 10:00,-5.00,EUR\n"
    "o3,u2,,2024-01-04 10:00,5.00,EUR\n"
)


@pytest.fixture(scope="module")
def people_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per module; each test gets its own copy (`people`)."""
    from mcrm import api
    from mcrm.config import open_workspace

    root = tmp_path_factory.mktemp("people")
    (root / "mcrm.yaml").write_text("timezone: UTC\n", encoding="utf-8")
    for name, text in (("users.csv", USERS), ("events.csv", EVENTS), ("orders.csv", ORDERS)):
        (root / name).write_text(text, encoding="utf-8")
    w = open_workspace(str(root), {}, root)
    for kind, f in (("users", "users.csv"), ("events", "events.csv"), ("purchases", "orders.csv")):
        result = api.import_files(w, kind, [f], cwd=root, now=NOW)
        for summary in result.files:
            check_invariant(summary)
    return root


@pytest.fixture
def people(people_template: Path, tmp_path: Path) -> WS:
    root = tmp_path / "people"
    shutil.copytree(people_template, root)
    return WS(root)


def test_show_masks_pii_unless_asked(people: WS, cli: Cli) -> None:
    r = cli(people, "users", "show", "u1", "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["user_id"] == "u1"
    assert "ann@example.com" not in r.stdout and "+420601234567" not in r.stdout
    assert data["profile"]["email"] == "a***@example.com"
    assert data["profile"]["phone"].startswith("+420") and "*" in data["profile"]["phone"]
    r = cli(people, "users", "show", "u1", "--format", "json", "--show-pii")
    data = json.loads(r.stdout)
    assert data["profile"]["email"] == "ann@example.com"
    assert data["profile"]["phone"] == "+420601234567"


def test_show_has_events_and_orders(people: WS, cli: Cli) -> None:
    data = cli(people, "users", "show", "u1", "--format", "json").json()
    assert data["activity"]["events"] == 2  # e2 came from device d1 anonymously
    assert [o["order_id"] for o in data["purchases"]["recent"]] == ["o1"]
    assert data["purchases"]["revenue"] == "10.000"


def test_show_finds_a_user_by_email_and_device(people: WS, cli: Cli) -> None:
    for ident in ("ANN@example.com", "d1"):
        assert cli(people, "users", "show", ident, "--format", "json").json()["user_id"] == "u1"


def test_show_unknown_user_is_exit_3(people: WS, cli: Cli) -> None:
    r = cli(people, "users", "show", "nobody", "--format", "json")
    assert r.exit_code == 3 and r.stdout == ""
    assert r.stderr.startswith("mcrm: error: no user 'nobody'")


def test_list_csv_parses_and_masks(people: WS, cli: Cli) -> None:
    r = cli(people, "users", "list", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["user_id"] for x in rows] == ["u1", "u2", "u3"]
    assert rows[0]["email"] == "a***@example.com"
    assert rows[2]["email"] == ""
    assert r.stderr == ""


def test_list_where_and_bad_where(people: WS, cli: Cli) -> None:
    r = cli(people, "users", "list", "--where", "city = 'Brno'", "--format", "jsonl")
    assert [x["user_id"] for x in r.jsonl()] == ["u2"]
    r = cli(people, "users", "list", "--where", "no_such_column = 1", "--format", "jsonl")
    assert r.exit_code == 2 and r.stderr.startswith("mcrm: error: --where")


def test_export_neutralises_formulas_unless_raw(people: WS, cli: Cli) -> None:
    r = cli(people, "users", "export", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    rows = {x["user_id"]: x for x in csv.DictReader(io.StringIO(r.stdout))}
    assert rows["u2"]["first_name"] == '\'=HYPERLINK("http://x")'
    assert rows["u2"]["last_name"] == "'-Smith"
    assert rows["u3"]["last_name"] == "'@home"
    assert rows["u1"]["first_name"] == "Ann"
    assert rows["u1"]["email"] == "ann@example.com"  # export is the unmasked one
    raw = {
        x["user_id"]: x
        for x in csv.DictReader(
            io.StringIO(cli(people, "users", "export", "--format", "csv", "--raw").stdout)
        )
    }
    assert raw["u2"]["first_name"] == '=HYPERLINK("http://x")'
    assert raw["u3"]["last_name"] == "@home"


def test_merge_by_hand(people: WS, cli: Cli, query: Query) -> None:
    r = cli(people, "users", "merge", "u3", "u1")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and "merged u3 into u1" in r.stderr
    assert query(people, "SELECT count(*) FROM users WHERE user_id = 'u3'") == [(0,)]
    data = cli(people, "users", "show", "u3", "--format", "json").json()
    assert data["user_id"] == "u1" and data["merged_from"] == ["u3"]
    again = cli(people, "users", "merge", "u3", "u1")
    assert again.exit_code == 2 and "already the same user" in again.stderr


def test_forget_erases_everywhere_and_reimport_keeps_them_out(
    people: WS, cli: Cli, cli_import: CliImport, query: Query
) -> None:
    r = cli(people, "users", "forget", "u1")
    assert r.exit_code == 2 and "--yes" in r.stderr  # not a terminal: no silent erasure
    r = cli(people, "users", "forget", "u1", "--yes")
    assert r.exit_code == 0, r.stderr

    def traces() -> dict[str, int]:
        out = {}
        for t in ("users", "events", "purchases", "consents", "devices", "identities"):
            out[t] = query(people, f"SELECT count(*) FROM {t} WHERE user_id = 'u1'")[0][0]
        out["anon"] = query(people, "SELECT count(*) FROM events WHERE anonymous_id = 'd1'")[0][0]
        out["email"] = query(
            people, "SELECT count(*) FROM identities WHERE value = 'ann@example.com'"
        )[0][0]
        return out

    assert set(traces().values()) == {0}
    dump = " ".join(str(row) for t in TABLES for row in query(people, f"FROM {t}"))
    assert "ann@example.com" not in dump and "+420601234567" not in dump

    forgotten = 0
    for kind, f in (("users", "users.csv"), ("events", "events.csv"), ("purchases", "orders.csv")):
        r, rows = cli_import(people, kind, f, "--max-reject-rate", "50%")
        assert r.exit_code == 0, r.stderr
        assert rows[0]["inserted"] == 0
        forgotten += rows[0]["forgotten"]
    assert forgotten == 1 + 2 + 1  # u1's profile, both d1 events, the order by email
    assert set(traces().values()) == {0}
    assert cli(people, "users", "show", "u1", "--format", "json").exit_code == 3


def test_export_data_has_orders_and_events(people: WS, cli: Cli) -> None:
    r = cli(people, "users", "export-data", "u1")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["user_id"] == "u1"
    assert data["users"][0]["email"] == "ann@example.com"
    assert [o["order_id"] for o in data["purchases"]] == ["o1"]
    assert sorted(e["event_id"] for e in data["events"]) == ["e1", "e2"]
    assert {i["kind"] for i in data["identities"]} >= {"email", "device"}


def test_forget_erases_their_import_rejects_and_keeps_others(
    people: WS, cli: Cli, cli_import: CliImport, query: Query
) -> None:
    """Rejected raw lines that hold one of u1's identifiers (user id, e-mail in any case, phone,
    device id, customer id, push token) as a whole token go; other people's stay, lookalikes
    included (`u10`, `joann@...`, `...example.com.au`, a longer number)."""
    from mcrm.db import open_db

    with open_db(people.ws, write=True) as con:
        con.execute(
            "INSERT INTO identities (kind, value, user_id, source, first_seen) "
            "VALUES ('customer', 'C-778', 'u1', 'test', TIMESTAMP '2024-01-01')"
        )
        con.execute(
            "INSERT INTO devices (device_id, user_id, push_token) "
            "VALUES ('d9', 'u1', 'ExponentPushToken[aa-1]')"
        )
    theirs = [
        '{"user_id": "u1", "name": "open"',
        '{"email": "ANN@Example.COM", "name":',
        '{"anonymous_id": "d1", "name": "x", ',
        '{"phone": "+420601234567"',
        '{"customer": "C-778",',
        '{"token": "ExponentPushToken[aa-1]"',
        "u1\tbroken\t2024",
    ]
    others = [
        '{"user_id": "u10", "name": "open"',
        '{"user_id": "xu1", "name": "open"',
        '{"email": "joann@example.com"',
        '{"email": "ann@example.com.au"',
        '{"phone": "+4206012345678"',
        '{"anonymous_id": "d11"',
        '{"customer": "C-7780"',
        '{"user_id": "u2", "name": "open"',
    ]
    lines = [x for pair in zip(theirs + [""], others, strict=True) for x in pair if x]
    good = '{"user_id": "u3", "name": "open", "timestamp": "2024-01-05 10:00"}'
    people.write("bad.jsonl", "\n".join([good, *lines]) + "\n")
    r, rows = cli_import(people, "events", "bad.jsonl", "--max-reject-rate", "100%")
    assert rows and rows[0]["rejected"] == len(lines), (r.exit_code, r.stderr)

    def raws() -> list[str]:
        return sorted(
            x[0] for x in query(people, "SELECT raw FROM import_rejects WHERE raw IS NOT NULL")
        )

    before = raws()
    assert sorted(lines) == sorted(x for x in before if x in lines)
    r = cli(people, "users", "forget", "u1", "--yes")
    assert r.exit_code == 0, r.stderr
    assert f"import_rejects {len(theirs)}" in r.stderr
    after = raws()
    assert [x for x in after if x in lines] == sorted(others)
    # none of their lines left in any table
    dump = " ".join(str(row) for t in TABLES for row in query(people, f"FROM {t}"))
    assert not [x for x in theirs if x in dump]
    assert "ANN@Example.COM" not in dump and "aa-1" not in dump


def test_forget_finds_their_phone_however_a_rejected_line_writes_it(
    people: WS, cli: Cli, cli_import: CliImport, query: Query
) -> None:
    """Imports store a phone as E.164 (`+420601234567`), but a rejected raw line keeps it as the
    export wrote it: with spaces, dashes, brackets, `00` for `+` or no prefix. Those go with u1;
    other numbers stay, including one that only starts like theirs."""
    from mcrm.db import open_db

    with open_db(people.ws, write=True) as con:
        assert con.execute("SELECT phone FROM users WHERE user_id = 'u1'").fetchall() == [
            ("+420601234567",)
        ]
    theirs = [
        '{"phone": "+420 601 234 567", "name":',
        '{"phone": "00420-601-234-567"',
        "u9,(+420) 601 234 567,broken",
        '{"phone": "420601234567"',
    ]
    others = [
        '{"phone": "+420 601 234 5678"',
        '{"phone": "+420 601 234 568"',
        '{"phone": "1420601234567"',
    ]
    lines = [*theirs, *others]
    good = '{"user_id": "u3", "name": "open", "timestamp": "2024-01-05 10:00"}'
    people.write("bad.jsonl", "\n".join([good, *lines]) + "\n")
    r, rows = cli_import(people, "events", "bad.jsonl", "--max-reject-rate", "100%")
    assert rows and rows[0]["rejected"] == len(lines), (r.exit_code, r.stderr)
    r = cli(people, "users", "forget", "u1", "--yes")
    assert r.exit_code == 0, r.stderr
    after = sorted(
        x[0] for x in query(people, "SELECT raw FROM import_rejects WHERE raw IS NOT NULL")
    )
    assert [x for x in after if x in lines] == sorted(others)
