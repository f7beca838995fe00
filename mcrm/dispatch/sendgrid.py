"""SendGrid v3 Mail Send (reference/providers.md §3.2, §3.3): up to 1000 recipients per request,
one personalization each.

**Batching.** One request carries one `content` (subject, text and HTML), so only messages
that are the same apart from per-recipient values may share it. Each message is factored:

1. its one-click unsubscribe URIs (the `<…>` values of its `List-Unsubscribe` header, also
   HTML-escaped) are replaced in the text and HTML by substitution tags (`-mcrm_u0-`, …);
   messages identical after that form a group;
2. groups whose text and HTML split into the same number of space-separated tokens and
   differ in some of them (names, coupon codes) merge: each run of differing tokens becomes
   one more tag (`-mcrm_t3-` in the text, `-mcrm_h7-` in the HTML). What all values of a tag
   start and end with stays in the shared content, so the values stay short.

Each recipient's values go into `personalizations[i].substitutions`, so SendGrid rebuilds
every recipient's own text exactly (tags never occur in the content or the values: a message
that contains `mcrm_` itself is sent as it is, grouped only with identical ones; values that
would overlap a tag are not substituted; a member whose values would pass 9,000 bytes goes
alone). The sandbox answer (200, nothing queued) counts as sent, as a sandbox lane means. A subject
that differs goes into the personalization's `subject`. Per personalization too:
`custom_args.mcrm_id` (the idempotency key, returned in event webhooks) and the RFC 8058
`headers` (each recipient's own `List-Unsubscribe`). A request never names an address twice.

**Answers.** 202 (`X-Message-Id`) is sent for the whole request; a 400 whose errors name
single personalizations (`personalizations.N.to.M.email`: a malformed address, invalid and
registered `malformed`; other `personalizations.N.*` fields: permanent) settles those rows
and the rest go again in a new request, within the same `send`; other 400s, 413 and 415
are permanent; 401/403 (and 404/405: a wrong `base_url`) auth; 429 throttled with
`Retry-After`, else `X-RateLimit-Reset`; 5xx retry; transport failures per
`http.transport_outcome` (a connection lost after the body: ambiguous for the request).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from itertools import compress
from operator import ne
from os.path import commonprefix
from typing import Any

import orjson

from mcrm.dispatch.core import Outbound, Outcome, Result, Shared, html_escape
from mcrm.dispatch.http import (
    TIMEOUT,
    Wire,
    base_url,
    json_or_none,
    retry_after,
    session,
    transport_outcome,
)
from mcrm.errors import ConfigError, Where

DEFAULT_BASE = "https://api.sendgrid.com"
MAX_RECIPIENTS = 1000
MAX_SUBSTITUTION_BYTES = 9_000  # SendGrid documents 10,000 (and 50,000) per personalization
MAX_SLOTS = 64  # differing token runs per group, text and HTML together
MAX_CANDIDATES = 8  # groups of the same token shape a message is compared with
MARKER = "mcrm_"
OPTIONS = {"api_key", "from", "base_url", "reply_to", "sandbox", "list_id"}

_RECIPIENT = re.compile(r"^personalizations\.(\d+)\.(?:to|cc|bcc)\.\d+\.email$")
_PERSONALIZATION = re.compile(r"^personalizations\.(\d+)(?:\.|$)")
_URI = re.compile(r"<([^<>]+)>")
_TAG = re.compile(r"-mcrm_[uthab]\d+-")
MAX_AFFIX_VALUE = 64  # the longest differing middle an affix group gives a substitution


def _address(value: str, what: str, where: Where) -> dict[str, str]:
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise ConfigError(
            f"{what} must be an e-mail address (e.g. 'Shop <news@shop.example.com>'), "
            f"found {value!r}",
            where=where,
        )
    if ";" in name or "," in name:
        raise ConfigError(f"{what}: SendGrid refuses ';' and ',' in names", where=where)
    return {"email": addr, "name": name} if name else {"email": addr}


@dataclass
class _Msg:
    """A message factored for batching."""

    index: int  # position in the batch
    m: Outbound
    subject: str
    text: str  # with the unsubscribe URIs as tags (verbatim if not factorable)
    html: str
    subs: dict[str, str]
    headers: dict[str, str]
    factorable: bool


@dataclass
class _Group:
    """Messages sharing one content: the reference message's tokens and the positions where
    some member differs from it."""

    members: list[_Msg]
    text_tokens: list[str] | None = None
    html_tokens: list[str] | None = None
    text_slots: set[int] = field(default_factory=set)
    html_slots: set[int] = field(default_factory=set)
    member_tokens: list[tuple[list[str], list[str]]] = field(default_factory=list)


@dataclass
class _Request:
    """One request's worth: shared content and per-member substitutions."""

    members: list[_Msg]
    text: str
    html: str
    subs: list[dict[str, str]]


