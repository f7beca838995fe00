"""`mcrm users list --segment NAME`: members of the segment's latest snapshot."""

from __future__ import annotations

from tests.conftest import WS, Cli, WorkspaceFactory

USERS = "user_id,country\nu1,CZ\nu2,CZ\nu3,BG\n"
EVENTS = (
    "event_id,user_id,name,timestamp\n"
    "e1,u1,session_start,2026-11-01T10:00:00Z\n"
    "e2,u2,session_start,2026-11-01T10:00:00Z\n"
    "e3,u3,session_start,2026-11-01T10:00:00Z\n"
)
SEGMENTS = "segments:\n  czechs:\n    where: { country: CZ }\n"


def _ws(workspace: WorkspaceFactory, cli: Cli) -> WS:
    w = workspace(
        {"timezone": "UTC"},
        files={"users.csv": USERS, "events.csv": EVENTS, "segments.yaml": SEGMENTS},
    )
    assert cli(w, "-q", "import", "events", "events.csv").exit_code == 0
    assert cli(w, "-q", "import", "users", "users.csv").exit_code == 0
    return w


def test_list_members_of_the_latest_snapshot(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = _ws(workspace, cli)
    before = cli(w, "users", "list", "--segment", "czechs", "--format", "jsonl")
    assert before.exit_code == 3
    assert "no snapshot yet" in before.stderr and "segments compute czechs" in before.stderr
    assert cli(w, "-q", "segments", "compute", "--as-of", "2026-11-02").exit_code == 0
    res = cli(w, "users", "list", "--segment", "czechs", "--format", "jsonl")
    assert res.exit_code == 0
    assert sorted(r["user_id"] for r in res.jsonl()) == ["u1", "u2"]
    narrowed = cli(
        w, "users", "list", "--segment", "czechs", "--where", "u.user_id <> 'u1'", "-f", "jsonl"
    )
    assert [r["user_id"] for r in narrowed.jsonl()] == ["u2"]


def test_unknown_segment_suggests_the_name(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = _ws(workspace, cli)
    res = cli(w, "users", "list", "--segment", "czech", "--format", "jsonl")
    assert res.exit_code == 2
    assert "unknown segment 'czech'" in res.stderr
    assert "did you mean 'czechs'?" in res.stderr
    assert res.stdout == ""
