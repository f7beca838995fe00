"""`mcrm report html`: every report's charts in one self-contained HTML file.

Why this shape:
- **One file, no network.** plotly.js is inlined from the `plotly` package's offline bundle
  (`plotly.offline.get_plotlyjs()`), the CSS is inline, and a Content-Security-Policy meta tag
  (`default-src 'none'`) forbids every fetch: the page opens from a mail attachment, on a plane,
  and a hostile string in the data can never make it load anything.
- **The data are the reports.** Each section calls the `build(con, ws, period, ...)` of the
  report that owns the numbers (`mcrm.reports.overview`, `cohorts`, `funnel`, ...); nothing is
  recomputed here. A report module this mcrm lacks, or a report that raises a `McrmError`
  (nothing imported yet, no ad spend, no predictions), becomes a short "no data" panel that
  says what to run; an unexpected exception is a bug and is not hidden.
- **Escaping.** Every data string that goes into markup goes through `html.escape`. The charts'
  figures travel as JSON in one `<script type="application/json">` element with `<`, `>` and
  `&` written as `\\u003c`... so no `</script>` can end it; strings that plotly draws (it reads
  a few HTML tags in labels) are entity-escaped too, so `<b>` in a campaign name shows as text.
- **Responsive.** A CSS grid that is one column on a phone; charts are `responsive: true` with
  autosized layouts; wide tables scroll inside their own box, never the page.
- **Checked in a browser.** A tiny script collects `window.onerror`, unhandled rejections and
  CSP violations into `#mcrm-errors`, and marks `<body data-rendered>` when every chart is
  drawn, so a headless browser test can read both from the DOM.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib
import importlib.util
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcrm.errors import McrmError, UsageError, os_reason
from mcrm.output import Rows, json_value

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace
    from mcrm.reports.common import Period, Report

DEFAULT_FUNNEL = ("product_view", "add_to_cart", "purchase")
"""The funnel shown when `--funnel` is not given: the e-shop's browse → cart → buy."""

PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"]


@dataclass(frozen=True)
class HtmlOptions:
    """What the page shows where a choice exists (see docs/reports.md, "report html")."""

    funnel: tuple[str, ...] = DEFAULT_FUNNEL
    funnel_within: str | None = None
    campaigns: tuple[str, ...] | None = None  # None: the campaigns planned in the period
    title: str = "mcrm report"


@dataclass
class Section:
    """One card of the page: charts (plotly figure dicts), extra markup, or a no-data panel."""

    key: str
    title: str
    intro: str = ""
    figures: list[dict[str, Any]] = field(default_factory=list)
    markup: str = ""  # already escaped HTML, before the charts
    after: str = ""  # already escaped HTML, after the charts
    nodata: str | None = None
    notes: list[str] = field(default_factory=list)

    def no_data(self, message: str) -> Section:
        self.figures = []
        self.markup = ""
        self.after = ""
        self.nodata = message
        return self


@dataclass
class HtmlResult:
    """The page and what it contains (for the CLI's summary and for tests)."""

    text: str
    sections: list[Section]
    warnings: list[str] = field(default_factory=list)

    @property
    def charts(self) -> int:
        return sum(len(s.figures) for s in self.sections)


@dataclass
class _Ctx:
    con: duckdb.DuckDBPyConnection
    ws: Workspace
    period: Period
    opts: HtmlOptions
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# small helpers


def esc(value: Any) -> str:
    """Any value as HTML text (quotes escaped too: safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def pt(value: Any) -> str:
    """A string plotly will draw: plotly reads a few HTML tags and entities in text, so the
    text is entity-escaped and shows literally."""
    return html.escape("" if value is None else str(value), quote=False)


def num(value: Any) -> float | None:
    """A chart number: Decimal and int as float; None, NaN and infinities as None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal | int | float):
        f = float(value)
        return f if math.isfinite(f) else None
    return None


def label(value: Any) -> str:
    """A category / axis value as text plotly draws literally."""
    if isinstance(value, dt.datetime | dt.date):
        return str(json_value(value)).removesuffix("T00:00:00Z")
    return pt("(none)" if value is None else value)


def records(rows: Rows) -> list[dict[str, Any]]:
    return [dict(zip(rows.columns, r, strict=True)) for r in rows.rows]


def pick(columns: Sequence[str], *names: str) -> str | None:
    """The first of `names` that is a column."""
    for n in names:
        if n in columns:
            return n
    return None


def _is_number(v: Any) -> bool:
    return num(v) is not None


