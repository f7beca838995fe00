"""Loading and validating every campaign of a workspace (`campaigns/*.yaml`).

`validate` is what CI runs: it parses every campaign file, checks that the segments it names
exist, that every template file exists (for each locale variant found) and compiles, that
marketing email has an unsubscribe URL configured, and collects every problem at once.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcrm.campaigns.model import (
    INLINE_PARTS,
    Campaign,
    Delivery,
    load_campaign_file,
    load_delivery,
)
from mcrm.errors import McrmError, UsageError, Where, did_you_mean
from mcrm.output import Rows
from mcrm.yamlio import Problems

if TYPE_CHECKING:
    from mcrm.config import Workspace

CAMPAIGNS_DIR = "campaigns"


@dataclass(frozen=True)
class Loaded:
    campaigns: dict[str, Campaign]
    delivery: Delivery


def campaign_files(root: Path) -> list[Path]:
    d = root / CAMPAIGNS_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("*.yaml") if p.is_file()) + sorted(
        p for p in d.glob("*.yml") if p.is_file()
    )


def load_all(ws: Workspace, probs: Problems, names: list[str] | None = None) -> Loaded:
    from mcrm.segments.model import load_segments

    seg = load_segments(ws.root, probs)
    delivery = load_delivery(ws.settings.delivery, ws.root, probs)
    files = campaign_files(ws.root)
    stems = [p.stem for p in files]
    if names:
        for n in names:
            if n not in stems:
                raise UsageError(
                    f"unknown campaign '{n}'",
                    hint=did_you_mean(n, stems) or f"campaigns: {', '.join(stems) or 'none'}",
                )
        files = [p for p in files if p.stem in names]
    out: dict[str, Campaign] = {}
    for p in files:
        c = load_campaign_file(p, f"{CAMPAIGNS_DIR}/{p.name}", seg, delivery, probs)
        if c is not None:
            out[c.name] = c
    return Loaded(out, delivery)


def load(ws: Workspace, name: str) -> tuple[Campaign, Delivery]:
    """One campaign, stopping at the first problem (for every command but validate)."""
    probs = Problems()
    loaded = load_all(ws, probs, [name])
    probs.raise_first()
    return loaded.campaigns[name], loaded.delivery


def check_templates(ws: Workspace, c: Campaign, probs: Problems) -> None:
    """Every template file of a campaign (and each of its locale variants) exists and
    compiles, includes and filters too (`Renderer.check`); marketing email needs a
    configured unsubscribe URL."""
    from mcrm.campaigns.render import Renderer, split_suffix

    base = ws.root / CAMPAIGNS_DIR
    renderer = Renderer(base)
    before = len(probs.errors)
    tags: set[str] = set()
    for path in c.template_paths():
        if not (base / path).is_file():
            probs.error(
                f"template file not found: {CAMPAIGNS_DIR}/{path}",
                where=Where(c.file, None, "templates"),
            )
            continue
        stem = split_suffix(path.rsplit("/", 1)[-1])[0]
        for variant in renderer.locale_variants(path):
            probs.errors.extend(renderer.check(variant))
            if variant != path:
                tags.add(split_suffix(variant.rsplit("/", 1)[-1])[0][len(stem) + 1 :])
    if len(probs.errors) == before:
        _render_specimen(ws, c, renderer, sorted(tags), probs)
        _check_locale_sets(c, renderer, probs)
    if c.marketing and "email" in c.channels and "{token}" not in c.delivery.unsubscribe.url:
        probs.error(
            "marketing email needs delivery.unsubscribe.url with {token} in mcrm.yaml",
            where=Where(c.file, None, "channels"),
            hint="RFC 8058 one-click unsubscribe: List-Unsubscribe needs an https URL",
        )


def _check_locale_sets(c: Campaign, renderer: Any, probs: Problems) -> None:
    """Warn when a channel's parts are translated unevenly: a locale with a subject file but
    no body file of its own gets a message in two languages (each part falls back alone)."""
    from mcrm.campaigns.render import split_suffix

    for v in c.variants:
        for ch in c.channels:
            files = {p: f for p, f in v.templates.get(ch, {}).items() if p not in INLINE_PARTS}
            if len(files) < 2:
                continue
            tags: dict[str, set[str]] = {}
            for part, path in files.items():
                stem = split_suffix(path.rsplit("/", 1)[-1])[0]
                tags[part] = {
                    split_suffix(x.rsplit("/", 1)[-1])[0][len(stem) + 1 :].lower()
                    for x in renderer.locale_variants(path)
                    if x != path
                }
            for tag in sorted(set().union(*tags.values())):
                have = [p for p in files if tag in tags[p]]
                missing = [p for p in files if tag not in tags[p]]
                if missing:
                    label = f" (variant {v.name})" if len(c.variants) > 1 else ""
                    probs.warn(
                        f"{c.name}{label}: {ch} has a '{tag}' {', '.join(have)} but no '{tag}' "
                        f"{', '.join(missing)}: a '{tag}' reader gets a message in two languages",
                        where=Where(c.file, None, "templates"),
                        hint=f"add the '{tag}' file(s) for {', '.join(missing)}, or remove "
                        f"the '{tag}' {', '.join(have)}",
                    )


def _render_specimen(
    ws: Workspace, c: Campaign, renderer: Any, tags: list[str], probs: Problems
) -> None:
    """Render every channel and variant of `c` in each locale it has files for, with the
    specimen context (context.specimen): an unknown variable or attribute, a bad filter
    argument, a non-JSON in-app body fail here with their file:line, before any user does."""
    from mcrm.campaigns.context import specimen
    from mcrm.campaigns.render import TemplateError, TemplateSkip

    seen: set[str] = set()
    for tag in [renderer.default_locale, *tags]:
        ctx = specimen(c, ws.settings.base_currency, tag, c.delivery.unsubscribe.url)
        for v in c.variants:
            for ch in c.channels:
                try:
                    renderer.render_message(ch, v.templates.get(ch, {}), ctx, tag)
                except TemplateSkip:
                    continue
                except TemplateError as e:
                    key = e.render()
                    if key not in seen:
                        seen.add(key)
                        e.message += f" (rendering a specimen {tag} user, {ch}, variant {v.name})"
                        probs.errors.append(e)


def validate(
    ws: Workspace, names: list[str] | None = None, warnings: list[McrmError] | None = None
) -> tuple[list[McrmError], int]:
    """Every problem in campaigns/ (and the segments and delivery policy they use); warnings
    (which do not fail validation) are appended to `warnings` when given."""
    probs = Problems()
    loaded = load_all(ws, probs, names)
    for c in loaded.campaigns.values():
        check_templates(ws, c, probs)
    if not campaign_files(ws.root):
        probs.error(f"no campaign files in {CAMPAIGNS_DIR}/", hint="add campaigns/NAME.yaml")
    if warnings is not None:
        warnings.extend(probs.warnings)
    return probs.errors, len(loaded.campaigns)


def list_campaigns(ws: Workspace) -> Rows:
    probs = Problems()
    loaded = load_all(ws, probs)
    probs.raise_first()
    rows = []
    for c in loaded.campaigns.values():
        if c.schedule is not None:
            when = c.schedule.cron or (c.schedule.at.isoformat() if c.schedule.at else "")
            when += f" ({c.schedule.timezone})"
        elif c.trigger is not None:
            when = f"on {c.trigger.event} +{c.trigger.delay}"
        else:
            when = "manual"
        rows.append(
            [
                c.name,
                c.description,
                c.segment or ("inline where" if c.where is not None else "trigger"),
                ",".join(c.channels),
                c.purpose,
                when,
                ",".join(v.name for v in c.variants),
                f"{c.holdout:.0%}",
            ]
        )
    cols = [
        "campaign",
        "description",
        "audience",
        "channels",
        "purpose",
        "schedule",
        "variants",
        "holdout",
    ]
    return Rows(cols, rows)


@dataclass(frozen=True)
class PlanOutcome:
    plan_id: str
    campaign: str
    occurrence: str
    as_of: dt.datetime
    file: str
    summary: Rows
    audience: int
    planned: int


PLAN_COLUMNS = [
    "plan_id",
    "user_id",
    "occurrence",
    "status",
    "channel",
    "variant",
    "send_at",
    "reason",
    "detail",
    "locale",
    "zone",
    "idempotency_key",
    "message_hash",
    "sms_segments",
]


def plan_campaign(
    ws: Workspace,
    name: str,
    as_of: dt.datetime | None,
    out: Path | None = None,
    *,
    render: bool = True,
    occurrence_at: dt.datetime | None = None,
) -> PlanOutcome:
    """Plan a campaign as of T and store it: the `campaign_plans` / `plan_rows` tables and a
    JSON-lines file (`.mcrm/plans/<campaign>/<plan_id>.jsonl`, or `out`)."""
    from mcrm.campaigns.plan import build, summary
    from mcrm.db import open_db
    from mcrm.segments.engine import _now

    c, delivery = load(ws, name)
    when = as_of or _now()
    with open_db(ws, write=True) as con:
        res = build(con, ws, c, delivery, when, occurrence_at=occurrence_at)
        _set_keys(con, c.name)
        path = out or ws.state_dir / "plans" / c.name / f"{res.plan_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        cols = ", ".join(PLAN_COLUMNS)
        con.execute("BEGIN")
        try:
            con.execute("DELETE FROM plan_rows WHERE plan_id = ?", [res.plan_id])
            con.execute("DELETE FROM campaign_plans WHERE plan_id = ?", [res.plan_id])
            con.execute("DELETE FROM coupon_assignments WHERE plan_id = ?", [res.plan_id])
            if c.coupon is not None:
                _assign_coupons(ws, con, c, delivery, res.plan_id)
            if render:
                render_plan(ws, con, c, delivery, res.as_of, res.plan_id)
            planned = int(
                con.execute(
                    "SELECT count(*) FROM plan_rows_tmp WHERE status = 'planned'"
                ).fetchall()[0][0]
            )
            con.execute(
                "INSERT INTO campaign_plans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    res.plan_id,
                    c.name,
                    res.occurrence,
                    res.as_of,
                    _now(),
                    None,
                    ws.rel(path),
                    res.audience,
                    planned,
                ],
            )
            con.execute(f"INSERT INTO plan_rows ({cols}) SELECT {cols} FROM plan_rows_tmp")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        rows = summary(con, res.rows_table, delivery)
        _write_plan_file(con, path, cols)
    return PlanOutcome(
        res.plan_id,
        c.name,
        res.occurrence,
        res.as_of,
        ws.rel(path),
        Rows(["measure", "value", "users"], rows),
        res.audience,
        planned,
    )


def _set_keys(con: Any, campaign: str) -> None:
    """Idempotency keys of the planned rows, from each row's occurrence: uuid5
    (reference/providers.md §1.5) computed in SQL (sha1 of the namespace bytes and the JSON
    name, then the version and variant bits), so 1M keys take a fraction of a second. The JSON
    name is spelled as `json.dumps` spells it; a user id or occurrence with other characters
    than letters, digits and `_.:@+-` gets its key from Python instead. Tests check both paths
    against `idempotency_key`."""
    import pyarrow as pa

    from mcrm.campaigns.plan import MCRM_NS, idempotency_key

    safe = "^[A-Za-z0-9_.:@+-]*$"  # text JSON never escapes; others go through Python
    prefix = json.dumps([campaign])[:-1] + ', "'
    name = f"'{prefix}' || occurrence || '\", \"' || user_id || '\", \"' || channel || '\"]'"
    h = f"sha1(unhex('{MCRM_NS.bytes.hex()}') || encode({name}))"
    variant = "substr('89ab', (strpos('0123456789abcdef', substr(h, 17, 1)) - 1) % 4 + 1, 1)"
    key = (
        "substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-5' || substr(h, 14, 3) || '-' || "
        f"{variant} || substr(h, 18, 3) || '-' || substr(h, 21, 12)"
    )
    con.execute(
        f"UPDATE plan_rows_tmp SET idempotency_key = (SELECT {key} FROM (SELECT {h} AS h)) "
        f"WHERE status = 'planned' AND regexp_full_match(user_id, '{safe}') "
        f"AND regexp_full_match(occurrence, '{safe}')"
    )
    rows = con.execute(
        "SELECT user_id, occurrence, channel FROM plan_rows_tmp WHERE status = 'planned' "
        "AND idempotency_key IS NULL"
    ).fetchall()
    if not rows:
        return
    keys = pa.table(
        {
            "user_id": [u for u, _, _ in rows],
            "k": [idempotency_key(campaign, o, u, ch) for u, o, ch in rows],
        }
    )
    con.register("plan_keys", keys)
    con.execute(
        "UPDATE plan_rows_tmp SET idempotency_key = k FROM plan_keys "
        "WHERE plan_keys.user_id = plan_rows_tmp.user_id"
    )
    con.unregister("plan_keys")


def render_plan(
    ws: Workspace, con: Any, c: Campaign, delivery: Delivery, as_of: dt.datetime, plan_id: str
) -> None:
    """Render every planned message of `plan_rows_tmp` for its user, channel, variant and
    send time: fills `message_hash` and `sms_segments`, turns a template's `{% skip %}` into
    the `template_skip` suppression (keeping the row's variant and would-be send time, for
    intent to treat; releasing a coupon assigned by this plan), and raises the
    first template error (file:line, user) after counting how many users fail."""
    import pyarrow as pa

    from mcrm.campaigns.context import Contexts, Target, render_targets
    from mcrm.campaigns.render import Renderer, TemplateError

    rows = con.execute(
        "SELECT user_id, channel, variant, send_at FROM plan_rows_tmp "
        "WHERE status = 'planned' ORDER BY user_id"
    ).fetchall()
    if not rows:
        return
    renderer = Renderer(ws.root / CAMPAIGNS_DIR)
    contexts = Contexts(con, ws, c, delivery, as_of, renderer)
    uids: list[str] = []
    hashes: list[str | None] = []
    segments: list[int | None] = []
    skips: list[str | None] = []
    first: TemplateError | None = None
    failed = 0
    for o in render_targets(contexts, [Target(*r) for r in rows]):
        if o.error is not None:  # one user's message; go on counting the others
            failed += 1
            first = first or o.error
            continue
        uids.append(o.target.user_id)
        hashes.append(o.message.content_hash if o.message else None)
        segments.append(o.message.sms.segments if o.message and o.message.sms else None)
        skips.append(o.skip)
    if first is not None:
        if failed > 1:
            first.message += f"; {failed - 1} more user(s) fail too"
        raise first
    con.register(
        "plan_rendered",
        pa.table(
            {
                "user_id": pa.array(uids, pa.string()),
                "message_hash": pa.array(hashes, pa.string()),
                "sms_segments": pa.array(segments, pa.int32()),
                "skip": pa.array(skips, pa.string()),
            }
        ),
    )
    try:
        con.execute(
            "UPDATE plan_rows_tmp SET message_hash = r.message_hash, "
            "sms_segments = r.sms_segments FROM plan_rendered r "
            "WHERE r.user_id = plan_rows_tmp.user_id AND r.skip IS NULL"
        )
        con.execute(
            "UPDATE plan_rows_tmp SET status = 'suppressed', reason = 'template_skip', "
            "detail = r.skip, deferred = FALSE, "
            "idempotency_key = NULL FROM plan_rendered r "
            "WHERE r.user_id = plan_rows_tmp.user_id AND r.skip IS NOT NULL"
        )
        con.execute(
            "DELETE FROM coupon_assignments WHERE campaign = ? AND plan_id = ? AND user_id IN "
            "(SELECT user_id FROM plan_rendered WHERE skip IS NOT NULL)",
            [c.name, plan_id],
        )
    finally:
        con.unregister("plan_rendered")


def _assign_coupons(
    ws: Workspace, con: Any, c: Campaign, delivery: Delivery, plan_id: str
) -> None:
    """Planned users get their coupon now (held-out and suppressed users get none), so the
    assignment is recorded with the plan and a re-plan keeps each user's code."""
    from mcrm.campaigns.coupons import assign, load_pool
    from mcrm.segments.engine import _now

    assert c.coupon is not None
    pool = None
    if c.coupon.pool is not None:
        pool = load_pool(ws.root / c.coupon.pool, c.coupon.pool, c.coupon.prefix)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE plan_coupon_users AS "
        "SELECT user_id FROM plan_rows_tmp WHERE status = 'planned'"
    )
    secret = delivery.unsubscribe.secret.encode()
    assign(con, c.name, c.coupon.prefix, pool, "plan_coupon_users", plan_id, _now(), secret)


