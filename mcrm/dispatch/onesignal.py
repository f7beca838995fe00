"""OneSignal (reference/providers.md §2.3): one notification per batch of up to 2,000 users,
deduplicated by OneSignal on our idempotency key for 30 days.

- `POST {base}/notifications?c=push`, `Authorization: Key <App API key>`, the lane's `app_id`.
  Users are targeted by `include_aliases.external_id` (the mcrm user id; OneSignal manages the
  device tokens), or with `target: subscription_id` by `include_subscription_ids` (the
  device's push token column holds the subscription id).
- **Content is per request**, so a batch is cut into groups of equal content (title, body,
  deeplink), one request each, in order of first appearance.
- **The key:** a group's batch key is `uuid5(MCRM_NS, json.dumps(sorted(member keys)))` of
  its own members (a retried group has the same members, so the same key, in whatever batch
  the dispatcher claims it again) and the wire's `idempotency_key` is a UUID (version 4
  bits) from the SHA-256 of the batch key (§2.3 rule): deterministic, so resending exactly
  that batch — after a 5xx, a timeout or a lost connection — gets OneSignal's first answer
  back instead of a second notification.
  That is why `dedupes` is True.
- **Partial answers:** a 200 with `errors.invalid_aliases` (users without a subscription:
  invalid_recipient `no_subscription`, not registered as dead addresses) or
  `errors.invalid_player_ids` (dead subscriptions: invalid_recipient, registry reason
  `subscription_invalid`) settles those rows; the rest are sent. A 200 with an empty `id`
  created nothing: every row `no_subscription`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from mcrm.dispatch.core import Outbound, Outcome, Result, batch_key, parse_retry_after
from mcrm.dispatch.http import base_url, json_or_none, session, transport_outcome
from mcrm.errors import ConfigError, Where

DEFAULT_BASE = "https://api.onesignal.com"
MAX_BATCH = 2000
OPTIONS = {"app_id", "api_key", "base_url", "timeout", "target", "batch", "ttl", "priority"}
TARGETS = ("external_id", "subscription_id")

Clock = Callable[[], float]


def idempotency_key(batch: str) -> str:
    """OneSignal's `idempotency_key` for a batch key: a UUID with version-4 bits from its
    SHA-256, valid for both the older (v3/v4) and newer (any RFC 9562) rules."""
    return str(uuid.UUID(bytes=hashlib.sha256(batch.encode()).digest()[:16], version=4))


def _errors_text(doc: Any) -> str | None:
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors, list):
        return "; ".join(str(e) for e in errors)[:200] or None
    if isinstance(errors, str):
        return errors[:200]
    return None


class OneSignal:
    channel = "push"
    dedupes = True  # OneSignal honours idempotency_key for 30 days

    def __init__(self, name: str, opts: dict[str, Any], *, clock: Clock = time.time):
        where = Where("mcrm.yaml", None, f"providers.{name}")
        unknown = set(opts) - OPTIONS
        if unknown:
            raise ConfigError(
                f"provider '{name}': unknown option(s) {', '.join(sorted(unknown))}",
                hint=f"options: {', '.join(sorted(OPTIONS))}",
                where=where,
            )
        self.name = name
        self.clock = clock
        self.app_id = str(opts.get("app_id") or "")
        self.api_key = str(opts.get("api_key") or "")
        if not self.app_id or not self.api_key:
            raise ConfigError(
                f"provider '{name}' needs app_id: and api_key: (the App API key)", where=where
            )
        try:
            uuid.UUID(self.app_id)
        except ValueError:
            raise ConfigError(
                f"provider '{name}': app_id must be the app's UUID",
                where=Where("mcrm.yaml", None, f"providers.{name}.app_id"),
            ) from None
        self.base = base_url(name, opts, DEFAULT_BASE)
        self.timeout = (5.0, float(opts.get("timeout", 30)))
        target = str(opts.get("target", "external_id"))
        if target not in TARGETS:
            raise ConfigError(
                f"provider '{name}': target must be external_id or subscription_id",
                where=Where("mcrm.yaml", None, f"providers.{name}.target"),
            )
        self.target = target
        batch = opts.get("batch", MAX_BATCH)
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
            raise ConfigError(
                f"provider '{name}': batch must be a whole number 1..{MAX_BATCH}",
                where=Where("mcrm.yaml", None, f"providers.{name}.batch"),
            )
        self.max_batch = batch
        from mcrm.dispatch.fcm import ttl_seconds

        self.ttl = ttl_seconds(name, opts.get("ttl"), 2_419_200)
        priority = opts.get("priority")
        if priority is not None and priority not in ("high", "normal"):
            raise ConfigError(
                f"provider '{name}': priority must be high or normal",
                where=Where("mcrm.yaml", None, f"providers.{name}.priority"),
            )
        self.priority = priority
        self.http = session(4)

    # --- wire ------------------------------------------------------------------------------

    def _recipient(self, m: Outbound) -> str:
        return m.user_id if self.target == "external_id" else m.address

    def body(self, group: Sequence[Outbound], key: str) -> dict[str, Any]:
        first = group[0]
        doc: dict[str, Any] = {"app_id": self.app_id}
        ids = [self._recipient(m) for m in group]
        if self.target == "external_id":
            doc["target_channel"] = "push"
            doc["include_aliases"] = {"external_id": ids}
        else:
            doc["include_subscription_ids"] = ids
        if first.parts.get("title"):
            doc["headings"] = {"en": first.parts["title"]}
        doc["contents"] = {"en": first.parts.get("body", "")}
        data: dict[str, Any] = {"mcrm_batch": key}
        if len(group) == 1:
            data["mcrm_id"] = first.idempotency_key
        if first.parts.get("deeplink"):
            data["deeplink"] = first.parts["deeplink"]
        doc["data"] = data
        if self.ttl is not None:
            doc["ttl"] = self.ttl
        if self.priority is not None:
            doc["priority"] = 10 if self.priority == "high" else 5
        doc["idempotency_key"] = idempotency_key(key)
        return doc

    @staticmethod
    def groups(batch: Sequence[Outbound]) -> list[list[int]]:
        """Indexes of the batch by equal content, in order of first appearance."""
        out: dict[tuple[str, str, str], list[int]] = {}
        for i, m in enumerate(batch):
            k = (m.parts.get("title", ""), m.parts.get("body", ""), m.parts.get("deeplink", ""))
            out.setdefault(k, []).append(i)
        return list(out.values())

    @staticmethod
    def group_key(batch: Sequence[Outbound], idx: Sequence[int]) -> str:
        # always from the group's own members: a retry of part of a batch (the rest went
        # through) must reuse the key its group had, whatever batch it is claimed in now
        return batch_key([batch[i].idempotency_key for i in idx])

    def send(self, batch: Sequence[Outbound]) -> list[Result]:
        results: list[Result | None] = [None] * len(batch)
        for idx in self.groups(batch):
            for start in range(0, len(idx), MAX_BATCH):
                part = idx[start : start + MAX_BATCH]
                key = self.group_key(batch, part)
                group = [batch[i] for i in part]
                for i, r in zip(part, self._send(group, key), strict=True):
                    results[i] = r
        return [r for r in results if r is not None]

    def _send(self, group: Sequence[Outbound], key: str) -> list[Result]:
        body = json.dumps(self.body(group, key), ensure_ascii=False, separators=(",", ":"))
        headers = {
            "Authorization": f"Key {self.api_key}",
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
        }
        try:
            resp = self.http.post(
                f"{self.base}/notifications",
                params={"c": "push"},
                data=body.encode("utf-8"),
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except Exception as e:
            outcome, code = transport_outcome(e)
            return [Result(m.outbox_id, outcome, error_code=code) for m in group]
        return self.classify(group, resp.status_code, resp.headers, json_or_none(resp))

    def classify(self, group: Sequence[Outbound], st: int, headers: Any, doc: Any) -> list[Result]:
        """One answer -> a Result per member (providers.md §2.3 table)."""

        def every(outcome: Outcome, code: str, **kw: Any) -> list[Result]:
            return [
                Result(m.outbox_id, outcome, error_code=code, error_detail=_errors_text(doc), **kw)
                for m in group
            ]

        if 200 <= st < 300:
            nid = doc.get("id") if isinstance(doc, dict) else None
            if not nid:  # nothing created: nobody in the group is reachable
                return every(Outcome.INVALID_RECIPIENT, "no_subscription")
            errors = doc.get("errors")
            aliases: set[str] = set()
            dead: set[str] = set()
            if isinstance(errors, dict):
                bad = errors.get("invalid_aliases")
                if isinstance(bad, dict):
                    for ids in bad.values():
                        if isinstance(ids, list):
                            aliases.update(str(i) for i in ids)
                players = errors.get("invalid_player_ids")
                if isinstance(players, list):
                    dead.update(str(i) for i in players)
            out = []
            for m in group:
                rid = self._recipient(m)
                if rid in dead:
                    out.append(
                        Result(
                            m.outbox_id,
                            Outcome.INVALID_RECIPIENT,
                            error_code="invalid_player_ids",
                            mark="invalid",
                            mark_reason="subscription_invalid",
                        )
                    )
                elif rid in aliases:
                    out.append(
                        Result(
                            m.outbox_id,
                            Outcome.INVALID_RECIPIENT,
                            error_code="no_subscription",
                            error_detail="the user has no push subscription",
                        )
                    )
                else:
                    out.append(Result(m.outbox_id, Outcome.SENT, provider_message_id=str(nid)))
            return out
        code = str(st)
        if st == 429:
            now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            after = parse_retry_after(headers.get("Retry-After"), now)
            return every(Outcome.THROTTLED, code, retry_after_s=after)
        if st in (401, 403):
            return every(Outcome.AUTH, code)
        text = (_errors_text(doc) or "").lower()
        if st == 400 and "app_id not found" in text:
            return every(Outcome.AUTH, "app_id_not_found")  # configuration, not the message
        if st >= 500:
            now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            after = parse_retry_after(headers.get("Retry-After"), now)
            return every(Outcome.RETRY, code, retry_after_s=after)
        if 300 <= st < 400:
            return [
                Result(
                    m.outbox_id,
                    Outcome.RETRY,
                    error_code=code,
                    error_detail="redirect not followed",
                )
                for m in group
            ]
        if st == 404:
            return every(Outcome.AUTH, code)  # no such endpoint: base_url
        return every(Outcome.PERMANENT, code)

    def close(self) -> None:
        self.http.close()
