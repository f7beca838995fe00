"""Workspace discovery and `mcrm.yaml`.

Which folder: `--workspace DIR`, then `MCRM_WORKSPACE`, then the first folder, walking up from the
current directory, that holds `mcrm.yaml` or `segments.yaml` (as dbt finds `dbt_project.yml`).
The library never reads the environment or the cwd itself: `find_workspace` is called by the CLI
and everything else takes a `Workspace`.

`${NAME}` (and `${NAME:-default}`) in any string is replaced at load; a missing variable is a
config error naming it. The `providers:` section is the exception: its values are expanded
only when a provider is used (and by `mcrm config validate`), so that a cron job that only
imports data does not need the SendGrid key in its environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcrm.errors import ConfigError, UsageError, Where
from mcrm.yamlio import Problems, YamlDoc, expect_str, load_yaml

CONFIG_FILE = "mcrm.yaml"
SEGMENTS_FILE = "segments.yaml"
TOP_KEYS = {"database", "timezone", "base_currency", "delivery", "providers", "imports"}
IMPORT_KEYS = {"max_reject_rate", "fx_max_age_days"}
SECRET_RE = re.compile(r"(key|secret|token|password|passwd|auth|credential|private)", re.I)
ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class ImportSettings:
    max_reject_rate: float = 0.01
    fx_max_age_days: int = 7


@dataclass(frozen=True)
class Settings:
    """The merged `mcrm.yaml` (defaults for every key that is absent)."""

    database: str = ".mcrm/mcrm.duckdb"
    timezone: str = "UTC"
    base_currency: str = "EUR"
    imports: ImportSettings = field(default_factory=ImportSettings)
    delivery: dict[str, Any] = field(default_factory=dict)
    providers: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Workspace:
    root: Path
    settings: Settings

    @property
    def db_path(self) -> Path:
        p = Path(self.settings.database)
        return p if p.is_absolute() else self.root / p

    @property
    def state_dir(self) -> Path:
        return self.root / ".mcrm"

    def rel(self, path: Path) -> str:
        """A path as the user would write it: relative to the workspace when inside it."""
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


def find_workspace(explicit: str | None, env: dict[str, str], cwd: Path) -> Path:
    """The workspace folder (see the module docstring for the order)."""
    given = explicit or env.get("MCRM_WORKSPACE")
    if given:
        root = Path(given).expanduser()
        if not root.is_dir():
            raise UsageError(f"workspace folder not found: {given}")
        return root.resolve()
    here = cwd.resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file() or (folder / SEGMENTS_FILE).is_file():
            return folder
    raise UsageError(
        "no mcrm workspace here: no mcrm.yaml or segments.yaml in this folder or above",
        hint="cd into a workspace, pass --workspace DIR, or create mcrm.yaml",
    )


def expand_env(value: Any, env: dict[str, str], where: Where | None = None) -> Any:
    """Replace `${NAME}` / `${NAME:-default}` in strings (recursively)."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"environment variable {name} is not set",
                hint=f"export {name}=... or write ${{{name}:-default}}",
                where=where,
            )

        return ENV_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env, where) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, where) for v in value]
    return value


def load_settings(root: Path, env: dict[str, str], problems: Problems | None = None) -> Settings:
    """Read and validate `mcrm.yaml`; with `problems`, collect instead of raising."""
    own = problems is None
    probs = problems if problems is not None else Problems()
    doc = load_yaml(root / CONFIG_FILE, CONFIG_FILE)
    data = doc.data
    if data is None:
        return Settings()
    if not isinstance(data, dict):
        probs.error("mcrm.yaml must be a mapping of settings", where=doc.where(()))
        if own:
            probs.raise_first()
        return Settings()
    probs.unknown_keys(doc, (), data, TOP_KEYS)
    kw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in ("database", "timezone", "base_currency"):
        if key in data:
            raw = expect_str(doc, (key,), data[key], probs)
            if raw is None:
                continue
            try:
                val = expand_env(raw, env, doc.where((key,)))
            except ConfigError as e:
                probs.errors.append(e)
                continue
            kw[key] = val
            sources[key] = f"{CONFIG_FILE}:{doc.lines.get((key,))}"
    if "timezone" in kw:
        _check_zone(kw["timezone"], doc, probs)
    if "base_currency" in kw:
        cur = kw["base_currency"]
        if not re.fullmatch(r"[A-Z]{3}", cur):
            probs.error(
                f"base_currency must be an ISO 4217 code like EUR, found '{cur}'",
                where=doc.where(("base_currency",)),
            )
    if "imports" in data:
        kw["imports"] = _imports(doc, data["imports"], probs)
        sources["imports"] = f"{CONFIG_FILE}:{doc.lines.get(('imports',))}"
    for key in ("delivery", "providers"):
        if key in data:
            if not isinstance(data[key], dict):
                probs.error(f"'{key}' must be a mapping", where=doc.where((key,)))
                continue
            value = data[key]
            if key == "delivery":
                try:
                    value = expand_env(value, env, doc.where((key,)))
                except ConfigError as e:
                    probs.errors.append(e)
                    continue
            kw[key] = value
            sources[key] = f"{CONFIG_FILE}:{doc.lines.get((key,))}"
    if own:
        probs.raise_first()
    return Settings(**kw, sources=sources)


def _check_zone(zone: str, doc: YamlDoc, probs: Problems) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        probs.error(
            f"unknown time zone '{zone}'",
            where=doc.where(("timezone",)),
            hint="use an IANA name such as Europe/Prague or UTC",
        )


def _imports(doc: YamlDoc, value: Any, probs: Problems) -> ImportSettings:
    if not isinstance(value, dict):
        probs.error("'imports' must be a mapping", where=doc.where(("imports",)))
        return ImportSettings()
    probs.unknown_keys(doc, ("imports",), value, IMPORT_KEYS)
    rate = value.get("max_reject_rate", 0.01)
    rate = parse_rate(rate) if isinstance(rate, str) else rate
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
        probs.error(
            "imports.max_reject_rate must be a fraction 0..1 or a percentage like '1%'",
            where=doc.where(("imports", "max_reject_rate")),
        )
        rate = 0.01
    age = value.get("fx_max_age_days", 7)
    if not isinstance(age, int) or isinstance(age, bool) or age < 0:
        probs.error(
            "imports.fx_max_age_days must be a whole number of days >= 0",
            where=doc.where(("imports", "fx_max_age_days")),
        )
        age = 7
    return ImportSettings(max_reject_rate=float(rate), fx_max_age_days=age)


def parse_rate(text: str) -> float | None:
    """`'1%'` -> 0.01, `'0.05'` -> 0.05; None when it is neither."""
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        return None


def open_workspace(explicit: str | None, env: dict[str, str], cwd: Path) -> Workspace:
    root = find_workspace(explicit, env, cwd)
    return Workspace(root, load_settings(root, env))


def mask(value: Any, key: str = "") -> Any:
    """Secrets masked for display: values under secret-looking keys become `****`."""
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if SECRET_RE.search(key) and value not in (None, ""):
        return "****"
    if isinstance(value, str) and ENV_RE.search(value) and SECRET_RE.search(key):
        return "****"
    return value


def validate_config(root: Path, env: dict[str, str]) -> Problems:
    """Every problem in mcrm.yaml, including unset variables in `providers:`."""
    probs = Problems()
    settings = load_settings(root, env, probs)
    doc = load_yaml(root / CONFIG_FILE, CONFIG_FILE)
    for name, conf in settings.providers.items():
        try:
            expand_env(conf, env, doc.where(("providers", name)))
        except ConfigError as e:
            probs.errors.append(e)
    return probs