def numeric_columns(recs: list[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """Columns whose non-null values are all numbers (and at least one is)."""
    out = []
    for c in columns:
        vals = [r[c] for r in recs if r.get(c) is not None]
        if vals and all(_is_number(v) for v in vals):
            out.append(c)
    return out


def titled(name: str) -> str:
    special = {
        "dau": "DAU",
        "wau": "WAU",
        "mau": "MAU",
        "aov": "AOV",
        "arpu": "ARPU",
        "arppu": "ARPPU",
        "cac": "CAC",
        "cpi": "CPI",
        "ctr": "CTR",
        "clv": "CLV",
    }
    parts = name.split("_")
    return (
        " ".join(special.get(p, p) for p in parts).capitalize()
        if name not in special
        else (special[name])
    )


# the campaign uplift table's headers (docs/reports.md §14 names the columns)
UPLIFT_HEADERS = {
    "variant": "Variant",
    "n": "Recipients",
    "conversions": "Conversions",
    "rate": "Conversion rate",
    "uplift": "Uplift vs holdout",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "verdict": "Verdict",
}


def layout(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "autosize": True,
        "margin": {"l": 52, "r": 16, "t": 12, "b": 44},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        # above the plot, under the caption: never over the data or the axis labels
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "xanchor": "left", "yanchor": "bottom"},
        "colorway": PALETTE,
        "hovermode": "closest",
    }
    base.update(extra)
    return base


def figure(data: list[dict[str, Any]], title: str, **lay: Any) -> dict[str, Any]:
    """A plotly figure; `title` is the chart's HTML caption (escaped there), not drawn by
    plotly, so a long title wraps on a phone instead of running under the legend."""
    legend = bool(lay.get("showlegend", len(data) > 1))
    lay.setdefault("margin", {"l": 52, "r": 16, "t": 34 if legend else 12, "b": 44})
    return {"title": title, "data": data, "layout": layout(**lay)}


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def table_markup(
    columns: Sequence[str], rows: Sequence[Sequence[str]], caption: str | None = None
) -> str:
    """A small table (cells already formatted as text; escaped here)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def fmt(value: Any, percent: bool = False) -> str:
    from mcrm.output import table_value

    return table_value(value, percent)


# ------------------------------------------------------------------------------------------------
# sections

SectionFn = Callable[[_Ctx, Section], Section]


def _report(
    ctx: _Ctx, module: str, section: Section, what: str | None = None, **kwargs: Any
) -> Report | None:
    """`mcrm.reports.<module>.build(con, ws, period, **kwargs)`, or None after turning the
    section into a no-data panel (module absent in this mcrm, or a McrmError)."""
    name = f"mcrm.reports.{module}"
    if not has_module(name):
        section.no_data(f"no data: this mcrm has no `mcrm report {module}` yet")
        return None
    mod = importlib.import_module(name)
    if not hasattr(mod, "build"):
        section.no_data(f"no data: this mcrm has no `mcrm report {module}` yet")
        return None
    try:
        report: Report = mod.build(ctx.con, ctx.ws, ctx.period, **kwargs)
    except McrmError as e:
        msg = str(e.message if hasattr(e, "message") else e)
        hint = getattr(e, "hint", None)
        section.no_data(f"no data: {msg}" + (f" ({hint})" if hint else ""))
        return None
    prefix = f"{what or module}: "
    for w in report.warnings:
        # a report may already name itself ("funnel: no event named ...")
        ctx.warnings.append(w if w.startswith(prefix) else prefix + w)
    section.notes.extend(report.notes)
    return report


def _first_total(recs: list[dict[str, Any]], columns: Sequence[str]) -> dict[str, Any]:
    """The total row of a table that may carry breakdown rows (group columns all null, or
    a group value of '(all)' / 'total')."""
    groups = [c for c in ("platform", "os", "country", "segment", "group") if c in columns]
    for r in recs:
        if all(r[g] in (None, "(all)", "all", "total", "(total)") for g in groups):
            return r
    return recs[0]


PERCENTISH = ("stickiness", "rate", "share", "conversion", "retention", "ctr", "roi")


def _percentish(column: str, rows: Rows) -> bool:
    return column in rows.percent_columns or any(p in column for p in PERCENTISH)


KPI_TILES = (
    "active_users",
    "mean_dau",
    "wau",
    "mau",
    "stickiness",
    "sessions",
    "revenue",
    "orders",
    "payers",
    "aov",
    "arpu",
    "arppu",
    "payer_share",
    "repeat_rate",
)
TILE_LABELS = {
    "mean_dau": "DAU (mean)",
    "active_users": "Active users",
    "repeat_rate": "Repeat rate",
}
KPI_TRENDS = (
    ("Active users", ("dau", "wau", "mau"), "lines"),
    ("Stickiness (mean DAU ÷ MAU)", ("stickiness",), "lines"),
    ("Sessions", ("sessions",), "bars"),
    ("Revenue", ("revenue",), "bars"),
    ("Orders and payers", ("orders", "payers"), "lines"),
    ("AOV, ARPU, ARPPU", ("aov", "arpu", "arppu"), "lines"),
)


def _tiles(summary: Rows) -> list[str]:
    recs = records(summary)
    if not recs:
        return []
    cols = summary.columns
    if "metric" in cols and "value" in cols:
        pairs = [(str(r["metric"]), r["value"]) for r in recs]
    else:
        total = _first_total(recs, cols)
        numeric = numeric_columns(recs, cols)
        chosen = [c for c in KPI_TILES if c in numeric] or numeric
        pairs = [(c, total[c]) for c in chosen]
    out = []
    for name, value in pairs:
        v = num(value) if isinstance(value, Decimal) else value
        if isinstance(v, float) and not _percentish(name, summary) and abs(v) >= 100:
            shown = f"{v:,.0f}"
        elif isinstance(v, int) and not isinstance(v, bool):
            shown = f"{v:,}"
        else:
            shown = fmt(v, _percentish(name, summary))
        out.append(
            f'<div class="tile"><div class="tile-label">{esc(TILE_LABELS.get(name, titled(name)))}'
            f'</div><div class="tile-value">{esc(shown)}</div></div>'
        )
    return out


def sec_kpi(ctx: _Ctx, s: Section) -> Section:
    rep = _report(ctx, "overview", s)
    if rep is None:
        return s
    tiles = _tiles(rep.tables.get("summary") or rep.table(None))
    trend = rep.tables.get("trend")
    if trend is not None:
        trecs = records(trend)
        x = pick(trend.columns, "date", "day", "week", "month", "period", "start")
        if x and trecs:
            xs = [label(r[x]) for r in trecs]
            numeric = numeric_columns(trecs, trend.columns)
            for title, metrics, kind in KPI_TRENDS:
                present = [m for m in metrics if m in numeric]
                if not present:
                    continue
                pct = _percentish(present[0], trend)
                data: list[dict[str, Any]] = [
                    {
                        "type": "bar" if kind == "bars" else "scatter",
                        "mode": "lines",
                        "x": xs,
                        "y": [num(r[m]) for r in trecs],
                        "name": pt(titled(m)),
                    }
                    for m in present
                ]
                for d in data:
                    if d["type"] == "bar":
                        del d["mode"]
                    else:
                        d["line"] = {"width": 2}
                s.figures.append(
                    figure(
                        data,
                        title,
                        showlegend=len(present) > 1,
                        height=240,
                        yaxis={"tickformat": ".0%" if pct else "~s", "rangemode": "tozero"},
                        margin={"l": 44, "r": 12, "t": 30 if len(present) > 1 else 8, "b": 32},
                    )
                )
    if not tiles and not s.figures:
        return s.no_data("no data: no activity in the period (import events: mcrm import events)")
    s.markup = f'<div class="tiles">{"".join(tiles)}</div>' if tiles else ""
    return s


def sec_acquisition(ctx: _Ctx, s: Section) -> Section:
    rep = _report(ctx, "acquisition", s)
    if rep is None:
        return s
    rows = rep.table(None)
    key = pick(rows.columns, "source", "media_source", "campaign")
    # the total row is a figure of its own, not a source to compare
    recs = [r for r in records(rows) if key is None or r[key] not in ("(all)", "total")]
    if not recs or key is None:
        return s.no_data(
            "no data: no installs in the period (import installs: mcrm import events)"
        )
    xs = [label(r[key]) for r in recs]

    # horizontal bars: a dozen source names stay readable on a phone
    height = max(240, 26 * len(recs) + 110)
    hbar: dict[str, Any] = {
        "height": height,
        "yaxis": {"type": "category", "automargin": True, "autorange": "reversed"},
    }

    def bars(cols: Sequence[str]) -> list[dict[str, Any]]:
        return [
            {
                "type": "bar",
                "orientation": "h",
                "y": xs,
                "x": [num(r[c]) for r in recs],
                "name": pt(titled(c)),
            }
            for c in cols
            # a column of zeros and nulls draws nothing worth a chart
            if c in rows.columns and any(num(r[c]) for r in recs)
        ]

    counts = bars(("installs", "first_purchases"))
    if counts:
        s.figures.append(
            figure(counts, f"Installs and first purchases by {key}", barmode="group", **hbar)
        )
    cur = ctx.ws.settings.base_currency
    cost = bars(("cost",))
    if cost:
        s.figures.append(figure(cost, f"Ad cost by {key} ({cur})", **hbar))
        cac = bars(("cac",))
        if cac:
            cac[0]["marker"] = {"color": PALETTE[3]}
            s.figures.append(
                figure(cac, f"CAC: cost per first purchase, by {key} ({cur})", **hbar)
            )
    else:
        s.notes.append(
            "no ad spend in the period: cost, CAC, ROAS and ROI need `mcrm import ad-spend`"
        )
    roas = bars(("roas_30", "roas_90"))
    if roas:
        which = ", ".join(t["name"].removeprefix("Roas ") + " days" for t in roas)
        for t in roas:
            t["name"] = t["name"].replace("Roas", "ROAS")
        s.figures.append(
            figure(roas, f"ROAS ({which}, mature installs) by {key}", barmode="group", **hbar)
        )
    if not s.figures:
        return s.no_data("no data: no installs, first purchases or ad spend in the period")
    return s


def sec_cohorts(ctx: _Ctx, s: Section) -> Section:
    rep = _report(ctx, "cohorts", s)
    if rep is None:
        return s
    rows = rep.tables.get("retention") or rep.table(None)
    recs = records(rows)
    c_col = pick(rows.columns, "cohort", "cohort_start", "cohort_week", "cohort_month")
    k_col = pick(rows.columns, "offset", "k", "period", "period_offset")
    v_col = pick(rows.columns, "retention", "rate", "recurring", "share")
    size_col = pick(rows.columns, "size", "cohort_size", "users")
    if not recs or not (c_col and k_col and v_col):
        return s.no_data("no data: no cohorts in the period")
    cohorts: list[Any] = []
    sizes: dict[Any, Any] = {}
    for r in recs:
        if r[c_col] not in cohorts:
            cohorts.append(r[c_col])
            if size_col:
                sizes[r[c_col]] = r[size_col]
    ks = sorted({int(r[k_col]) for r in recs if r[k_col] is not None})
    cell = {(r[c_col], int(r[k_col])): num(r[v_col]) for r in recs if r[k_col] is not None}
    z = [[cell.get((c, k)) for k in ks] for c in cohorts]
    text = [["" if v is None else f"{v * 100:.0f}%" for v in row] for row in z]
    later = [v for (_c, k), v in cell.items() if k > 0 and v is not None]
    zmax = max(later) if later and max(later) > 0 else 1.0
    ys = [
        label(c) + (f" (n={sizes[c]})" if size_col and sizes.get(c) is not None else "")
        for c in cohorts
    ]
    s.figures.append(
        figure(
            [
                {
                    "type": "heatmap",
                    "x": [str(k) for k in ks],
                    "y": ys,
                    "z": z,
                    "text": text,
                    "texttemplate": "%{text}",
                    "hoverongaps": False,
                    "colorscale": [[0, "#eff6ff"], [0.5, "#60a5fa"], [1, "#1e3a8a"]],
                    "zmin": 0,
                    # offset 0 is 100% by definition: scale to the later cells for contrast
                    "zmax": zmax,
                    "showscale": False,  # every cell is labelled; a phone needs the width
                    "hovertemplate": "cohort %{y}<br>period +%{x}: %{z:.1%}<extra></extra>",
                }
            ],
            "Retention by cohort (period offset)",
            height=max(260, 28 * len(cohorts) + 90),
            xaxis={"type": "category", "title": {"text": "periods since first activity"}},
            yaxis={"type": "category", "autorange": "reversed", "automargin": True},
        )
    )
    return s


def sec_funnel(ctx: _Ctx, s: Section) -> Section:
    steps = list(ctx.opts.funnel)
    within_text = ctx.opts.funnel_within or "1d"
    s.intro = (
        "Steps: "
        + " → ".join(steps)
        + (
            "; no conversion window"
            if within_text.strip().lower() == "none"
            else f"; every step within {within_text} of step 1"
        )
    )
    if not has_module("mcrm.reports.funnel"):
        return s.no_data("no data: this mcrm has no `mcrm report funnel` yet")
    from mcrm.reports.funnel import parse_within

    within = parse_within(ctx.opts.funnel_within)
    rep = _report(ctx, "funnel", s, steps=steps, within=within, by=None)
    if rep is None:
        return s
    rows = rep.table(None)
    recs = records(rows)
    step_col = pick(rows.columns, "event", "name", "step")
    n_col = pick(rows.columns, "users", "reached", "count", "n")
    conv_col = pick(rows.columns, "overall", "overall_conversion", "conversion")
    if step_col is None or n_col is None:
        return s.no_data("no data: the funnel report has no step counts")
    groups = [c for c in ("platform", "os", "country", "segment") if c in rows.columns]
    if groups:
        recs = [r for r in recs if all(r[g] is None for g in groups)] or recs
    if not recs or not any(num(r[n_col]) for r in recs):
        return s.no_data(
            f"no data: nobody did `{steps[0]}` in the period (pick other steps: --funnel a,b,c)"
        )
    names = [f"{i}. {label(r[step_col])}" for i, r in enumerate(recs, 1)]
    trace: dict[str, Any] = {
        "type": "funnel",
        "y": names,
        "x": [num(r[n_col]) for r in recs],
        "textinfo": "value+percent initial",
        "marker": {"color": PALETTE[0]},
        "hovertemplate": "%{y}: %{x} users, %{percentInitial} of step 1<extra></extra>",
    }
    s.figures.append(
        figure([trace], "Users reaching each step", yaxis={"automargin": True}, height=300)
    )
    cols = [
        c
        for c in (step_col, n_col, conv_col, "step_conversion", "drop_off", "median_seconds")
        if c and c in rows.columns
    ]
    percent = {conv_col, "step_conversion", "drop_off"}
    s.after = table_markup(
        [titled(c) if c != "median_seconds" else "Median time" for c in cols],
        [
            [_duration(r[c]) if c == "median_seconds" else fmt(r[c], c in percent) for c in cols]
            for r in recs
        ],
    )
    return s


def _duration(seconds: Any) -> str:
    v = num(seconds)
    if v is None:
        return "–"
    if v < 120:
        return f"{v:.0f} s"
    if v < 7200:
        return f"{v / 60:.1f} min"
    if v < 172800:
        return f"{v / 3600:.1f} h"
    return f"{v / 86400:.1f} d"


def sec_rfm(ctx: _Ctx, s: Section) -> Section:
    from mcrm.segments.engine import rfm_grid

    try:
        grid, scored, unscored, warnings = rfm_grid(ctx.ws, ctx.period.end_ts)
    except McrmError as e:
        return s.no_data(f"no data: {e}")
    ctx.warnings.extend(w if w.startswith("rfm") else f"rfm: {w}" for w in warnings)
    if scored == 0:
        return s.no_data("no data: no customer has a paid order in the RFM window")
    recs = records(grid)
    rs = sorted({int(r["r"]) for r in recs}, reverse=True)
    fs = sorted({int(r["f"]) for r in recs})
    cell = {(int(r["r"]), int(r["f"])): r for r in recs}
    z, text, seg = [], [], []
    for rv in rs:
        zr, tr, sr = [], [], []
        for fv in fs:
            c = cell.get((rv, fv))
            n = int(c["customers"]) if c else 0
            zr.append(n)
            sr.append(pt(c["segment"]) if c else "")
            # one word a line: the cells stay readable five to a phone's width
            words = pt(c["segment"]).replace("_", " ").split() if c else []
            tr.append("<br>".join([*words, str(n)]))
        z.append(zr)
        text.append(tr)
        seg.append(sr)
    s.intro = f"{scored} customers scored as of {json_value(ctx.period.end_ts)}" + (
        f"; {unscored} with no paid order in the window are unscored" if unscored else ""
    )
    s.figures.append(
        figure(
            [
                {
                    "type": "heatmap",
                    "x": [f"F{f}" for f in fs],
                    "y": [f"R{r}" for r in rs],
                    "z": z,
                    "text": text,
                    "customdata": seg,
                    "texttemplate": "%{text}",
                    "colorscale": [[0, "#f0fdf4"], [0.5, "#4ade80"], [1, "#166534"]],
                    "textfont": {"size": 10},
                    "showscale": False,
                    "hovertemplate": "%{y} %{x}: %{customdata}<br>%{z} customers<extra></extra>",
                }
            ],
            "RFM grid (recency × frequency)",
            height=420,
            # R5 (the most recent buyers) on top, F5 (the most frequent) on the right
            yaxis={"type": "category", "autorange": "reversed"},
            xaxis={"type": "category", "side": "bottom"},
        )
    )
    return s


LIFECYCLE_BUCKETS = (
    ("new", "#2563eb"),
    ("returning", "#16a34a"),
    ("resurrecting", "#f59e0b"),
    ("dormant", "#dc2626"),
)


def sec_lifecycle(ctx: _Ctx, s: Section) -> Section:
    rep = _report(ctx, "lifecycle", s)
    if rep is None:
        return s
    rows = rep.table(None)
    recs = records(rows)
    x = pick(rows.columns, "period", "interval", "start", "day", "week", "month", "date")
    if not recs or x is None or not all(b in rows.columns for b, _ in LIFECYCLE_BUCKETS):
        return s.no_data("no data: no activity in the period")
    # interval starts on a date axis: plotly picks readable ticks at any width
    start = pick(rows.columns, "start", "date", "day")
    xs = [label(r[start or x]) for r in recs]
    # (the lifecycle report's own notes say which interval is partial)
    data = []
    for b, colour in LIFECYCLE_BUCKETS:
        sign = -1.0 if b == "dormant" else 1.0
        data.append(
            {
                "type": "bar",
                "name": b,
                "x": xs,
                "y": [None if num(r[b]) is None else sign * abs(num(r[b]) or 0.0) for r in recs],
                "marker": {"color": colour},
            }
        )
    s.figures.append(
        figure(
            data,
            "Lifecycle per period (dormant below zero)",
            barmode="relative",
            xaxis={"type": "date" if start else "category", "automargin": True},
        )
    )
    return s


MAX_SEGMENT_LINES = 10


def sec_segments(ctx: _Ctx, s: Section) -> Section:
    rep = _report(ctx, "segments_report", s)
    if rep is None:
        return s
    rows = rep.tables.get("sizes") or rep.table(None)
    recs = records(rows)
    seg_col = pick(rows.columns, "segment", "name")
    x = pick(rows.columns, "as_of", "snapshot", "computed_at", "day", "date")
    n_col = pick(rows.columns, "size", "members")
    if not recs or not (seg_col and x and n_col):
        return s.no_data(
            "no data: no segment snapshot in the period (run `mcrm segments compute`)"
        )
    by: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        by.setdefault(str(r[seg_col]), []).append(r)
    # the largest segments (by their latest size), so a phone screen stays readable
    ranked = sorted(by, key=lambda k: (-(num(by[k][-1][n_col]) or 0.0), k))
    shown = ranked[:MAX_SEGMENT_LINES]
    if len(ranked) > len(shown):
        s.notes.append(
            f"the {len(shown)} largest of {len(ranked)} segments are drawn; "
            "`mcrm report segments` lists them all"
        )
    if len({str(r[x]) for r in recs}) < 2:
        # one snapshot: sizes as bars, and what to run for a trend
        latest = [(name, by[name][-1]) for name in shown]
        s.notes.append(
            "one snapshot so far: `mcrm segments compute` on other days (or with --as-of) "
            "draws the sizes over time"
        )
        s.figures.append(
            figure(
                [
                    {
                        "type": "bar",
                        "orientation": "h",
                        "y": [pt(name) for name, _ in latest],
                        "x": [num(r[n_col]) for _, r in latest],
                        "marker": {"color": PALETTE[0]},
                    }
                ],
                f"Segment sizes at {label(recs[-1][x])}",
                showlegend=False,
                height=max(240, 26 * len(latest) + 90),
                yaxis={"type": "category", "automargin": True, "autorange": "reversed"},
            )
        )
        return s
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": pt(name),
            "x": [label(r[x]) for r in by[name]],
            "y": [num(r[n_col]) for r in by[name]],
        }
        for name in shown
    ]
    s.figures.append(figure(data, "Segment sizes per snapshot", height=380))
    return s


def sec_messaging(ctx: _Ctx, s: Section) -> Section:
    rep = _report(ctx, "messaging", s)
    if rep is None:
        return s
    rows = rep.table(None)
    recs = [r for r in records(rows) if num(r.get("sent"))]
    if not recs:
        return s.no_data(
            "no data: no messages sent in the period (mcrm run sends them; provider history: "
            "mcrm import message-events --preset sendgrid|twilio|expo)"
        )
    recs.sort(key=lambda r: -(num(r.get("sent")) or 0))
    recs = recs[:12]

    def text(r: dict[str, Any]) -> str:
        """campaign · channel · provider as plain text (the table escapes it, once)."""
        return " · ".join(
            str(r[c]) for c in ("campaign", "channel", "provider") if c in r and r[c]
        )

    # plotly draws labels as its pseudo-HTML: escaped for it
    ys = [pt(text(r)) for r in recs]
    rates = [
        {
            "type": "bar",
            "orientation": "h",
            "y": ys,
            "x": [num(r.get(c)) for r in recs],
            "name": pt(titled(c).replace("Ctr", "CTR")),
        }
        for c in ("delivery_rate", "open_rate", "ctr", "conversion_rate")
        if c in rows.columns and any(num(r.get(c)) for r in recs)
    ]
    if rates:
        s.figures.append(
            figure(
                rates,
                "Delivery, open, click and conversion rates by campaign, channel and provider",
                barmode="group",
                height=max(260, 24 * len(recs) * len(rates) // 2 + 120),
                xaxis={"tickformat": ".0%", "rangemode": "tozero"},
                yaxis={"type": "category", "automargin": True, "autorange": "reversed"},
            )
        )
    cols = [
        c
        for c in ("sent", "delivered", "unique_opens", "unique_clicks", "conversions", "revenue")
        if c in rows.columns
    ]
    s.after = table_markup(
        ["campaign · channel · provider", *[titled(c) for c in cols]],
        [[text(r), *[fmt(r.get(c)) for c in cols]] for r in recs],
    )
    return s


def planned_campaigns(con: duckdb.DuckDBPyConnection, period: Period) -> list[str]:
    """Campaigns with a plan whose as-of instant falls in the period, by name."""
    rows = con.execute(
        "SELECT DISTINCT campaign FROM campaign_plans WHERE as_of >= ? AND as_of <= ? "
        "ORDER BY campaign",
        [period.start_ts, period.end_ts],
    ).fetchall()
    return [str(r[0]) for r in rows]


def _campaign_description(ctx: _Ctx, name: str) -> str | None:
    from mcrm.campaigns.engine import load

    try:
        c, _ = load(ctx.ws, name)
    except McrmError:
        return None
    return c.description


def sec_campaigns(ctx: _Ctx, s: Section) -> Section:
    names = (
        list(ctx.opts.campaigns)
        if ctx.opts.campaigns is not None
        else planned_campaigns(ctx.con, ctx.period)
    )
    if not names:
        return s.no_data(
            "no data: no campaign was planned in the period "
            "(run `mcrm campaigns plan NAME`, or pass --campaign NAME)"
        )
    if not has_module("mcrm.reports.campaign"):
        return s.no_data("no data: this mcrm has no `mcrm report campaign` yet")
    parts: list[str] = []
    # campaigns with nothing to compare yet: one list, each with its reason
    waiting: list[tuple[str, str | None, str]] = []
    for name in names:
        sub = Section("campaign", name)
        rep = _report(ctx, "campaign", sub, f"campaign {name}", name=name)
        desc = _campaign_description(ctx, name)
        head = f"<h3>{esc(name)}</h3>" + (f'<p class="desc">{esc(desc)}</p>' if desc else "")
        if rep is None:
            waiting.append((name, desc, (sub.nodata or "").removeprefix("no data: ")))
            continue
        rows = rep.tables.get("uplift") or rep.table(None)
        recs = [
            r for r in records(rows) if r.get("uplift") is not None or r.get("ci_low") is not None
        ]
        allrecs = records(rows)
        cols = [
            c
            for c in (
                "variant",
                "n",
                "conversions",
                "rate",
                "uplift",
                "ci_low",
                "ci_high",
                "verdict",
            )
            if c in rows.columns
        ]
        table = table_markup(
            [UPLIFT_HEADERS[c] for c in cols],
            [
                [fmt(r[c], c in ("rate", "uplift", "ci_low", "ci_high")) for c in cols]
                for r in allrecs
            ],
        )
        fig_idx = len(s.figures)
        if recs:
            ups = [num(r["uplift"]) for r in recs]
            lo = [num(r.get("ci_low")) for r in recs]
            hi = [num(r.get("ci_high")) for r in recs]
            colours = [
                {"uplift": "#16a34a", "negative": "#dc2626"}.get(str(r.get("verdict")), "#64748b")
                for r in recs
            ]
            s.figures.append(
                figure(
                    [
                        {
                            "type": "scatter",
                            "mode": "markers",
                            "y": [label(r["variant"]) for r in recs],
                            "x": ups,
                            "marker": {"size": 12, "color": colours},
                            "error_x": {
                                "type": "data",
                                "symmetric": False,
                                "array": [
                                    None if h is None or u is None else h - u
                                    for u, h in zip(ups, hi, strict=True)
                                ],
                                "arrayminus": [
                                    None if lw is None or u is None else u - lw
                                    for u, lw in zip(ups, lo, strict=True)
                                ],
                                "thickness": 2,
                                "width": 6,
                                "color": "#334155",
                            },
                            "customdata": [
                                [
                                    pt(r.get("verdict")),
                                    fmt(r.get("ci_low"), True),
                                    fmt(r.get("ci_high"), True),
                                ]
                                for r in recs
                            ],
                            "hovertemplate": "%{y}: %{x:.2%} [%{customdata[1]}, "
                            "%{customdata[2]}] %{customdata[0]}<extra></extra>",
                        }
                    ],
                    f"Uplift vs holdout, 95% CI: {name}",
                    showlegend=False,
                    height=max(200, 60 * len(recs) + 110),
                    xaxis={
                        "tickformat": ".1%",
                        "zeroline": True,
                        "zerolinewidth": 2,
                        "zerolinecolor": "#475569",
                    },
                    yaxis={"type": "category", "automargin": True},
                )
            )
            parts.append(head + chart_html(s.figures[fig_idx], fig_idx) + table)
        else:
            waiting.append(
                (
                    name,
                    desc,
                    "no holdout comparison yet (no holdout, or no recipient whose goal "
                    f"window has ended); `mcrm report campaign {name}` has the counts",
                )
            )
            continue
        for n in sub.notes:
            s.notes.append(f"{name}: {n}")
    if waiting:
        items = "".join(
            f"<li><b>{esc(n)}</b>"
            + (f' <span class="desc">({esc(d)})</span>' if d else "")
            + f": {esc(why)}</li>"
            for n, d, why in waiting
        )
        lead = "no data yet for " + ("this campaign" if len(waiting) == 1 else "these campaigns")
        parts.append(f'<div class="nodata">{esc(lead)}:<ul class="waiting">{items}</ul></div>')
    s.markup = "".join(parts)
    s.intro = "Per variant: conversion uplift against the holdout with its 95% interval."
    return s


def _quantile(sorted_values: list[float], q: float) -> float:
    """quantile_cont (linear interpolation), as DuckDB and analytics.md §9 use."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def sec_clv(ctx: _Ctx, s: Section) -> Section:
    if not has_module("mcrm.predict.run"):
        return s.no_data("no data: this mcrm has no `mcrm predict clv` yet")
    from mcrm.predict.run import predictions_sql, run_for
    from mcrm.segments.compile import ts_lit

    has_table = ctx.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'prediction_runs'"
    ).fetchall()[0][0]
    if not has_table:
        return s.no_data("no data: no CLV predictions yet: run `mcrm predict clv`")
    try:
        run_id, run_as_of = run_for(ctx.con, ctx.period.end_ts)
    except McrmError as e:
        return s.no_data(f"no data: {e}" + (f" ({e.hint})" if e.hint else ""))
    rows = ctx.con.execute(
        "SELECT CAST(q.clv AS DOUBLE), q.p_alive "
        f"FROM ({predictions_sql(ts_lit(ctx.period.end_ts))}) q ORDER BY 1, 2"
    ).fetchall()
    values = [float(r[0]) for r in rows if r[0] is not None]
    alive = [float(r[1]) for r in rows if r[1] is not None]
    if not values:
        return s.no_data(f"no data: prediction run {run_id} holds no customer")
    cur = ctx.ws.settings.base_currency
    n = len(values)
    p99 = _quantile(values, 0.99)
    shown = [v for v in values if v <= p99]
    s.intro = (
        f"Run {run_id} as of {json_value(run_as_of)}: {n} customers; median CLV "
        f"{_quantile(values, 0.5):,.2f} {cur}, 90th percentile {_quantile(values, 0.9):,.2f}, "
        f"total {sum(values):,.2f}"
    )
    if len(shown) < n:
        s.notes.append(
            f"the histogram stops at the 99th percentile ({p99:,.2f} {cur}); "
            f"{n - len(shown)} customer(s) above it are left out of the chart only"
        )
    s.figures.append(
        figure(
            [{"type": "histogram", "x": shown, "nbinsx": 40, "marker": {"color": PALETTE[4]}}],
            "CLV per customer",
            showlegend=False,
            xaxis={"title": {"text": f"CLV ({pt(cur)})"}},
            yaxis={"title": {"text": "customers"}},
            bargap=0.05,
        )
    )
    if alive:
        s.figures.append(
            figure(
                [
                    {
                        "type": "histogram",
                        "x": alive,
                        "xbins": {"start": 0, "end": 1.05, "size": 0.05},
                        "marker": {"color": PALETTE[5]},
                    }
                ],
                "Probability alive",
                showlegend=False,
                xaxis={"tickformat": ".0%", "range": [0, 1.05]},
                yaxis={"title": {"text": "customers"}},
                bargap=0.05,
                height=260,
            )
        )
    return s