def _runs(slots: set[int]) -> list[tuple[int, int]]:
    """Runs [start, end) of consecutive slot positions."""
    out: list[tuple[int, int]] = []
    start = prev = -2
    for p in sorted(slots):
        if p != prev + 1:
            if start >= 0:
                out.append((start, prev + 1))
            start = p
        prev = p
    if start >= 0:
        out.append((start, prev + 1))
    return out


def _diff(ref: list[str], tokens: list[str]) -> set[int] | None:
    """Positions where `tokens` differs from `ref` (same length); None if a differing token is
    empty (SendGrid would get an empty value) or holds a tag."""
    d = set(compress(range(len(ref)), map(ne, ref, tokens)))
    for i in d:
        a, b = ref[i], tokens[i]
        if not a or not b or MARKER in a or MARKER in b:
            return None
    return d


class SendGrid:
    channel = "email"
    max_batch = MAX_RECIPIENTS
    dedupes = False

    def __init__(
        self, name: str, opts: dict[str, Any], *, clock: Callable[[], float] = time.time
    ) -> None:
        where = Where("mcrm.yaml", None, f"providers.{name}")
        unknown = set(opts) - OPTIONS
        if unknown:
            raise ConfigError(
                f"provider '{name}': unknown option(s) {', '.join(sorted(unknown))}",
                hint=f"options: {', '.join(sorted(OPTIONS))}",
                where=where,
            )
        self.name = name
        key = opts.get("api_key")
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(
                f"provider '{name}' needs api_key: (a SendGrid key, SG.…; use ${{ENV}})",
                where=where,
            )
        sender = opts.get("from")
        if not isinstance(sender, str) or not sender:
            raise ConfigError(
                f"provider '{name}' needs from: (e.g. 'Shop <news@shop.example.com>')",
                where=where,
            )
        self.sender = _address(sender, f"provider '{name}': from", where)
        reply_to = opts.get("reply_to")
        self.reply_to = (
            _address(str(reply_to), f"provider '{name}': reply_to", where) if reply_to else None
        )
        sandbox = opts.get("sandbox", False)
        if not isinstance(sandbox, bool):
            raise ConfigError(
                f"provider '{name}': sandbox must be true or false, found {sandbox!r}",
                where=Where("mcrm.yaml", None, f"providers.{name}.sandbox"),
            )
        self.sandbox = sandbox
        list_id = opts.get("list_id")
        self.list_id = str(list_id) if list_id else None
        self.url = base_url(name, opts, DEFAULT_BASE) + "/v3/mail/send"
        self.clock = clock
        self._headers = {
            "Authorization": f"Bearer {key.strip()}",
            "Content-Type": "application/json",
        }
        # the sends over a urllib3 pool (`http.Wire`: 0.37 ms of CPU a 190 kB request to the
        # fake against 0.88 ms through requests); `mcrm providers check` uses `http`
        self.wire = Wire(self.url, pool=1)
        self.http = session(pool=4)
        self.http.headers.update(self._headers)

    # --- factoring and grouping ------------------------------------------------------------

    def _factor(self, index: int, m: Outbound, cache: dict[Any, Any] | None = None) -> _Msg:
        subject = m.parts.get("subject", "")
        text = m.parts.get("text", "")
        html = m.parts.get("html", "")
        headers = m.headers
        if self.list_id and headers and "List-Id" not in headers:
            headers = {**headers, "List-Id": self.list_id}
        if m.shared is not None and cache is not None:
            got = _from_shared(m.shared, cache)
            if got is not None:
                return _Msg(index, m, subject, got[0], got[1], got[2], headers, True)
        if MARKER in subject or MARKER in text or MARKER in html:
            return _Msg(index, m, subject, text, html, {}, headers, False)
        values: list[str] = []
        for uri in _URI.findall(headers.get("List-Unsubscribe", "")):
            uri = uri.strip()
            if uri.startswith("mailto:"):
                uri = uri[len("mailto:") :].split("?", 1)[0]
            for v in (uri, uri.replace("&", "&amp;")):
                if len(v) >= 8 and MARKER not in v and v not in values:
                    values.append(v)
        subs: dict[str, str] = {}
        t, h = text, html
        for j, v in enumerate(sorted(values, key=len, reverse=True)):
            tag = f"-{MARKER}u{j}-"
            if v in t or v in h:
                t = t.replace(v, tag)
                h = h.replace(v, tag)
                subs[tag] = v
        # one value replaced is always undone exactly; two might overlap a tag
        if len(subs) > 1 and not (_well_formed(t, subs, text) and _well_formed(h, subs, html)):
            t, h, subs = text, html, {}  # a value overlapping a tag: keep the content as is
        return _Msg(index, m, subject, t, h, subs, headers, True)

    def _groups(self, msgs: list[_Msg]) -> list[_Group]:
        exact: dict[tuple[bool, str, str], list[_Msg]] = {}
        for x in msgs:
            exact.setdefault((x.factorable, x.text, x.html), []).append(x)
        groups: list[_Group] = []
        by_shape: dict[tuple[int, int], list[_Group]] = {}
        for (factorable, text, html), members in exact.items():
            if not factorable or len(exact) == 1:
                groups.append(_Group(members))
                continue
            tt, ht = text.split(" "), html.split(" ")
            shape = (len(tt), len(ht))
            placed = False
            for g in by_shape.get(shape, [])[-MAX_CANDIDATES:]:
                assert g.text_tokens is not None and g.html_tokens is not None
                dt_ = _diff(g.text_tokens, tt)
                dh = _diff(g.html_tokens, ht) if dt_ is not None else None
                if dt_ is None or dh is None:
                    continue
                if not (dt_ <= g.text_slots and dh <= g.html_slots):
                    ts, hs = g.text_slots | dt_, g.html_slots | dh
                    if len(_runs(ts)) + len(_runs(hs)) > MAX_SLOTS:
                        continue
                    g.text_slots, g.html_slots = ts, hs
                g.members += members
                g.member_tokens += [(tt, ht)] * len(members)
                placed = True
                break
            if not placed:
                g = _Group(list(members), tt, ht)
                g.member_tokens = [(tt, ht)] * len(members)
                groups.append(g)
                by_shape.setdefault(shape, []).append(g)
        return _affix_merge(groups)

    def _requests(self, g: _Group) -> list[_Request]:
        """A group as requests: content with tags, per-member substitutions; at most 1000
        recipients and no address twice per request; a member whose substitutions would be
        too large goes alone, verbatim."""
        first = g.members[0]
        text, html = first.text, first.html
        # each member's own substitutions, filled in place (a _Msg belongs to one group, and
        # nothing reads its subs after this): no copy per member
        subs = [x.subs for x in g.members]
        shared_tags = [(tag, first.subs[tag]) for tag in first.subs] if len(subs) > 1 else []
        if g.text_tokens is not None and g.html_tokens is not None:
            if g.text_slots or g.html_slots:
                # members of one exact group share their token lists: values once per list
                distinct: dict[tuple[int, int], tuple[list[str], list[str], list[int]]] = {}
                for i, (tt, ht) in enumerate(g.member_tokens):
                    d = distinct.get((id(tt), id(ht)))
                    if d is None:
                        d = distinct[id(tt), id(ht)] = (tt, ht, [])
                    d[2].append(i)
                kinds = list(distinct.values())
            if g.text_slots:
                text = _slotted(g.text_tokens, [(tt, ix) for tt, _, ix in kinds],
                                g.text_slots, "t", subs)  # fmt: skip
            if g.html_slots:
                html = _slotted(g.html_tokens, [(ht, ix) for _, ht, ix in kinds],
                                g.html_slots, "h", subs)  # fmt: skip
        for tag, v0 in shared_tags:  # the unsubscribe URIs: their common parts stay shared
            if not all(tag in s for s in subs):
                continue
            pre, post = _common([s[tag] for s in subs])
            if pre or post:
                shared = v0[:pre] + tag + v0[len(v0) - post :]
                text, html = text.replace(tag, shared), html.replace(tag, shared)
                for s in subs:
                    v = s[tag]
                    s[tag] = v[pre : len(v) - post]
        # a UTF-8 character is at most 4 bytes: encode only the members past that bound
        big = MAX_SUBSTITUTION_BYTES // 4
        alone: list[_Msg] = []
        members, kept = g.members, subs
        if any(sum(map(len, s.values())) > big for s in subs):
            members, kept = [], []
            for x, s in zip(g.members, subs, strict=True):
                if sum(len(v.encode()) for v in s.values()) > MAX_SUBSTITUTION_BYTES:
                    alone.append(x)
                else:
                    members.append(x)
                    kept.append(s)
        chunks: list[tuple[list[_Msg], list[dict[str, str]], set[str]]] = []
        addrs = [x.m.address.strip().lower() for x in members]
        if len(members) <= MAX_RECIPIENTS and len(set(addrs)) == len(addrs):
            if members:  # the usual group: one request, every address once
                chunks.append((list(members), list(kept), set()))
        else:
            for x, s, addr in zip(members, kept, addrs, strict=True):
                k = 0
                while k < len(chunks) and (
                    len(chunks[k][0]) >= MAX_RECIPIENTS or addr in chunks[k][2]
                ):
                    k += 1
                if k == len(chunks):
                    chunks.append(([], [], set()))
                chunks[k][0].append(x)
                chunks[k][1].append(s)
                chunks[k][2].add(addr)
        out = [_Request(ms, text, html, ss) for ms, ss, _ in chunks]
        for x in alone:
            m = x.m
            out.append(_Request([x], m.parts.get("text", ""), m.parts.get("html", ""), [{}]))
        return out

    # --- the wire --------------------------------------------------------------------------

    def _body(self, r: _Request, keep: list[int]) -> bytes:
        subjects = {r.members[i].subject for i in keep}
        shared = subjects.pop() if len(subjects) == 1 else None
        pers: list[dict[str, Any]] = []
        for i in keep:
            x = r.members[i]
            p: dict[str, Any] = {
                "to": [{"email": x.m.address}],
                "custom_args": {"mcrm_id": x.m.idempotency_key},
            }
            if shared is None:
                p["subject"] = x.subject
            if x.headers:
                p["headers"] = x.headers
            if r.subs[i]:
                p["substitutions"] = r.subs[i]
            pers.append(p)
        content = []
        if r.text:
            content.append({"type": "text/plain", "value": r.text})
        if r.html:
            content.append({"type": "text/html", "value": r.html})
        body: dict[str, Any] = {"personalizations": pers, "from": self.sender}
        if self.reply_to:
            body["reply_to"] = self.reply_to
        if shared is not None:
            body["subject"] = shared
        body["content"] = content
        if self.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        # orjson: the same bytes as json.dumps(ensure_ascii=False, separators=(",", ":"))
        # encoded as UTF-8, in 1/20 of the time (11 ms a 1,000-recipient body with json)
        return orjson.dumps(body)

    def send(self, batch: Sequence[Outbound]) -> list[Result]:
        results: list[Result | None] = [None] * len(batch)
        msgs: list[_Msg] = []
        cache: dict[Any, Any] = {}
        for i, m in enumerate(batch):
            if not m.parts.get("subject"):
                results[i] = Result(m.outbox_id, Outcome.PERMANENT, error_code="no_subject")
            elif not (m.parts.get("text") or m.parts.get("html")):
                results[i] = Result(m.outbox_id, Outcome.PERMANENT, error_code="no_content")
            else:
                msgs.append(self._factor(i, m, cache))
        for g in self._groups(msgs):
            for r in self._requests(g):
                for x, res in zip(r.members, self._send_request(r), strict=True):
                    results[x.index] = res
        out = [r for r in results if r is not None]
        assert len(out) == len(batch)
        return out

    def _send_request(self, r: _Request) -> list[Result]:
        """One logical batch: 400s naming single personalizations settle those, and the rest
        go again at once."""
        out: list[Result | None] = [None] * len(r.members)
        keep = list(range(len(r.members)))
        while keep:
            body = self._body(r, keep)
            try:
                resp = self.wire.post(body, self._headers, TIMEOUT)
            except Exception as e:
                outcome, code = transport_outcome(e)
                for i in keep:
                    out[i] = Result(r.members[i].m.outbox_id, outcome, error_code=code)
                break
            st = resp.status_code
            if st != 400:  # one answer for the whole request: classified once
                one = self._classify(r.members[keep[0]].m.outbox_id, resp)
                o, pid, err = one.outcome, one.provider_message_id, one.error_code
                detail, wait = one.error_detail, one.retry_after_s
                for i in keep:
                    out[i] = Result(r.members[i].m.outbox_id, o, pid, err, detail, wait)
                break
            doc = json_or_none(resp)
            errors = doc.get("errors") if isinstance(doc, dict) else None
            scoped: dict[int, tuple[str, str]] = {}
            general: list[str] = []
            for err in errors if isinstance(errors, list) else []:
                f = err.get("field") if isinstance(err, dict) else None
                msg = str(err.get("message") or "") if isinstance(err, dict) else ""
                hit = _PERSONALIZATION.match(f) if isinstance(f, str) else None
                n = int(hit.group(1)) if hit else -1
                if isinstance(f, str) and 0 <= n < len(keep):
                    # a malformed address wins over the row's other problems
                    if keep[n] not in scoped or _RECIPIENT.match(f):
                        scoped[keep[n]] = (f, msg)
                else:
                    general.append(f"{f}: {msg}" if f else msg)
            for i, (f, msg) in scoped.items():
                oid = r.members[i].m.outbox_id
                detail = f if "@" in msg else f"{f}: {msg}"
                if _RECIPIENT.match(f):
                    out[i] = Result(
                        oid,
                        Outcome.INVALID_RECIPIENT,
                        error_code="400",
                        error_detail=detail,
                        mark="invalid",
                        mark_reason="malformed",
                    )
                else:
                    out[i] = Result(oid, Outcome.PERMANENT, error_code="400", error_detail=detail)
            keep = [i for i in keep if i not in scoped]
            if general or not scoped:
                detail = "; ".join(general)[:500] or "bad request"
                if "@" in detail:
                    detail = "bad request"
                for i in keep:
                    out[i] = Result(
                        r.members[i].m.outbox_id,
                        Outcome.PERMANENT,
                        error_code="400",
                        error_detail=detail,
                    )
                break
        return [x for x in out if x is not None]

    def _classify(self, outbox_id: int, resp: Any) -> Result:
        st = resp.status_code
        code = str(st)
        if 200 <= st < 300:
            mid = resp.headers.get("X-Message-Id")
            if st == 200 and self.sandbox:
                return Result(
                    outbox_id, Outcome.SENT, provider_message_id=mid, error_detail="sandbox"
                )
            return Result(outbox_id, Outcome.SENT, provider_message_id=mid)
        detail = _first_message(resp)
        if st in (401, 403):
            return Result(outbox_id, Outcome.AUTH, error_code=code, error_detail=detail)
        if st in (404, 405):
            return Result(
                outbox_id, Outcome.AUTH, error_code=code, error_detail="endpoint not found"
            )
        if st == 429:
            wait = retry_after(resp.headers)
            if wait is None:
                wait = self._reset_wait(resp.headers.get("X-RateLimit-Reset"))
            return Result(outbox_id, Outcome.THROTTLED, error_code=code, retry_after_s=wait)
        if st >= 500:
            return Result(
                outbox_id,
                Outcome.RETRY,
                error_code=code,
                error_detail=detail,
                retry_after_s=retry_after(resp.headers),
            )
        if 400 <= st < 500:  # 413, 415, other refusals
            return Result(outbox_id, Outcome.PERMANENT, error_code=code, error_detail=detail)
        return Result(outbox_id, Outcome.RETRY, error_code=code)

    def _reset_wait(self, value: str | None) -> float | None:
        """`X-RateLimit-Reset` (epoch seconds) as seconds from now, clamped to 0..24 h."""
        if value is None:
            return None
        try:
            reset = float(value.strip())
        except ValueError:
            return None
        return min(max(reset - self.clock(), 0.0), 86_400.0)

    def close(self) -> None:
        self.wire.close()
        self.http.close()


