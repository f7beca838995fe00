"""`mcrm campaigns preview`: messages rendered exactly as they would be sent, stored nowhere.

Who is shown:

- `--user ID` — that user (any id, e-mail, phone or device id `users show` accepts), whatever
  their plan status: a held-out or suppressed user is rendered too, with the status and reason
  beside the message, so a marketer can preview their own test account. A user outside the
  audience is rendered with a note; their channel is the first of the campaign's channels,
  their variant the one the hash gives them.
- `--sample N` (default 3) — N planned users, in a stable pseudo-random order (md5 of the user
  id, so the same users come back run after run); with `--locale L`, users whose locale has
  L's language first. When nobody is planned, audience members of any status.

`--channel C` renders that channel instead of the planned one, `--variant V` that variant,
`--locale L` that locale (template file and formatting) instead of the user's. The user's
e-mail address and phone number are masked (in the `to:` line and inside the message) unless
`--show-pii` (SPEC §9); the content hash is the real message's. Coupons show the
user's assigned code, or the one they would get (nothing is recorded); `now` is the planned send
time in the user's zone (as of T without one).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcrm.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from mcrm.campaigns.render import RenderedMessage
    from mcrm.config import Workspace

DEFAULT_SAMPLE = 3


@dataclass
class Preview:
    user_id: str
    status: str  # planned | holdout | suppressed | not_in_audience
    reason: str | None
    explanation: str
    channel: str
    variant: str
    locale: str
    send_at: dt.datetime | None
    message: RenderedMessage | None
    skip: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    to: str | None = None  # the e-mail address or phone number (masked unless show_pii)


def _option(value: str | None, allowed: list[str], what: str) -> None:
    if value is not None and value not in allowed:
        raise UsageError(
            f"{what} '{value}' is not one of this campaign's: {', '.join(allowed)}",
            hint=did_you_mean(value, allowed),
        )


def preview(
    ws: Workspace,
    name: str,
    *,
    as_of: dt.datetime | None = None,
    user: str | None = None,
    sample: int | None = None,
    channel: str | None = None,
    variant: str | None = None,
    locale: str | None = None,
    show_pii: bool = False,
) -> list[Preview]:
    from mcrm.campaigns import i18n
    from mcrm.campaigns.context import Contexts, Target, render_targets
    from mcrm.campaigns.engine import CAMPAIGNS_DIR, load
    from mcrm.campaigns.plan import build, explain_reason, variant_for
    from mcrm.campaigns.render import Renderer, email_headers, has_visible_unsubscribe_link
    from mcrm.db import open_db
    from mcrm.people import find_user
    from mcrm.segments.engine import _now

    if user is not None and sample is not None:
        raise UsageError("give --user or --sample, not both")
    n = DEFAULT_SAMPLE if sample is None else sample
    if n < 1 or n > 1000:
        raise UsageError(f"--sample must be between 1 and 1000, found {n}")
    c, delivery = load(ws, name)
    _option(channel, list(c.channels), "channel")
    _option(variant, [v.name for v in c.variants], "variant")
    tag = None
    if locale is not None:
        tag = i18n.normalize_tag(locale)
        if tag is None:
            raise UsageError(f"--locale '{locale}' is not a locale tag", hint="e.g. cs, zh-CN")
    when = as_of or _now()
    with open_db(ws) as con:
        uid = find_user(con, user) if user is not None else None
        res = build(con, ws, c, delivery, when, only_user=uid)
        if uid is not None:
            rows = con.execute(
                f"SELECT user_id, status, reason, detail, channel, variant, send_at "
                f"FROM {res.rows_table}"
            ).fetchall()
            if not rows:
                rows = [(uid, "not_in_audience", None, None, None, None, None)]
        else:
            lang = tag.split("-")[0].lower() if tag else ""
            order = (
                "CASE WHEN status = 'planned' THEN 0 ELSE 1 END, "
                + (
                    "CASE WHEN lower(split_part(replace(coalesce(locale, ''), '_', '-'), "
                    f"'-', 1)) = '{lang}' THEN 0 ELSE 1 END, "
                    if lang.isalpha()
                    else ""
                )
                + "md5(user_id)"
            )
            rows = con.execute(
                f"SELECT user_id, status, reason, detail, channel, variant, send_at "
                f"FROM {res.rows_table} ORDER BY {order} LIMIT {n}"
            ).fetchall()
            if not rows:
                raise UsageError(
                    f"nobody is in the audience of {c.name} as of {when:%Y-%m-%d %H:%M}Z",
                    hint="preview one user with --user ID, or pick another --as-of",
                )
        renderer = Renderer(ws.root / CAMPAIGNS_DIR)
        contexts = Contexts(con, ws, c, delivery, when, renderer)
        targets, meta = [], {}
        for u, status, reason, detail, ch, var, send_at in rows:
            t = Target(
                u,
                channel or ch or c.channels[0],
                variant or var or variant_for(c, u),
                send_at,
                tag,
            )
            targets.append(t)
            if status == "not_in_audience":
                words = "is not in the audience; rendered as if they were"
            elif status == "planned":
                words = f"will receive it by {ch}" + (
                    f"; shown on {channel}, as asked" if channel and channel != ch else ""
                )
            else:
                words = explain_reason(reason, detail)
            meta[u] = (status, reason, f"{u} {words}")
        out = []
        for o in render_targets(contexts, targets):
            if o.error is not None:
                raise o.error
            t, ctx = o.target, o.context or {}
            status, reason, words = meta[t.user_id]
            p = Preview(
                t.user_id,
                status,
                reason,
                words,
                t.channel,
                t.variant,
                str(ctx.get("locale") or ""),
                t.send_at,
                o.message,
                o.skip,
            )
            user_row = ctx.get("user") or {}
            email, phone = user_row.get("email"), user_row.get("phone")
            p.to = email if t.channel == "email" else phone if t.channel == "sms" else None
            if not show_pii:
                p.to, p.message = _masked(p.to, o.message, email, phone)
            if o.message is not None and t.channel == "email":
                url = str(ctx.get("unsubscribe_url") or "")
                if c.marketing:
                    p.headers = email_headers(
                        unsubscribe_url=url,
                        mailto=delivery.unsubscribe.mailto,
                        marketing=True,
                    )
                    html = o.message.parts.get("html")
                    if html is not None and not has_visible_unsubscribe_link(html, url):
                        p.warnings.append(
                            "the HTML part shows no unsubscribe link (Gmail and Yahoo want "
                            "one besides the List-Unsubscribe header)"
                        )
            out.append(p)
    return out


def _masked(
    to: str | None, m: RenderedMessage | None, email: str | None, phone: str | None
) -> tuple[str | None, RenderedMessage | None]:
    """The address, and the message parts, with the user's e-mail and phone masked as in
    `users show` (SPEC §9: previews show personal data only with --show-pii). The content
    hash stays the real message's."""
    import dataclasses

    from mcrm.people import mask_email, mask_phone

    pairs = [(v, mask_email(v)) for v in [email] if v] + [(v, mask_phone(v)) for v in [phone] if v]
    for raw, masked in pairs:
        if to == raw:
            to = masked
    if m is None or not pairs:
        return to, m
    parts = dict(m.parts)
    for k, text in parts.items():
        for raw, masked in pairs:
            text = text.replace(raw, masked or "")
        parts[k] = text
    return to, dataclasses.replace(m, parts=parts)