SECTIONS: tuple[tuple[str, str, SectionFn], ...] = (
    ("kpi", "Key figures", sec_kpi),
    ("acquisition", "Acquisition by source", sec_acquisition),
    ("cohorts", "Cohort retention", sec_cohorts),
    ("funnel", "Funnel", sec_funnel),
    ("rfm", "RFM grid", sec_rfm),
    ("lifecycle", "Lifecycle", sec_lifecycle),
    ("clv", "CLV distribution", sec_clv),
    ("segments", "Segment sizes over time", sec_segments),
    ("messaging", "Messaging", sec_messaging),
    ("campaigns", "Campaign uplift", sec_campaigns),
)
WIDE = frozenset({"kpi", "acquisition", "cohorts", "segments", "messaging", "campaigns"})
"""Sections that span both columns on a wide screen (the others pair up)."""


# ------------------------------------------------------------------------------------------------
# the page


def json_for_script(value: Any) -> str:
    """JSON that is safe inside `<script type="application/json">`: no `<`, `>` or `&`
    (so no `</script>` or `<!--`), and the line separators JavaScript once choked on."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'"
)

CSS = """
:root{--bg:#f8fafc;--card:#fff;--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--accent:#2563eb}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);
 font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{padding:20px 16px 8px;max-width:1280px;margin:0 auto}
header h1{margin:0 0 4px;font-size:1.5rem}
header p{margin:0;color:var(--muted)}
nav{max-width:1280px;margin:0 auto;padding:4px 16px 8px;display:flex;flex-wrap:wrap;gap:6px}
nav a{color:var(--accent);text-decoration:none;font-size:.85rem;padding:3px 10px;
 border:1px solid var(--line);border-radius:999px;background:var(--card)}
main{max-width:1280px;margin:0 auto;padding:8px 12px 32px;display:grid;gap:16px;
 grid-template-columns:minmax(0,1fr)}
@media (min-width:900px){main{grid-template-columns:repeat(2,minmax(0,1fr))}
 section.wide{grid-column:1/-1}}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;
 padding:14px 14px 10px;min-width:0}