def _well_formed(content: str, subs: dict[str, str], original: str) -> bool:
    """Every `mcrm_` in `content` is part of a whole tag, and substituting the tags (in any
    order: no value holds a tag) gives `original` back."""
    if len(_TAG.findall(content)) != content.count(MARKER):
        return False
    for tag, v in subs.items():
        content = content.replace(tag, v)
    return content == original


def _common(values: list[str]) -> tuple[int, int]:
    """The lengths of what all `values` start and end with, leaving at least one character
    of each (SendGrid gets no empty value)."""
    shortest = min(map(len, values))
    pre = min(len(commonprefix(values)), shortest - 1)
    post = min(len(commonprefix([v[::-1] for v in values])), shortest - 1 - pre)
    return pre, post


def _slotted(
    ref: list[str],
    tokens: list[tuple[list[str], list[int]]],
    slots: set[int],
    kind: str,
    subs: list[dict[str, str]],
) -> str:
    """The shared content of a group: the reference's space-separated tokens with each run of
    slot positions a tag (what all members' values of a run start or end with stays in the
    content); each member's value per tag goes into its `subs`. `tokens`: each distinct token
    list of the group with the positions of the members that have it."""
    out: list[str] = []
    pos = 0
    for k, (a, b) in enumerate(_runs(slots)):
        tag = f"-{MARKER}{kind}{k}-"
        values = [" ".join(tt[a:b]) for tt, _ in tokens]
        pre, post = _common(values)  # the same over distinct values as over all members'
        v0 = values[0]
        out += ref[pos:a]
        out.append(v0[:pre] + tag + v0[len(v0) - post :])
        for (_, members), v in zip(tokens, values, strict=True):
            v = v[pre : len(v) - post]
            for i in members:
                subs[i][tag] = v
        pos = b
    out += ref[pos:]
    return " ".join(out)