def _write_plan_file(con: Any, path: Path, cols: str) -> None:
    """JSON lines, one per audience member, sorted by user id; timestamps ISO-8601 UTC to the
    second (`2026-11-16T09:00:00Z`). Written by DuckDB (a Python loop over 1M rows would be
    most of the plan's time), to a temporary file renamed into place."""
    tmp = path.with_suffix(".tmp")
    select = ", ".join(
        "strftime(send_at, '%Y-%m-%dT%H:%M:%SZ') AS send_at" if c == "send_at" else c
        for c in cols.split(", ")
    )
    target = str(tmp).replace("'", "''")
    con.execute(
        f"COPY (SELECT {select} FROM plan_rows_tmp ORDER BY user_id) TO '{target}' (FORMAT json)"
    )
    tmp.replace(path)


def why(ws: Workspace, name: str, uid: str, as_of: dt.datetime | None) -> dict[str, Any]:
    """The plan row of one user, with the reason in words (nothing is stored)."""
    from mcrm.campaigns.plan import build, explain_reason, user_row
    from mcrm.db import open_db
    from mcrm.people import find_user
    from mcrm.segments.engine import _now

    c, delivery = load(ws, name)
    when = as_of or _now()
    with open_db(ws) as con:
        user_id = find_user(con, uid)
        res = build(con, ws, c, delivery, when, only_user=user_id)
        if res.audience == 0:
            aud = (
                f"segment {c.segment}"
                if c.segment
                else (f"trigger {c.trigger.event}" if c.trigger else "the campaign's where:")
            )
            return {
                "campaign": c.name,
                "user_id": user_id,
                "occurrence": res.occurrence,
                "status": "not_in_audience",
                "reason": "not_in_audience",
                "explanation": f"{user_id} is not in the audience ({aud}) as of "
                f"{when:%Y-%m-%d %H:%M}Z",
            }
        row = user_row(con, res.rows_table, user_id)
        if row["status"] == "planned":  # the template may still skip them
            from mcrm.campaigns.context import Contexts, Target, render_targets
            from mcrm.campaigns.render import Renderer

            contexts = Contexts(con, ws, c, delivery, when, Renderer(ws.root / CAMPAIGNS_DIR))
            t = Target(user_id, row["channel"], row["variant"], row["send_at"])
            for o in render_targets(contexts, [t]):
                if o.error is not None:
                    raise o.error
                if o.skip is not None:
                    row.update(status="suppressed", reason="template_skip", detail=o.skip)
                    row.update(deferred=False)  # variant and send time stay (as stored)
    words = explain_reason(row["reason"], row["detail"])
    if row["status"] == "planned":
        words = (
            f"will receive it by {row['channel']} (variant {row['variant']}) at "
            f"{row['send_at']:%Y-%m-%d %H:%M}Z"
            + (" (deferred out of quiet hours)" if row["deferred"] else "")
        )
    return {
        "campaign": c.name,
        "user_id": user_id,
        "occurrence": res.occurrence,
        "status": row["status"],
        "channel": row["channel"],
        "variant": row["variant"],
        "send_at": row["send_at"],
        "reason": row["reason"],
        "explanation": f"{user_id} {words}",
    }