section h2{margin:0 0 4px;font-size:1.1rem}
section h3{margin:12px 0 2px;font-size:1rem;overflow-wrap:anywhere}
.intro,.desc{margin:0 0 6px;color:var(--muted);font-size:.9rem;overflow-wrap:anywhere}
figure.plot{margin:0;min-width:0}
figcaption{font-weight:600;font-size:.9rem;margin:6px 0 2px;overflow-wrap:anywhere}
.chart{width:100%;min-height:200px}
.charts{display:grid;gap:8px;grid-template-columns:repeat(auto-fill,minmax(260px,1fr))}
.tiles{display:grid;gap:8px;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));
 margin:8px 0 12px}
.tile{border:1px solid var(--line);border-radius:10px;padding:8px 10px;background:var(--bg)}
.tile-label{color:var(--muted);font-size:.78rem}
.tile-value{font-size:1.25rem;font-weight:600;overflow-wrap:anywhere}
.nodata{padding:18px;border:1px dashed var(--line);border-radius:10px;color:var(--muted);
 background:var(--bg);overflow-wrap:anywhere}
.notes{margin:8px 0 0;padding-left:18px;color:var(--muted);font-size:.82rem;
 overflow-wrap:anywhere}
.table-wrap{overflow-x:auto;max-width:100%}
ul.waiting{margin:6px 0 0;padding-left:18px}
ul.waiting li{margin:2px 0}
table{border-collapse:collapse;font-size:.85rem;margin:6px 0;white-space:nowrap}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
caption{text-align:left;color:var(--muted)}
#mcrm-errors{display:none}
#mcrm-errors.has-errors{display:block;max-width:1280px;margin:8px auto;padding:8px 16px;
 color:#b91c1c;white-space:pre-wrap}
