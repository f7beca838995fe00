"""SQL conditions over `users u` that other parts of mcrm use to filter by segment."""

from __future__ import annotations


def snapshot_members(segment: str, run_id: int) -> str:
    """Members of `segment` in snapshot `run_id` (a condition over `users u`)."""
    name = segment.replace("'", "''")
    return (
        f"u.user_id IN (SELECT m.user_id FROM segment_members m "
        f"WHERE m.run_id = {int(run_id)} AND m.segment = '{name}')"
    )
