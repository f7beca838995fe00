"""Human summaries on stderr (and their JSON form on stdout with --format json)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcrm.output import Format, Rows, console, resolve_format, write_rows

if TYPE_CHECKING:
    from mcrm.ingest.run import ImportResult

SUMMARY_COLS = [
    "file",
    "kind",
    "rows_read",
    "inserted",
    "updated",
    "duplicates",
    "rejected",
    "forgotten",
    "seconds",
]
SHORT = {"rows_read": "read", "duplicates": "dupes", "seconds": "secs"}


def import_summary(result: ImportResult, fmt: Format | None, quiet: bool, limit: float) -> None:
    """Per-file table on stderr; with --format json/jsonl/csv the same rows on stdout."""
    rows = [
        [
            f.file,
            f.kind,
            f.rows_read,
            f.inserted,
            f.updated,
            f.duplicates,
            f.rejected,
            f.forgotten,
            f.seconds,
        ]
        for f in result.files
    ]
    err = console()
    if fmt is not None and fmt is not Format.table:
        write_rows(
            Rows(["import_id", *SUMMARY_COLS], [[result.import_id, *r] for r in rows]),
            resolve_format(fmt, None),
        )
    for w in result.warnings:
        err.print(f"warning: {w}", markup=False)
    for f in result.files:
        if f.ignored_columns and not quiet:
            err.print(
                f"note: {f.file}: ignored columns: {', '.join(f.ignored_columns)}", markup=False
            )
        for w in f.warnings:
            err.print(f"warning: {f.file}: {w}", markup=False)
    if not quiet:
        from rich.table import Table

        t = Table(title=f"import {result.import_id}", show_edge=False, header_style="bold")
        for c in SUMMARY_COLS:
            t.add_column(SHORT.get(c, c), justify="left" if c in ("file", "kind") else "right")
        for r in rows:
            t.add_row(*[str(v) for v in r])
        err.print(t)
    if result.rejected:
        pct = result.reject_rate * 100
        over = result.reject_rate > limit
        err.print(
            f"{'error' if over else 'note'}: {result.rejected} row(s) rejected ({pct:.2f}%"
            f"{', over the limit of ' + format(limit * 100, '.2f') + '%' if over else ''}); "
            f"see: mcrm import rejects --import {result.import_id}",
            markup=False,
        )


def profile(data: dict[str, object]) -> None:
    """A profile for people (stdout: it is the data asked for)."""
    import sys

    from rich.console import Console
    from rich.table import Table

    from mcrm.output import text_value

    out = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120)
    prof = data["profile"]
    assert isinstance(prof, dict)
    name = " ".join(str(prof.get(k)) for k in ("first_name", "last_name") if prof.get(k))
    out.print(f"[bold]{data['user_id']}[/bold] {name}".rstrip())
    t = Table(show_header=False, show_edge=False, box=None)
    t.add_column(style="dim")
    t.add_column()
    for k, v in prof.items():
        if v is not None and k not in ("user_id", "first_name", "last_name"):
            t.add_row(k, text_value(v))
    out.print(t)
    if data.get("attributes"):
        out.print(f"attributes: {text_value(data['attributes'])}", markup=False)
    if data.get("merged_from"):
        out.print(f"merged from: {', '.join(map(str, data['merged_from']))}")  # type: ignore[call-overload]

    def section(title: str, rows: object) -> None:
        if not isinstance(rows, list) or not rows:
            return
        tab = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
        cols = list(rows[0].keys())
        for c in cols:
            tab.add_column(c, overflow="fold")
        for r in rows:
            tab.add_row(*[text_value(r[c]) for c in cols])
        out.print(tab)

    analytics = data.get("analytics")
    if isinstance(analytics, dict):
        rfm, lc, tier = analytics.get("rfm"), analytics.get("lifecycle"), analytics.get("tier")
        parts = [f"as of {text_value(analytics.get('as_of'))}"]
        if isinstance(lc, dict):
            parts.append(f"lifecycle {lc['stage']} (last active {lc['days_since_last']} days ago)")
        if isinstance(rfm, dict):
            parts.append(f"RFM {rfm['segment']} (cell {rfm['cell']})")
        if isinstance(tier, dict):
            parts.append(f"tier {tier['tier']}")
        clv = analytics.get("clv")
        if isinstance(clv, dict):
            parts.append(
                f"CLV {text_value(clv['clv'])} {clv['currency']} over "
                f"{clv['horizon_days']:g} days (p_alive {clv['p_alive']:.0%}, "
                f"{clv['expected_purchases']:.2f} expected purchases, expected AOV "
                f"{text_value(clv['expected_aov'])}; CLV run {clv['run_id']} as of "
                f"{text_value(clv['run_as_of'])})"
            )
        out.print("analytics: " + "; ".join(parts), markup=False, soft_wrap=True)
        segs = analytics.get("segments")
        if isinstance(segs, list) and segs:
            out.print(
                "segments (latest snapshots): " + ", ".join(s["segment"] for s in segs),
                markup=False,
            )
    section("identities", data.get("identities"))
    section("devices", data.get("devices"))
    section("consents", data.get("consents"))
    purchases = data.get("purchases")
    if isinstance(purchases, dict):
        summary = {k: v for k, v in purchases.items() if k != "recent"}
        out.print(
            "purchases: " + ", ".join(f"{k} {text_value(v)}" for k, v in summary.items()),
            markup=False,
        )
        section("recent orders", purchases.get("recent"))
    activity = data.get("activity")
    if isinstance(activity, dict):
        summary = {k: v for k, v in activity.items() if k != "recent_events"}
        out.print(
            "activity: " + ", ".join(f"{k} {text_value(v)}" for k, v in summary.items()),
            markup=False,
        )
        section("recent events", activity.get("recent_events"))
    section("messages", data.get("messages"))