footer{max-width:1280px;margin:0 auto;padding:0 16px 24px;color:var(--muted);font-size:.8rem}
"""

# Runs before anything else: every script error, rejected promise and CSP violation lands in
# #mcrm-errors (visible, and readable by a headless browser test).
ERRORS_JS = """
(function(){
  var errs=[];window.__mcrmErrors=errs;
  function add(msg){errs.push(String(msg));var el=document.getElementById('mcrm-errors');
    if(el){var li=document.createElement('li');li.textContent=String(msg);el.appendChild(li);
    el.className='has-errors';el.setAttribute('data-count',String(errs.length));}}
  window.__mcrmAddError=add;
  window.addEventListener('error',function(e){add('error: '+(e.message||e.type)+
    (e.filename?' ('+e.lineno+':'+e.colno+')':''));});
  window.addEventListener('unhandledrejection',function(e){add('rejection: '+
    (e.reason&&e.reason.message?e.reason.message:String(e.reason)));});
  document.addEventListener('securitypolicyviolation',function(e){
    add('blocked by the page policy: '+e.violatedDirective+' '+e.blockedURI);});
})();
"""

RENDER_JS = """
(function(){
  var add=window.__mcrmAddError;
  var figs;
  try{figs=JSON.parse(document.getElementById('mcrm-data').textContent).figures;}
  catch(e){add('data: '+e.message);return;}
  if(typeof Plotly==='undefined'){add('plotly.js did not load');return;}
  var config={responsive:true,displaylogo:false,displayModeBar:false};
  var jobs=[];
  document.querySelectorAll('div.chart[data-fig]').forEach(function(div){
    var sec=div.closest('section');var fig=figs[sec.id][Number(div.getAttribute('data-fig'))];
    if(!fig){add('no figure for '+sec.id+' '+div.getAttribute('data-fig'));return;}
    try{jobs.push(Plotly.newPlot(div,fig.data,fig.layout,config).catch(function(e){
      add(sec.id+': '+e.message);}));}
    catch(e){add(sec.id+': '+e.message);}
  });
  Promise.all(jobs).then(function(){
    var b=document.body;
    // for a headless check: how much was drawn, and whether anything is wider than the window
    b.setAttribute('data-scroll-width',String(document.documentElement.scrollWidth));
    b.setAttribute('data-window-width',String(window.innerWidth));
    b.setAttribute('data-rendered',
      String(document.querySelectorAll('div.chart.js-plotly-plot').length));
  });
})();
"""


def chart_html(fig: dict[str, Any], index: int) -> str:
    """A chart's place: its caption and the div plotly draws in (figure `index` of the
    section's figures in the page data)."""
    return (
        f'<figure class="plot"><figcaption>{esc(fig.get("title", ""))}</figcaption>'
        f'<div class="chart" data-fig="{index}"></div></figure>'
    )


