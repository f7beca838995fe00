"""`providers:` in mcrm.yaml: one entry per lane, and the adapters behind them.

```yaml
providers:
  outbox:                       # the entry's name is the lane
    type: file                  # fcm expo onesignal smtp sendgrid twilio inapp webhook file
    channels: [push, email, sms, inapp]   # for the channel-agnostic types (file, webhook)
    path: .mcrm/outbox.jsonl
```

A campaign channel is sent through the first entry (in file order) that carries it: the
provider type's own channel (fcm -> push, smtp -> email, …), or `channels:` for `file` and
`webhook`. Values may use `${ENV}`; they are expanded only when the lane is used, so an unset
secret of a provider nobody sends through is no error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcrm.dispatch.core import Outbound, Outcome, Result
from mcrm.errors import ConfigError, Where, did_you_mean

if TYPE_CHECKING:
    from mcrm.config import Workspace

TYPES = {
    "fcm": "push",
    "expo": "push",
    "onesignal": "push",
    "smtp": "email",
    "sendgrid": "email",
    "twilio": "sms",
    "inapp": "inapp",
    "webhook": "any",
    "file": "any",
}
CHANNELS = ("push", "email", "sms", "inapp")


@dataclass(frozen=True)
class ProviderConf:
    name: str
    type: str
    channels: tuple[str, ...]
    options: dict[str, Any]


def load_providers(ws: Workspace) -> list[ProviderConf]:
    out = []
    for name, raw in ws.settings.providers.items():
        where = Where("mcrm.yaml", None, f"providers.{name}")
        if not isinstance(raw, dict):
            raise ConfigError(f"provider '{name}' must be a mapping with a type", where=where)
        kind = raw.get("type")
        if kind not in TYPES:
            raise ConfigError(
                f"provider '{name}': unknown type {kind!r}",
                hint=did_you_mean(str(kind), list(TYPES)) or f"types: {', '.join(TYPES)}",
                where=where,
            )
        if TYPES[kind] == "any":
            chans = raw.get("channels", list(CHANNELS))
            if not isinstance(chans, list) or any(c not in CHANNELS for c in chans):
                raise ConfigError(
                    f"provider '{name}': channels must be a list of {', '.join(CHANNELS)}",
                    where=where,
                )
            channels = tuple(chans)
        else:
            channels = (TYPES[kind],)
        opts = {k: v for k, v in raw.items() if k not in ("type", "channels")}
        out.append(ProviderConf(str(name), str(kind), channels, opts))
    return out


def lane_for(providers: list[ProviderConf], channel: str) -> ProviderConf:
    for p in providers:
        if channel in p.channels:
            return p
    raise ConfigError(
        f"no provider in mcrm.yaml sends {channel} messages",
        hint=f"add one under providers:, e.g. outbox: {{type: file, channels: [{channel}]}}",
        where=Where("mcrm.yaml", None, "providers"),
    )


def make_adapter(ws: Workspace, conf: ProviderConf, env: dict[str, str] | None = None) -> Any:
    from mcrm.config import expand_env

    opts = expand_env(conf.options, dict(os.environ) if env is None else env)
    if conf.type == "file":
        return FileOutbox(ws, conf.name, opts)
    if conf.type in ("webhook", "inapp"):
        from mcrm.dispatch.webhook import Webhook

        return Webhook(conf.name, opts, inapp=conf.type == "inapp")
    if conf.type == "smtp":
        from mcrm.dispatch.smtp import Smtp

        return Smtp(conf.name, opts)
    if conf.type == "fcm":
        from mcrm.dispatch.fcm import Fcm

        return Fcm(conf.name, opts, root=ws.root)
    if conf.type == "expo":
        from mcrm.dispatch.expo import Expo

        return Expo(conf.name, opts)
    if conf.type == "onesignal":
        from mcrm.dispatch.onesignal import OneSignal

        return OneSignal(conf.name, opts)
    if conf.type == "sendgrid":
        from mcrm.dispatch.sendgrid import SendGrid

        return SendGrid(conf.name, opts)
    if conf.type == "twilio":
        from mcrm.dispatch.twilio import Twilio

        return Twilio(conf.name, opts)
    raise ConfigError(  # pragma: no cover - load_providers accepts only TYPES
        f"provider '{conf.name}': unknown type {conf.type!r}",
        where=Where("mcrm.yaml", None, f"providers.{conf.name}"),
    )


class FileOutbox:
    """JSON lines for hand-off and audits (reference/providers.md §5.4): each batch is
    appended, flushed and fsynced before its rows are `sent`; consumers dedupe on `id`.
    Addresses only with `include_pii: true`."""

    channel = "any"
    max_batch = 500
    dedupes = False

    def __init__(self, ws: Workspace, name: str, opts: dict[str, Any]):
        self.name = name
        path = opts.get("path", ".mcrm/outbox.jsonl")
        self.path = Path(path) if Path(path).is_absolute() else ws.root / path
        self.include_pii = bool(opts.get("include_pii", False))
        batch = opts.get("batch", 500)
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 10_000:
            raise ConfigError(
                f"provider '{name}': batch must be a whole number 1..10000, found {batch!r}",
                where=Where("mcrm.yaml", None, f"providers.{name}.batch"),
            )
        self.max_batch = batch
        unknown = set(opts) - {"path", "include_pii", "batch"}
        if unknown:
            raise ConfigError(
                f"provider '{name}': unknown option(s) {', '.join(sorted(unknown))}",
                hint="file providers take path, include_pii and batch",
                where=Where("mcrm.yaml", None, f"providers.{name}"),
            )

    def send(self, batch: Sequence[Outbound]) -> list[Result]:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = []
        for m in batch:
            rec: dict[str, Any] = {
                "id": m.idempotency_key,
                "campaign": m.campaign,
                "occurrence": m.occurrence,
                "variant": m.variant,
                "user_id": m.user_id,
                "channel": m.channel,
                "content": m.payload if m.payload is not None else m.parts,
                "headers": m.headers or None,
                "created_at": now,
            }
            if self.include_pii:
                rec["address"] = m.address
            lines.append(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write("".join(lines))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            return [
                Result(m.outbox_id, Outcome.RETRY, error_code="io", error_detail=e.strerror)
                for m in batch
            ]
        return [Result(m.outbox_id, Outcome.SENT, provider_message_id=None) for m in batch]

    def written_ids(self) -> set[str]:
        """Every id in the file (crash recovery settles `sending` rows from it)."""
        if not self.path.is_file():
            return set()
        ids = set()
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    ids.add(json.loads(line)["id"])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line of a killed write: not written
        return ids

    def close(self) -> None:
        pass
