"""The columnar send path: a batch's messages built from per-batch columns, not per-user contexts.

`Contexts` + `render_targets` build each recipient's whole template context (27 user columns
as a dict, timestamps moved into the user's zone, the signed unsubscribe URL) and render each
message part through the memo, then hash it — about 100 µs a recipient. For the common shape
of a bulk e-mail that is mostly wasted: the templates read a handful of user columns and print
the unsubscribe URL. `Columns` does the same work per batch:

1. **Eligibility, once per campaign and channel.** Every template the campaign reads (any
   variant, any locale) is provably a pure function of what it reads (`memo.analyse`: the
   same proof `MemoRenderer` uses) and reads only: `user.<column>` (one constant step to a
   `users` column that is neither a timestamp nor `attributes` — those are converted per user
   by `Contexts`), `campaign`, `variant`, `locale`, `currency`; and `unsubscribe_url` only
   printed as it is (an opaque name). Nothing else (`now`, `rfm`, `stats`, `coupon`, ...).
   Not eligible: the batch goes the usual way.
2. **Columns.** The send-time check's query (`send._addresses`) brings those user columns
   along with each address, so a batch needs no context query at all.
3. **One render per distinct input**: the key is (variant, locale, the column values); its
   parts are rendered by the dispatcher's renderer with `unsubscribe_url` bound to a sentinel
   (private-use characters around a per-process nonce, which HTML escaping leaves alone).
   A key whose render fails or skips sends the whole batch the usual way, so errors and skip
   reasons are exactly as before.
4. **Per recipient**, only: the token (`render.unsubscribe_token`'s format and HMAC, minted in
   a loop that checks each user id once), the URL, the sentinel replaced in each part by the
   URL — `markupsafe.escape`d in an autoescaped template, as Jinja prints it — and the
   `List-Unsubscribe` headers as `render.email_headers` writes them (checked against it for
   the batch's first URL).

The text is byte-for-byte what `Renderer` gives for the same user (preview, plan, goldens):
tested against `render_targets` on generated users.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mcrm.dispatch.core import Shared, html_escape

if TYPE_CHECKING:
    from mcrm.campaigns.model import Campaign, Delivery
    from mcrm.dispatch.memo import MemoRenderer

MAX_KEYS = 10_000  # rendered keys kept per campaign and channel
ALLOWED = frozenset({"user", "campaign", "variant", "locale", "currency", "unsubscribe_url"})
_CONTROL = re.compile(r"[\x00-\x1f]")
_SPACE = re.compile(r"\s")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    # base64.urlsafe_b64encode without its Python wrapper (0.7 µs against 1.05 µs)
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _pads(secret: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 (RFC 2104) as its two keyed SHA-256 states: the MAC of `msg` is
    `sha256(outer + sha256(inner + msg))`. Copying two hashlib objects costs 0.8 µs a
    token against 1.4 µs through `hmac.HMAC.copy` (its Python wrapper); the result is
    checked against `render.unsubscribe_token` once a batch."""
    key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
    key = key.ljust(64, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def tokens(
    secret: bytes, user_ids: Sequence[str], campaign: str, issued_at: dt.datetime
) -> list[str]:
    """`render.unsubscribe_token(secret, u, campaign, issued_at)` for each user id, with the
    key schedule, the campaign's checks and the payload's tail done once."""
    from mcrm.campaigns.render import unsubscribe_token

    if not user_ids:
        return []
    # the first one through the real function: its checks (secret, zone, campaign) raise
    # exactly as before, and it pins the format
    first = unsubscribe_token(secret, user_ids[0], campaign, issued_at)
    ts = int(issued_at.astimezone(dt.UTC).timestamp())
    tail = f"\x1f{campaign}\x1f{ts}".encode()
    inner, outer = _pads(secret)
    icopy, ocopy = inner.copy, outer.copy

    def one(uid: str) -> str:
        payload = b"1\x1f" + uid.encode() + tail
        i = icopy()
        i.update(payload)
        o = ocopy()
        o.update(i.digest())
        return f"{_b64(payload)}.{_b64(o.digest())}"

    if one(user_ids[0]) != first:  # not the token's format or MAC: every one the slow way
        return [unsubscribe_token(secret, u, campaign, issued_at) for u in user_ids]
    out = [first]
    for uid in user_ids[1:]:
        if not uid or _CONTROL.search(uid):
            out.append(unsubscribe_token(secret, uid, campaign, issued_at))  # raises
            continue
        payload = b"1\x1f" + uid.encode() + tail
        i = icopy()
        i.update(payload)
        o = ocopy()
        o.update(i.digest())
        out.append(f"{_b64(payload)}.{_b64(o.digest())}")
    return out


class Columns:
    """The columnar path of one campaign and channel (module docstring)."""

    def __init__(
        self,
        renderer: MemoRenderer,
        c: Campaign,
        delivery: Delivery,
        channel: str,
        user_columns: Mapping[str, str],
        currency: str,
    ):
        self.renderer = renderer
        self.c = c
        self.delivery = delivery
        self.channel = channel
        self.currency = currency
        self.sentinel = f"\ue000{secrets.token_hex(8)}\ue002"
        self.columns: list[str] = []  # user columns the templates read (locale first)
        self.auto: dict[str, bool] = {}  # template path -> autoescaped
        # key -> its parts with the sentinel and which of them print the URL, escaped or not
        self.keys: dict[tuple[Any, ...], Shared] = {}
        self._campaign: dict[str, Any] | None = None
        self.eligible = self._check(user_columns)

    def _analyse(self, path: str) -> tuple[list[Any], list[str], bool] | None:
        from mcrm.dispatch.memo import analyse

        r = self.renderer
        env = r._env_for(path)
        if env is not r.env:
            return None
        source = r._source(path)
        if self.sentinel in source:
            return None
        got = analyse(env.parse(source))
        if got is None:
            return None
        choose: Any = env.autoescape
        auto = bool(choose(path) if callable(choose) else choose)
        return got[0], got[1], auto

    def _check(self, user_columns: Mapping[str, str]) -> bool:
        from mcrm.campaigns.context import campaign_info, template_names
        from mcrm.campaigns.model import INLINE_PARTS

        c, ch = self.c, self.channel
        if ch != "email" or "locale" not in user_columns:
            return False
        try:
            names = template_names(self.renderer, c)
            if not names <= ALLOWED:
                return False
            if c.marketing and "unsubscribe_url" not in names:
                return False
            url = self.delivery.unsubscribe.url
            if "unsubscribe_url" in names and (
                not url or "{token}" not in url or _SPACE.search(url)
            ):
                return False
            paths: list[str] = []
            for v in c.variants:
                for part, spec in v.templates.get(ch, {}).items():
                    if part in INLINE_PARTS:
                        return False
                    for p in self.renderer.locale_variants(spec):
                        if p not in paths:
                            paths.append(p)
            wanted = ["locale"]
            for p in paths:
                got = self._analyse(p)
                if got is None:
                    return False
                chains, opaque, auto = got
                # printed as they are: the URL (the sentinel), or what is in the key
                if not set(opaque) <= {"unsubscribe_url", "variant", "campaign"}:
                    return False
                for name, steps in chains:
                    if name not in ALLOWED or name == "unsubscribe_url":
                        return False
                    if name != "user":
                        continue
                    if len(steps) != 1 or not isinstance(steps[0][1], str):
                        return False
                    col = steps[0][1]
                    kind = user_columns.get(col)
                    if kind is None or kind.startswith("TIMESTAMP") or col == "attributes":
                        return False
                    if col not in wanted:
                        wanted.append(col)
                self.auto[p] = auto
        except Exception:  # a broken template: the usual path reports it with file:line
            return False
        self.columns = wanted
        self._campaign = campaign_info(c)
        return True

    def parts(self, variant: str, values: tuple[Any, ...]) -> Shared | None:
        """The rendered parts of one key, with the sentinel for the unsubscribe URL; None when
        the templates fail or skip for it (the caller then goes the usual way)."""
        from mcrm.campaigns.context import templates_for
        from mcrm.campaigns.render import TemplateError, TemplateSkip

        key = (variant, *values)
        got = self.keys.get(key)
        if got is not None:
            return got
        user = dict(zip(self.columns, values, strict=True))
        locale = user["locale"] or self.renderer.default_locale
        ctx = {
            "user": user,
            "campaign": self._campaign,
            "variant": variant,
            "locale": locale,
            "currency": self.currency,
            "unsubscribe_url": self.sentinel,
        }
        try:
            msg = self.renderer.render_message(
                self.channel, templates_for(self.c, variant, self.channel), ctx, locale
            )
        except (TemplateError, TemplateSkip):
            return None
        parts = dict(msg.parts)
        # the parts that print the URL, and whether escaped (their resolved template says)
        esc = {p: self.auto[msg.files[p]] for p, text in parts.items() if self.sentinel in text}
        if len(self.keys) >= MAX_KEYS:
            self.keys.clear()
        got = Shared(parts, self.sentinel, esc)
        self.keys[key] = got
        return got

    def messages(
        self,
        rows: Sequence[tuple[str, str, tuple[Any, ...]]],
        issued_at: dt.datetime,
    ) -> list[tuple[dict[str, str], dict[str, str], tuple[Shared, str] | None]] | None:
        """(parts, headers, (shared parts, URL) or None) per (user id, variant, column
        values) row, in order; None when some key fails or skips (the batch then goes the
        usual way)."""
        from mcrm.campaigns.render import email_headers

        rendered: list[Shared] = []
        keys = self.keys
        for _uid, variant, values in rows:
            got = keys.get((variant, *values))  # rendered before: no call
            if got is None:
                got = self.parts(variant, values)
                if got is None:
                    return None
            rendered.append(got)
        urls: list[str] = []
        escaped: list[str] = []  # each URL as autoescape prints it
        d = self.delivery.unsubscribe
        if self.c.marketing or any(r.escaped for r in rendered):
            toks = tokens(d.secret.encode(), [r[0] for r in rows], self.c.name, issued_at)
            cut = d.url.split("{token}")
            if len(cut) == 2:  # a token (base64url and '.') is never escaped: only the rest is
                head, tail = cut
                urls = [head + t + tail for t in toks]
                qh, qt = html_escape(head), html_escape(tail)
                escaped = urls if (qh, qt) == (head, tail) else [qh + t + qt for t in toks]
            else:
                urls = [d.url.replace("{token}", t) for t in toks]
                escaped = [html_escape(u) for u in urls]
        headers: list[dict[str, str]] = [{}] * len(rows)
        if self.c.marketing and urls:
            first = email_headers(unsubscribe_url=urls[0], mailto=d.mailto)
            lu = first["List-Unsubscribe"]
            head = f"<{urls[0]}>"
            if not lu.startswith(head) or set(first) != {
                "List-Unsubscribe",
                "List-Unsubscribe-Post",
            }:
                return None
            tail, post = lu[len(head) :], first["List-Unsubscribe-Post"]
            headers = [
                {"List-Unsubscribe": f"<{u}>{tail}", "List-Unsubscribe-Post": post} for u in urls
            ]
        out = []
        s = self.sentinel
        for i, sh in enumerate(rendered):
            p, esc = sh.parts, sh.escaped
            shared = None
            if esc:
                url, q = urls[i], escaped[i]
                shared = (sh, url)
                p = {
                    k: (v.replace(s, q if esc[k] else url) if k in esc else v)
                    for k, v in p.items()
                }
            out.append((p, headers[i], shared))
        return out