def as_rows(previews: list[Preview]) -> tuple[list[str], list[list[Any]]]:
    """Flat rows for --format csv/json/jsonl."""
    cols = [
        "user_id",
        "status",
        "reason",
        "channel",
        "to",
        "variant",
        "locale",
        "send_at",
        "skip",
        "parts",
        "files",
        "headers",
        "content_hash",
        "sms_encoding",
        "sms_segments",
    ]
    rows = []
    for p in previews:
        m = p.message
        rows.append(
            [
                p.user_id,
                p.status,
                p.reason,
                p.channel,
                p.to,
                p.variant,
                p.locale,
                p.send_at,
                p.skip,
                m.parts if m else None,
                m.files if m else None,
                p.headers or None,
                m.content_hash if m else None,
                m.sms.encoding if m and m.sms else None,
                m.sms.segments if m and m.sms else None,
            ]
        )
    return cols, rows


def as_text(previews: list[Preview], sms_price: Any = None) -> str:
    """The human form: one block per message, the parts as they would be sent."""
    from mcrm.campaigns.render import INLINE

    blocks = []
    for p in previews:
        head = f"── {p.user_id} · {p.channel} · variant {p.variant} · locale {p.locale or '-'}"
        if p.send_at is not None:
            head += f" · {p.send_at:%Y-%m-%d %H:%M}Z"
        lines = [head, f"   {p.explanation}"]
        m = p.message
        if m is None:
            lines.append(f"   not sent: the template skips this user ({p.skip})")
            blocks.append("\n".join(lines))
            continue
        files = ", ".join(f for f in dict.fromkeys(m.files.values()) if f != INLINE)
        lines.append(f"   templates: {files}")
        lines.extend(f"   warning: {w}" for w in p.warnings)
        if p.to:
            lines.append(f"   to: {p.to}")
        lines.append("")
        if p.channel == "email":
            lines.append(f"Subject: {m.parts.get('subject', '')}")
            lines.extend(f"{k}: {v}" for k, v in p.headers.items())
            for part in ("text", "html"):
                if part in m.parts:
                    lines += ["", f"--- {part} ---", m.parts[part]]
        elif p.channel == "push":
            for part in ("title", "body", "deeplink"):
                if part in m.parts:
                    lines.append(f"{part.capitalize()}: {m.parts[part]}")
        elif p.channel == "sms":
            lines.append(m.parts.get("body", ""))
            if m.sms is not None:
                s = m.sms
                cost = ""
                if sms_price is not None:
                    cost = f", cost {s.segments * sms_price:.3f}"
                shown = " ".join(s.ucs2_chars[:8]) + (" …" if len(s.ucs2_chars) > 8 else "")
                extra = f"; non-GSM characters: {shown}" if s.ucs2_chars else ""
                lines += [
                    "",
                    f"--- {s.segments} segment(s), {s.encoding}, {s.units} units "
                    f"(single message up to {s.single_limit}, {s.per_part} per part)"
                    f"{cost}{extra} ---",
                ]
        else:
            lines.append(m.parts.get("body", ""))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