def _first_message(resp: Any) -> str | None:
    doc = json_or_none(resp)
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        msg = errors[0].get("message")
        if isinstance(msg, str) and "@" not in msg:
            return msg[:300]
    return None


@dataclass
class _Affix:
    """Texts that differ only in one middle run: what they all start and end with."""

    ref: str
    pre: int  # length of the shared start (of `ref`)
    post: int  # length of the shared end
    shortest: int
    longest: int
    equal: bool = True  # every member's text is `ref`

    def join(self, t: str) -> tuple[int, int] | None:
        """The shared start and end lengths with `t` added; None if some member's middle
        would be empty or longer than MAX_AFFIX_VALUE."""
        if self.equal and t == self.ref:
            return self.pre, self.post
        ref = self.ref
        shortest, longest = min(self.shortest, len(t)), max(self.longest, len(t))
        head = ref if self.equal else ref[: self.pre]
        pre = len(commonprefix([head, t]))
        tail = ref if self.equal else ref[len(ref) - self.post :]
        post = len(commonprefix([tail[::-1], t[::-1]]))
        post = min(post, shortest - pre - 1)  # every member keeps a non-empty middle
        if post < 0 or longest - pre - post > MAX_AFFIX_VALUE:
            return None
        return pre, post


def _affix_merge(groups: list[_Group]) -> list[_Group]:
    """Groups of identical messages that the token pass could not merge (the differing value
    is not space-separated: `王伟，您好！`) merge when their text and HTML each differ in one
    middle run: each run becomes a tag (`-mcrm_a0-` in the text, `-mcrm_b0-` in the HTML)
    and each member's run its value. A merged group whose values could form or hold a tag
    across the boundary stays as it was."""
    plain = [
        g for g in groups if g.members[0].factorable and not g.text_slots and not g.html_slots
    ]
    if len(plain) < 2:
        return groups
    clusters: list[tuple[list[_Group], _Affix, _Affix]] = []
    for g in plain:
        x = g.members[0]
        for members, ta, ha in clusters[-MAX_CANDIDATES:]:
            jt = ta.join(x.text)
            jh = ha.join(x.html) if jt is not None else None
            if jt is None or jh is None:
                continue
            for a, (pre, post), t in ((ta, jt, x.text), (ha, jh, x.html)):
                if not (a.equal and t == a.ref):
                    a.equal = False
                a.pre, a.post = pre, post
                a.shortest, a.longest = min(a.shortest, len(t)), max(a.longest, len(t))
            members.append(g)
            break
        else:
            t, h = x.text, x.html
            clusters.append(
                ([g], _Affix(t, len(t), 0, len(t), len(t)), _Affix(h, len(h), 0, len(h), len(h)))
            )
    merged: dict[int, _Group | None] = {}
    for members, ta, ha in clusters:
        if len(members) < 2:
            continue
        one = _affixed(members, ta, ha)
        if one is not None:
            merged[id(members[0])] = one
            for m in members[1:]:
                merged[id(m)] = None
    out = []
    for g in groups:
        k = id(g)
        if k not in merged:
            out.append(g)
        else:
            mg = merged[k]
            if mg is not None:
                out.append(mg)
    return out