def _section_html(s: Section) -> str:
    wide = " wide" if s.key in WIDE else ""
    parts = [f'<section id="{esc(s.key)}" class="card{wide}" data-section="{esc(s.key)}">']
    parts.append(f"<h2>{esc(s.title)}</h2>")
    if s.intro:
        parts.append(f'<p class="intro">{esc(s.intro)}</p>')
    if s.nodata is not None:
        parts.append(f'<div class="nodata">{esc(s.nodata)}</div>')
    else:
        parts.append(s.markup)
        # figures the markup does not place itself are drawn after it
        placed = s.markup.count('class="chart" data-fig=')
        rest = range(placed, len(s.figures))
        if rest:
            grid = " charts" if s.key in ("kpi", "acquisition", "clv") else ""
            parts.append(
                f'<div class="figs{grid}">'
                + "".join(chart_html(s.figures[i], i) for i in rest)
                + "</div>"
            )
        parts.append(s.after)
    if s.notes:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in s.notes) + "</ul>"
        )
    parts.append("</section>")
    return "".join(parts)


def page(sections: list[Section], period: Period, opts: HtmlOptions, plotly_js: str) -> str:
    p = period
    subtitle = (
        f"{p.start.isoformat()} – {p.end.isoformat()} ({p.zone}), as of "
        f"{json_value(p.as_of)}" + (" — the last day is still in progress" if p.partial else "")
    )
    data = {"figures": {s.key: s.figures for s in sections if s.nodata is None}}
    nav = "".join(f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(_section_html(s) for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(opts.title)}: {esc(p.start.isoformat())} – {esc(p.end.isoformat())}</title>"
        f"<style>{CSS}</style><script>{ERRORS_JS}</script></head>\n<body>"
        f"<header><h1>{esc(opts.title)}</h1><p>{esc(subtitle)}</p></header>"
        f'<nav aria-label="sections">{nav}</nav>'
        '<ul id="mcrm-errors" data-count="0"></ul>'
        f"<main>{body}</main>"
        "<footer>Made by mcrm report html. Metric definitions: docs/reports.md. "
        "The page needs no network.</footer>\n"
        f'<script type="application/json" id="mcrm-data">{json_for_script(data)}</script>\n'
        f"<script>{plotly_js}</script>\n<script>{RENDER_JS}</script>\n"
        "</body></html>\n"
    )


