"""Device-only events and the file's links, case by case (the events model test covers them
at random; these pin the cases named in docs/import.md): a device seen with two users in one
file (the earliest link wins), device-only rows before and after their link, a link stored by
an earlier import (it wins over the file's), a device nothing links (attached later), and an
import into an empty users table while device identities already exist."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mcrm import api
from mcrm.db import connect
from tests.conftest import NOW, WorkspaceFactory, check_invariant

HEAD = "event_id,user_id,anonymous_id,name,timestamp,platform,os\n"


def ts(minute: int) -> dt.datetime:
    return dt.datetime(2024, 1, 1) + dt.timedelta(minutes=minute)


def line(eid: str, user: str, device: str, minute: int, os: str = "") -> str:
    return f"{eid},{user},{device},open,{ts(minute):%Y-%m-%d %H:%M:%S},ios,{os}\n"


def run(w: Any, name: str, text: str) -> None:
    w.write(name, HEAD + text)
    res = api.import_files(w.ws, "events", [name], cwd=w.root, now=NOW)
    for s in res.files:
        check_invariant(s)
        assert s.rejected == 0


def state(w: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, tuple[Any, ...]]]:
    con = connect(str(w.ws.db_path), read_only=True)
    try:
        events = dict(con.execute("SELECT event_id, user_id FROM events").fetchall())
        devices = dict(
            con.execute("SELECT value, user_id FROM identities WHERE kind = 'device'").fetchall()
        )
        users = {
            r[0]: tuple(r[1:])
            for r in con.execute("SELECT user_id, first_seen, last_seen, os FROM users").fetchall()
        }
    finally:
        con.close()
    return events, devices, users


def test_device_only_rows_take_the_first_link_of_the_file_and_a_stored_link_wins(
    workspace: WorkspaceFactory,
) -> None:
    w = workspace({"timezone": "UTC"})
    # import 1: d2 linked to u3; d9 seen alone (no user yet)
    run(w, "a.csv", line("a1", "u3", "d2", 50, "os-a") + line("a2", "", "d9", 51))
    run(
        w,
        "b.csv",
        # d1: device-only before and after its links; u2 links it first (minute 5), u1 later
        line("b1", "", "d1", 1, "os-early")
        + line("b2", "u1", "d1", 10, "os-u1")
        + line("b3", "u2", "d1", 5, "os-u2")
        + line("b4", "", "d1", 20, "os-late")
        # d2: stored link to u3; the file's own link to u1 does not move it
        + line("b5", "u1", "d2", 2)
        + line("b6", "", "d2", 30, "os-d2")
        # d3: nothing links it
        + line("b7", "", "d3", 40),
    )
    events, devices, users = state(w)
    assert events == {
        "a1": "u3",
        "a2": None,
        "b1": "u2",
        "b2": "u1",
        "b3": "u2",
        "b4": "u2",
        "b5": "u1",
        "b6": "u3",
        "b7": None,
    }
    assert devices == {"d1": "u2", "d2": "u3"}
    assert users == {
        # u2's own row and d1's device-only rows: first seen at d1's minute 1, os the latest
        "u2": (ts(1), ts(20), "os-late"),
        "u1": (ts(2), ts(10), "os-u1"),
        "u3": (ts(30), ts(50), "os-a"),
    }
    # a later import links d3 and d9: their earlier events attach at the end of it
    run(w, "c.csv", line("c1", "u4", "d3", 60) + line("c2", "u5", "d9", 61))
    events, devices, _ = state(w)
    assert (events["b7"], events["a2"]) == ("u4", "u5")
    assert (devices["d3"], devices["d9"]) == ("u4", "u5")


def test_an_empty_users_table_with_stored_device_links(workspace: WorkspaceFactory) -> None:
    w = workspace({"timezone": "UTC"})
    run(w, "a.csv", line("a1", "u1", "d1", 10, "os-a"))
    con = connect(str(w.ws.db_path))
    try:  # the users gone, their device links kept (a users table emptied by hand)
        con.execute("DELETE FROM users")
    finally:
        con.close()
    run(
        w,
        "b.csv",
        line("b1", "", "d1", 5, "os-d1")  # the stored link: u1's again
        + line("b2", "u2", "d2", 7, "os-u2")
        + line("b3", "", "d2", 3, "os-d2-early"),
    )
    events, devices, users = state(w)
    assert (events["b1"], events["b2"], events["b3"]) == ("u1", "u2", "u2")
    assert devices == {"d1": "u1", "d2": "u2"}
    # inserted from this file alone, with its device-only rows: as an update would leave them
    assert users == {"u1": (ts(5), ts(5), "os-d1"), "u2": (ts(3), ts(7), "os-u2")}