def _affixed(groups: list[_Group], ta: _Affix, ha: _Affix) -> _Group | None:
    """One group of the members of `groups`, their text and HTML middles as substitutions;
    None when a middle or a boundary would hold `mcrm_`."""
    parts: list[tuple[str, str, str, int] | None] = []
    for a, kind in ((ta, "a"), (ha, "b")):
        if a.equal:
            parts.append(None)
            continue
        head, tail = a.ref[: a.pre], a.ref[len(a.ref) - a.post :]
        parts.append((head, tail, f"-{MARKER}{kind}0-", head.count(MARKER) + tail.count(MARKER)))
    # the members of a plain group share their text and HTML: each distinct pair is cut
    # once, and the members change only when every one of them can (else nothing changes)
    cut: dict[tuple[str, str], tuple[str, str, list[tuple[str, str]]]] = {}
    for g in groups:
        for x in g.members:
            if (x.text, x.html) in cut:
                continue
            text, html = x.text, x.html
            values: list[tuple[str, str]] = []
            for i, p in enumerate(parts):
                if p is None:
                    continue
                head, tail, tag, markers = p
                t = text if i == 0 else html
                if t.count(MARKER) != markers:
                    return None  # a tag in the middle, or one across its edges
                values.append((tag, t[len(head) : len(t) - len(tail)]))
                if i == 0:
                    text = head + tag + tail
                else:
                    html = head + tag + tail
            cut[x.text, x.html] = (text, html, values)
    out: list[_Msg] = []
    for g in groups:
        for x in g.members:
            text, html, values = cut[x.text, x.html]
            x.text, x.html = text, html
            for tag, v in values:
                x.subs[tag] = v
            out.append(x)
    return _Group(out)