def build_html(
    con: duckdb.DuckDBPyConnection, ws: Workspace, period: Period, opts: HtmlOptions
) -> HtmlResult:
    """Every section, then the page (plotly.js inlined)."""
    import plotly.offline  # type: ignore[import-untyped]

    ctx = _Ctx(con, ws, period, opts)
    sections = [fn(ctx, Section(key, title)) for key, title, fn in SECTIONS]
    text = page(sections, period, opts, plotly.offline.get_plotlyjs())
    return HtmlResult(text, sections, ctx.warnings)


def write_html(ws: Workspace, period: Period, out: Path, opts: HtmlOptions) -> HtmlResult:
    """Build the page from the workspace database and write it to `out` (UTF-8)."""
    from mcrm.db import open_db

    if not opts.funnel or any(not s.strip() for s in opts.funnel):
        raise UsageError("--funnel needs event names separated by commas, e.g. view,cart,buy")
    if opts.campaigns is not None:
        from mcrm.campaigns.engine import load

        for name in opts.campaigns:
            load(ws, name)  # an unknown --campaign is an error, not an empty panel
    if has_module("mcrm.reports.funnel"):
        from mcrm.reports.funnel import parse_within

        parse_within(opts.funnel_within)  # a bad --within fails before any work
    try:
        # before the build: a folder that cannot be made fails in a moment, not after it
        made = [p for p in out.parents if not p.exists()]  # deepest first
        out.parent.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot write {out}: {os_reason(e, out)}") from None
    try:
        with open_db(ws) as con:
            result = build_html(con, ws, period, opts)
    except BaseException:
        for p in made:  # a failed build leaves no empty folders behind
            try:
                p.rmdir()
            except OSError:
                break
        raise
    try:
        out.write_text(result.text, encoding="utf-8")
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot write {out}: {os_reason(e, out)}") from None
    return result