_RAW, _ESCAPED = f"-{MARKER}u0-", f"-{MARKER}u1-"


def _from_shared(
    shared: tuple[Shared, str], cache: dict[Any, Any]
) -> tuple[str, str, dict[str, str]] | None:
    """A message the columnar path built, factored from its shared parts: the value is the
    substitution (verbatim where the part prints it verbatim, HTML-escaped where escaped:
    one tag when escaping leaves the value as it is), without looking for it again. None
    when the content or the value holds `mcrm_` (the usual factoring then decides)."""
    sh, value = shared
    q = html_escape(value)
    two = q != value
    key = (sh, two)
    tpl = cache.get(key)
    if tpl is None:
        if any(MARKER in v for v in sh.parts.values()):
            tpl = cache[key] = ()
        else:
            out = []
            used = set()
            for part in ("text", "html"):
                v = sh.parts.get(part, "")
                if part in sh.escaped:
                    tag = _ESCAPED if sh.escaped[part] and two else _RAW
                    v = v.replace(sh.sentinel, tag)
                    used.add(tag)
                out.append(v)
            tpl = cache[key] = (out[0], out[1], _RAW in used, _ESCAPED in used)
    if not tpl or MARKER in value:
        return None
    text, html, raw, escaped = tpl
    subs = {}
    if raw:
        subs[_RAW] = value
    if escaped:
        subs[_ESCAPED] = q
    return text, html, subs
