"""The template engine: sandboxed Jinja2, locale fallback, one-line errors, message assembly.

Why this shape:

- **Sandbox.** Templates are reviewed code, but they render personal data and run inside cron,
  so they get `ImmutableSandboxedEnvironment` (no `_`-attributes, no mutation of lists or
  dicts, `str.format` checked) and a loader that refuses absolute paths, `..` and symlinks
  leaving `campaigns/` (a sandbox escape would otherwise be `{% include '../mcrm.yaml' %}`).
  `'a' * n` and `n ** m` are capped too (`MAX_SEQUENCE`, `MAX_EXPONENT`): one bad template
  must not eat the machine mid-send. Output is never re-evaluated, so `{{ … }}` or `<script>`
  in user data is just text (HTML-escaped in HTML templates).
- **Strict undefined, and no None.** A missing variable raises instead of sending "Hello ,";
  so does printing None (an empty profile field: "Hello None," is as bad). `default()` is the
  fallback idiom and, unlike plain Jinja's, also replaces None (as Liquid's does in Braze).
  Every Jinja failure becomes one `TemplateError` whose `where` is the template file and line
  *that failed* (an include's, a locale variant's), found in the rewritten traceback; the
  message never contains rendered values (they may be personal data).
- **Whitespace.** `trim_blocks` + `lstrip_blocks`, so `{% if %}` on its own line leaves no
  blank line in a message, and no `keep_trailing_newline`: the newline editors put at the end
  of a file is not part of a push body or subject. `render_message` strips one-line parts
  (title, subject, deeplink, SMS body) and folds line breaks inside title, subject and
  deeplink (header injection through a subject is impossible).
- **Autoescape** for `*.html.j2`, `*.htm.j2`, `*.html`, `*.htm`; off elsewhere (text, SMS,
  push). `*.json.j2` templates (in-app) render in a twin environment whose `{{ }}` output is
  escaped for use *inside* a JSON string (`"title": "Hi {{ user.first_name }}"` is safe even
  for a name containing `"`); `| tojson` emits a whole JSON value unescaped. The rendered
  in-app body must parse as JSON.
- **Locale files.** `resolve("push/body.j2", "zh-CN")` tries `body.zh-CN.j2`,
  `body.zh-Hans-CN.j2`, `body.zh-Hans.j2`, `body.zh.j2`, then `body.j2` (the script comes from
  CLDR likely subtags: zh-CN is Simplified, zh-TW Traditional). The tag goes before the
  content suffix: `email.cs.html.j2`, `email.cs.txt.j2`, `inapp.cs.json.j2`. File names match
  case-insensitively; directory listings and choices are cached for the renderer's life (one
  run), as are compiled templates (`auto_reload` off: no stat per render).
- **Filters** read the render context: `locale` (the user's tag; `Renderer.default_locale`
  when absent) and `currency` (the default for `money`). `render_message` adds `locale`.
  Includes are not locale-resolved; their paths, like all template paths, are relative to
  `campaigns/`.
- **Skip.** `{% skip "reason" %}` raises `TemplateSkip` (control flow, not an error); the plan
  records it as the `template_skip` suppression with the reason.
- **Unsubscribe tokens** (RFC 8058) are stateless and HMAC-signed, so the endpoint outside mcrm
  verifies them with the workspace secret and no database; see `unsubscribe_token`.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import jinja2.meta
from jinja2 import nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from mcrm.campaigns import i18n
from mcrm.campaigns.sms import SmsInfo, sms_segments
from mcrm.errors import ConfigError, McrmError, Where, did_you_mean

MAX_SEQUENCE = 100_000
"""Longest string or list a template may build with `*`."""
MEMO_SIZE = 100_000
"""Formatted values remembered per renderer (cleared when full)."""
MAX_EXPONENT = 1_000
"""Largest integer exponent a template may use with `**`."""

HTML_SUFFIXES = (".html.j2", ".htm.j2", ".html", ".htm")
CONTENT_SUFFIXES = (".html.j2", ".htm.j2", ".txt.j2", ".text.j2", ".json.j2", ".md.j2")
"""Compound suffixes the locale tag goes in front of (`email.cs.html.j2`)."""
ONE_LINE_PARTS = frozenset({"title", "subject", "deeplink"})
"""Parts that are one line: surrounding whitespace stripped, inner line breaks folded."""
STRIPPED_PARTS = ONE_LINE_PARTS | {"sms.body"}
LOCALE_FILTERS = frozenset({"money", "number", "percent", "date", "datetime"})
INLINE = "<inline>"
_LINE_BREAKS = re.compile(r"[ \t]*[\r\n\v\f\x85\u2028\u2029]+[ \t]*")
_ANY_SPACE = re.compile(r"\s+")
_ASCII_SPACE = " \t\r\n\v\f"
"""Stripped from the ends of parts; a trailing NBSP (part of `15 %`) is content."""


class TemplateError(ConfigError):
    """A template that does not compile or render; `where` is the failing file and line."""


class TemplateSkip(Exception):
    """`{% skip "reason" %}`: do not send to this user. Never reaches the user as an error."""

    def __init__(self, reason: str, where: Where | None = None):
        super().__init__(reason)
        self.reason = reason
        self.where = where


class TokenError(McrmError):
    """An unsubscribe token that is malformed, forged or tampered with."""


# --- the Jinja environment -----------------------------------------------------------------


class _CampaignsLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader that refuses every path leaving the campaigns folder."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        super().__init__(str(self.root), encoding="utf-8", followlinks=False)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if _outside(template):
            raise SecurityError(f"template path '{template}' is outside campaigns/")
        source, filename, uptodate = super().get_source(environment, template)
        if not Path(filename).resolve().is_relative_to(self.root):
            raise SecurityError(f"template path '{template}' leads outside campaigns/")
        return source, filename, uptodate


def _outside(name: str) -> bool:
    return (
        name.startswith(("/", "\\", "~"))
        or "\\" in name
        or "\x00" in name
        or re.match(r"^[A-Za-z]:", name) is not None
        or ".." in name.split("/")
    )


class _SkipExtension(Extension):
    """`{% skip %}` / `{% skip "reason" %}` / `{% skip "low stock: " ~ product.name %}`."""

    tags = {"skip"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        if parser.stream.current.type == "block_end":
            reason: nodes.Expr = nodes.Const("skipped by the template")
        else:
            reason = parser.parse_expression()
        return nodes.Output([self.call_method("_skip", [reason], lineno=lineno)], lineno=lineno)

    def _skip(self, reason: Any) -> str:
        raise TemplateSkip(str(reason))


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(n, int)
                    and len(seq) * n > MAX_SEQUENCE
                ):
                    raise SecurityError(f"sequence longer than {MAX_SEQUENCE} refused")
        elif operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent over {MAX_EXPONENT} refused")
        return super().call_binop(context, operator, left, right)


def _autoescape(name: str | None) -> bool:
    return bool(name) and str(name).lower().endswith(HTML_SUFFIXES)


class EmptyValue(ValueError):
    """A template printed None: an empty profile field or statistic (never "Hello None,")."""


def _finalize(value: Any) -> Any:
    if value is None:
        raise EmptyValue("the template prints an empty value (None)")
    return value


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's `default`, also for None: an empty profile field (None in the database) takes
    the fallback like a missing one, as Liquid's `default` does in Braze templates."""
    if isinstance(value, jinja2.Undefined) or value is None or (boolean and not value):
        return default_value
    return value


def _json_finalize(value: Any) -> Any:
    if value is None:
        raise EmptyValue("the template prints an empty value (None)")
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    return value


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedMessage:
    """One user's message, exactly as it would be sent."""

    channel: str
    parts: dict[str, str]
    """Part name -> rendered text (push: title, body, deeplink; email: subject, html, text)."""
    files: dict[str, str]
    """Part name -> the template file used, relative to campaigns/ (`<inline>` for inline)."""
    locale: str | None
    content_hash: str
    """sha256 hex of `json.dumps([channel, sorted(parts.items())])` (UTF-8, compact)."""
    sms: SmsInfo | None = None
    payload: Any = field(default=None, compare=False)
    """The parsed in-app JSON body (inapp only)."""


def content_hash(channel: str, parts: Mapping[str, str]) -> str:
    """The stable hash of a rendered message (outbox dedup, golden previews)."""
    blob = json.dumps([channel, sorted(parts.items())], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# --- the renderer ----------------------------------------------------------------------------


def attributes_read(asts: Iterable[nodes.Node], name: str) -> set[str] | None:
    """`Renderer.attributes` over parsed templates: the constant keys read of `name`, or None
    when some use of `name` is not a constant attribute or item."""
    keys: set[str] = set()
    for ast in asts:
        uses = sum(1 for n in ast.find_all(nodes.Name) if n.name == name)
        direct = 0
        for g in ast.find_all(nodes.Getattr):
            if isinstance(g.node, nodes.Name) and g.node.name == name:
                keys.add(g.attr)
                direct += 1
        for i in ast.find_all(nodes.Getitem):
            if isinstance(i.node, nodes.Name) and i.node.name == name:
                if not (isinstance(i.arg, nodes.Const) and isinstance(i.arg.value, str)):
                    return None
                keys.add(i.arg.value)
                direct += 1
        if uses != direct:
            return None
    return keys


class Renderer:
    """Renders the templates under one `campaigns/` folder (one instance per run)."""

    def __init__(
        self,
        campaigns_dir: Path,
        *,
        default_locale: str = "en",
        display_prefix: str = "campaigns/",
    ):
        self.root = Path(campaigns_dir).resolve()
        self.default_locale = default_locale
        self.display_prefix = display_prefix
        loader = _CampaignsLoader(self.root)
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": False,
            "auto_reload": False,
            "cache_size": 2000,
            "extensions": [_SkipExtension],
        }
        self.env = _Sandbox(autoescape=_autoescape, finalize=_finalize, **common)
        self.json_env = _Sandbox(autoescape=False, finalize=_json_finalize, **common)
        for env in (self.env, self.json_env):
            env.globals.pop("lipsum", None)
            env.filters.update(self._filters())
            env.filters["default"] = env.filters["d"] = _default
        self._templates: dict[str, jinja2.Template] = {}
        self._globals: dict[int, dict[str, Any]] = {}
        self._inline: dict[str, jinja2.Template] = {}
        self._listing: dict[str, dict[str, str]] = {}
        self._resolved: dict[tuple[str, str | None], str] = {}

    # filters -------------------------------------------------------------------------------

    def _filters(self) -> dict[str, Callable[..., Any]]:
        default = self.default_locale
        memo: dict[tuple[Any, ...], str] = {}

        def cached(kind: str, fmt: Callable[..., str], ctx: Context, x: Any, *args: Any) -> str:
            # Babel costs tens of microseconds a call and a send formats the same few values
            # (coupon amount, expiry date) for every user: memoise per (value, args, locale)
            tag = ctx.get("locale") or default
            # aware datetimes equal across zones compare equal: the zone is part of the key
            key = (kind, type(x), x, getattr(x, "tzinfo", None), *args, tag)
            try:
                return memo[key]
            except KeyError:
                pass
            except TypeError:  # unhashable value
                return fmt(x, i18n.babel_locale(tag), *args)
            out = fmt(x, i18n.babel_locale(tag), *args)
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[key] = out
            return out

        def _money(x: Any, loc: Any, cur: str) -> str:
            return i18n.format_money(x, cur, loc)

        @pass_context
        def money(ctx: Context, amount: Any, currency: str | None = None) -> str:
            cur = currency if currency is not None else ctx.get("currency")
            if cur is None:
                raise ValueError("money: no currency given and no 'currency' in the context")
            return cached("money", _money, ctx, amount, cur)

        @pass_context
        def number(ctx: Context, x: Any, decimals: int | None = None) -> str:
            return cached("number", i18n.format_number, ctx, x, decimals)

        @pass_context
        def percent(ctx: Context, x: Any, decimals: int = 0) -> str:
            return cached("percent", i18n.format_percent, ctx, x, decimals)

        @pass_context
        def date(ctx: Context, d: Any, fmt: str = "medium") -> str:
            return cached("date", i18n.format_date, ctx, d, fmt)

        @pass_context
        def datetime(ctx: Context, d: Any, fmt: str = "medium") -> str:
            return cached("datetime", i18n.format_datetime, ctx, d, fmt)

        return {
            "money": money,
            "number": number,
            "percent": percent,
            "date": date,
            "datetime": datetime,
        }

    # locating ------------------------------------------------------------------------------

    def display(self, path: str) -> str:
        """How a template path is shown in messages: `campaigns/winback/push_body.cs.j2`."""
        return f"{self.display_prefix}{path}"

    def _env_for(self, path: str) -> jinja2.Environment:
        return self.json_env if path.lower().endswith(".json.j2") else self.env

    def _listing_of(self, directory: str) -> dict[str, str]:
        got = self._listing.get(directory)
        if got is None:
            d = self.root / directory if directory else self.root
            try:
                got = {p.name.lower(): p.name for p in d.iterdir() if p.is_file()}
            except OSError:
                got = {}
            self._listing[directory] = got
        return got

    def resolve(self, path: str, locale_tag: str | None) -> str:
        """The locale file to use for `path` (relative to campaigns/): the first existing
        candidate of `locale_candidates`, else `path` itself."""
        key = (path, locale_tag)
        got = self._resolved.get(key)
        if got is None and _outside(path):
            return path  # refused when rendered; never list a folder outside campaigns/
        if got is None:
            got = path
            directory = posixpath.dirname(path)
            listing = self._listing_of(directory)
            for cand in locale_candidates(path, locale_tag)[:-1]:
                actual = listing.get(posixpath.basename(cand).lower())
                if actual is not None:
                    got = posixpath.join(directory, actual)
                    break
            self._resolved[key] = got
        return got

    def locale_variants(self, path: str) -> list[str]:
        """`path` and its existing `name.<tag>.suffix` siblings, sorted."""
        stem, suffix = split_suffix(posixpath.basename(path))
        directory = posixpath.dirname(path)
        out = [path]
        prefix, tail = f"{stem}.".lower(), suffix.lower()
        for low, actual in sorted(self._listing_of(directory).items()):
            if low.startswith(prefix) and low.endswith(tail) and len(low) > len(prefix + tail):
                tag = low[len(prefix) : len(low) - len(tail)]
                if "." not in tag and i18n.normalize_tag(tag) is not None:
                    out.append(posixpath.join(directory, actual))
        return out

    # compiling -----------------------------------------------------------------------------

    def _template(self, path: str) -> jinja2.Template:
        t = self._templates.get(path)
        if t is None:
            t = self._env_for(path).get_template(path)
            self._templates[path] = t
        return t

    def _inline_template(self, source: str) -> jinja2.Template:
        t = self._inline.get(source)
        if t is None:
            t = self.env.from_string(source)
            self._inline[source] = t
        return t

    def _source(self, path: str) -> str:
        return self.env.loader.get_source(self.env, path)[0]  # type: ignore[union-attr]

    # rendering -----------------------------------------------------------------------------

    def render(
        self,
        path_or_source: str,
        context: Mapping[str, Any],
        *,
        inline: bool = False,
        where: Where | None = None,
    ) -> str:
        """Render a template file (a path relative to campaigns/) or, with `inline=True`, a
        template string (`where` then locates it in its YAML file for error messages).

        Raises TemplateError (file:line of the failure), TemplateSkip (the `skip` tag)."""
        try:
            t = self._inline_template(path_or_source) if inline else self._template(path_or_source)
            # Template.render(context) copies the template's globals (a ChainMap) into a new
            # dict on every call, half the cost of a short template; the copy is made once per
            # template instead and the context shared (Jinja never writes to it).
            gl = self._globals.get(id(t))
            if gl is None:
                gl = self._globals[id(t)] = dict(t.globals)
            env = t.environment
            ctx = t.new_context({**gl, **context}, shared=True)
            try:
                return env.concat(t.root_render_func(ctx))
            except Exception:
                env.handle_exception()
                raise  # pragma: no cover - handle_exception always raises
        except TemplateSkip as e:
            if e.where is None:
                e.where = self._where(e.__traceback__, path_or_source, inline, where)
            raise
        except Exception as e:
            raise self._error(e, path_or_source, inline, where) from e

    def render_message(
        self,
        channel: str,
        parts: Mapping[str, str],
        context: Mapping[str, Any],
        locale: str | None,
        *,
        inline_parts: frozenset[str] = frozenset({"deeplink"}),
    ) -> RenderedMessage:
        """Render every part of one channel's message for one user.

        `parts` maps part name -> template path (or the template text for `inline_parts`);
        each file part is resolved for `locale`. `context` gets `locale` if it has none."""
        if "locale" not in context:
            context = {**context, "locale": locale}
        out: dict[str, str] = {}
        files: dict[str, str] = {}
        for part, spec in parts.items():
            if part in inline_parts:
                text = self.render(
                    spec, context, inline=True, where=Where(key=f"{channel}.{part}")
                )
                files[part] = INLINE
            else:
                chosen = self.resolve(spec, locale)
                text = self.render(chosen, context)
                files[part] = chosen
            if part == "deeplink":
                text = _ANY_SPACE.sub("", text)
            elif part in ONE_LINE_PARTS:
                text = _LINE_BREAKS.sub(" ", text).strip(_ASCII_SPACE)
            elif f"{channel}.{part}" in STRIPPED_PARTS:
                text = text.strip(_ASCII_SPACE)
            out[part] = text
        payload = None
        if channel == "inapp" and "body" in out:
            try:
                payload = json.loads(out["body"])
            except json.JSONDecodeError as e:
                raise TemplateError(
                    f"in-app body is not valid JSON: {e.msg} (rendered line {e.lineno}, "
                    f"column {e.colno})",
                    hint="emit whole values with `| tojson`",
                    where=Where(self.display(files["body"])),
                ) from None
        sms = sms_segments(out["body"]) if channel == "sms" and "body" in out else None
        return RenderedMessage(
            channel, out, files, locale, content_hash(channel, out), sms, payload
        )

    # checking ------------------------------------------------------------------------------

    def check(self, path: str) -> list[McrmError]:
        """Compile `path` and every template it includes, extends or imports: syntax errors,
        unknown filters and tests, missing or refused includes, each with file:line."""
        problems: list[McrmError] = []
        self._check(path, None, problems, set())
        return problems

    def _check(
        self, path: str, site: Where | None, problems: list[McrmError], seen: set[str]
    ) -> None:
        if path in seen:
            return
        seen.add(path)
        try:
            self._template(path)
            ast = self._env_for(path).parse(self._source(path), path)
        except Exception as e:
            err = self._error(e, path, False, None)
            if isinstance(e, jinja2.TemplateNotFound | SecurityError) and site is not None:
                err.where = site
            problems.append(err)
            return
        for ref, lineno, optional in _references(ast):
            if optional and not (self.root / ref).is_file() and not _outside(ref):
                continue
            self._check(ref, Where(self.display(path), lineno), problems, seen)

    def _walk(self, path: str, locales: bool) -> list[nodes.Template]:
        """ASTs of `path` (and its locale variants), and everything they include, recursively."""
        todo = self.locale_variants(path) if locales else [path]
        seen: set[str] = set()
        out: list[nodes.Template] = []
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            try:
                ast = self._env_for(p).parse(self._source(p), p)
            except Exception as e:
                raise self._error(e, p, False, None) from e
            out.append(ast)
            todo.extend(ref for ref, _, _ in _references(ast) if not _outside(ref))
        return out

    def variables(self, path: str, *, locales: bool = True) -> set[str]:
        """Top-level context names `path` (its locale variants too, unless `locales=False`, and
        what they include or extend) may read: `{"user", "coupon", "locale", ...}`.

        `locale` is included when a locale filter is used, `currency` when `money` is used
        without an explicit currency. Jinja globals (`range`, `dict`, ...) are not."""
        names: set[str] = set()
        for ast in self._walk(path, locales):
            names |= jinja2.meta.find_undeclared_variables(ast)
            for f in ast.find_all(nodes.Filter):
                if f.name in LOCALE_FILTERS:
                    names.add("locale")
                if (
                    f.name == "money"
                    and not f.args
                    and not any(k.key == "currency" for k in f.kwargs)
                ):
                    names.add("currency")
        return names - set(self.env.globals)

    def attributes(self, path: str, name: str, *, locales: bool = True) -> set[str] | None:
        """The attributes of top-level `name` that `path` (locale variants and includes too)
        reads as `name.key` or `name['key']`: `{"orders"}` for `{{ stats.orders }}`. None when
        it uses `name` any other way (whole, in a loop, by a computed key, assigned): then
        everything in it may be read."""
        return attributes_read(self._walk(path, locales), name)

    def uses_skip(self, path: str, *, locales: bool = True) -> bool:
        """Whether `path` (or a locale variant, or anything included) has a `{% skip %}`."""
        return any(
            node.name == "_skip"
            for ast in self._walk(path, locales)
            for node in ast.find_all(nodes.ExtensionAttribute)
        )

    # errors --------------------------------------------------------------------------------

    def _frame(self, tb: TracebackType | None) -> tuple[str, int] | None:
        """(filename, line) of the innermost template frame of a rewritten traceback."""
        found = None
        root = str(self.root)
        while tb is not None:
            fn = tb.tb_frame.f_code.co_filename
            if fn == "<template>" or fn.startswith(root):
                found = (fn, tb.tb_lineno)
            tb = tb.tb_next
        return found

    def _rel(self, filename: str | None) -> str | None:
        if filename is None or filename == "<template>":
            return None
        try:
            return Path(filename).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    def _where(
        self, tb: TracebackType | None, path: str, inline: bool, where: Where | None
    ) -> Where:
        frame = self._frame(tb)
        if frame is None:
            return where if inline and where else Where(None if inline else self.display(path))
        rel = self._rel(frame[0])
        if rel is None:  # the inline template itself
            return where or Where(INLINE, frame[1])
        return Where(self.display(rel), frame[1], where.key if where and inline else None)

    def _error(
        self, e: BaseException, path: str, inline: bool, where: Where | None
    ) -> TemplateError:
        if isinstance(e, TemplateError):
            return e
        hint = None
        if isinstance(e, jinja2.TemplateSyntaxError):
            rel = self._rel(e.filename) if e.filename else (None if inline else path)
            loc = Where(self.display(rel), e.lineno) if rel else (where or Where(INLINE, e.lineno))
            msg = f"template syntax error: {e.message}"
            m = re.search(r"No (filter|test) named '([^']+)'", e.message or "")
            if m:
                kind = self.env.filters if m[1] == "filter" else self.env.tests
                hint = did_you_mean(m[2], set(kind))
            return TemplateError(msg, hint=hint, where=loc)
        loc = self._where(e.__traceback__, path, inline, where)
        if isinstance(e, jinja2.TemplateNotFound):
            msg = f"template not found: {self.display(str(e.name))}"
        elif isinstance(e, SecurityError):
            msg = f"refused by the template sandbox: {e}"
            hint = "templates cannot reach Python internals, files or the environment"
        elif isinstance(e, jinja2.UndefinedError):
            msg = self._undefined_message(str(e), loc, path if inline else None)
            hint = 'use `| default("…")` for optional values'
        elif isinstance(e, EmptyValue):
            msg = str(e)
            hint = 'the value is empty for this user: use `| default("…")` or `{% if … %}`'
        elif isinstance(e, OverflowError) and "MAX_RANGE" in str(e):
            msg = "refused by the template sandbox: range too big"
        else:
            text = str(e)
            msg = f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__
        return TemplateError(msg, hint=hint, where=loc)

    def _undefined_message(self, msg: str, loc: Where, inline_source: str | None) -> str:
        """`'dict object' has no attribute 'nickname'` -> `'user' has no attribute 'nickname'`,
        reading the expression from the failing source line."""
        m = re.fullmatch(r"'.+' has no attribute '([^']+)'", msg)
        if not m or loc.line is None:
            return msg
        try:
            if inline_source is not None:
                source = inline_source
            elif loc.file and loc.file.startswith(self.display_prefix):
                source = self._source(loc.file[len(self.display_prefix) :])
            else:
                return msg
            line = source.splitlines()[loc.line - 1]
        except Exception:
            return msg
        name = re.escape(m[1])
        found = re.search(
            rf"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(?:\.\s*{name}\b|\[\s*['\"]{name}['\"]\s*\])",
            line,
        )
        return f"'{found[1]}' has no attribute '{m[1]}'" if found else msg


def _references(ast: nodes.Template) -> Iterable[tuple[str, int, bool]]:
    """(template name, line, ignore_missing) of every constant include/extends/import."""
    for node in ast.find_all((nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
        t = getattr(node, "template", None)
        optional = isinstance(node, nodes.Include) and node.ignore_missing
        if isinstance(t, nodes.Const) and isinstance(t.value, str):
            yield t.value, node.lineno, optional
        elif isinstance(t, nodes.List | nodes.Tuple):  # include ["a.j2", "b.j2"]
            for item in t.items:
                if isinstance(item, nodes.Const) and isinstance(item.value, str):
                    yield item.value, node.lineno, True


# --- locale candidates ---------------------------------------------------------------------


def split_suffix(name: str) -> tuple[str, str]:
    """`email.html.j2` -> (`email`, `.html.j2`); `body.j2` -> (`body`, `.j2`)."""
    low = name.lower()
    for suffix in CONTENT_SUFFIXES + (".j2", ".html", ".htm", ".txt", ".json"):
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return name, ""


def locale_tags(locale_tag: str | None) -> list[str]:
    """Tags to try, most specific first: `zh-CN` -> [zh-CN, zh-Hans-CN, zh-Hans, zh];
    `cs-CZ` -> [cs-CZ, cs]; None or garbage -> []."""
    full = i18n.normalize_tag(locale_tag)
    if full is None:
        return []
    parts = full.split("-")
    lang, script, region = parts[0], None, None
    for p in parts[1:]:
        if script is None and region is None and len(p) == 4 and p.isalpha():
            script = p
        elif region is None and ((len(p) == 2 and p.isalpha()) or (len(p) == 3 and p.isdigit())):
            region = p
    if script is None and region is not None:
        script = _likely_script(lang, region)
    out = [full]
    if script and region:
        out.append(f"{lang}-{script}-{region}")
    if region:
        out.append(f"{lang}-{region}")
    if script:
        out.append(f"{lang}-{script}")
    out.append(lang)
    return list(dict.fromkeys(out))


def _likely_script(lang: str, region: str) -> str | None:
    from babel import Locale

    try:
        return Locale.parse(f"{lang}_{region}").script
    except Exception:
        return None


def locale_candidates(path: str, locale_tag: str | None) -> list[str]:
    """Files `Renderer.resolve` tries, in order, ending with `path` itself:
    `push/body.j2`, `cs-CZ` -> [push/body.cs-CZ.j2, push/body.cs.j2, push/body.j2]."""
    directory, name = posixpath.split(path)
    stem, suffix = split_suffix(name)
    return [posixpath.join(directory, f"{stem}.{t}{suffix}") for t in locale_tags(locale_tag)] + [
        path
    ]


# --- email -------------------------------------------------------------------------------


def _header_safe(value: str, what: str) -> None:
    if any(c in value for c in "\r\n\x00"):
        raise ConfigError(f"{what} contains a line break")


def email_headers(
    *,
    unsubscribe_url: str,
    mailto: str | None = None,
    list_id: str | None = None,
    marketing: bool = True,
) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe headers for a marketing email ({} for transactional).

    `List-Unsubscribe: <https://…>, <mailto:…>`, `List-Unsubscribe-Post:
    List-Unsubscribe=One-Click`, and `List-Id` when given (`Winback <winback.example.com>` or
    a bare id, which is bracketed). DKIM must sign both (a relay setting)."""
    if not marketing:
        return {}
    _header_safe(unsubscribe_url, "unsubscribe URL")
    if not unsubscribe_url.startswith("https://") or any(c in unsubscribe_url for c in " <>,"):
        raise ConfigError(
            "one-click unsubscribe needs an https:// URL without spaces, <, > or commas",
            hint="RFC 8058: List-Unsubscribe must carry an https URI",
        )
    values = [f"<{unsubscribe_url}>"]
    if mailto:
        _header_safe(mailto, "unsubscribe mailto")
        values.append(f"<{mailto if mailto.startswith('mailto:') else 'mailto:' + mailto}>")
    headers = {
        "List-Unsubscribe": ", ".join(values),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    if list_id:
        _header_safe(list_id, "List-Id")
        headers["List-Id"] = list_id if "<" in list_id else f"<{list_id}>"
    return headers


class _LinkFinder(HTMLParser):
    def __init__(self, url: str):
        super().__init__(convert_charrefs=True)
        self.url = url.strip()
        self.depth = 0  # inside a matching <a>
        self.hidden = 0
        self.found = False
        self.text_has_url = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        style = (a.get("style") or "").replace(" ", "").lower()
        invisible = "hidden" in a or "display:none" in style or "visibility:hidden" in style
        if tag == "a":
            if self.depth:
                self.depth += 1
            elif (a.get("href") or "").strip() == self.url and not invisible and not self.hidden:
                self.depth = 1
        elif tag == "img" and self.depth and (a.get("alt") or "").strip():
            self.found = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and data.strip():
            self.found = True
        if self.url and self.url in data:
            self.text_has_url = True


def has_visible_unsubscribe_link(html: str, url: str) -> bool:
    """Whether the HTML body shows `url` to the reader: an `<a href=url>` with text (or an
    image with alt text), not hidden by `hidden`/`display:none`, or the URL as visible text.
    Gmail's bulk-sender rules want one besides the List-Unsubscribe header."""
    if not url:
        return False
    finder = _LinkFinder(url)
    finder.feed(html)
    finder.close()
    return finder.found or finder.text_has_url


# --- unsubscribe tokens ---------------------------------------------------------------------

_TOKEN_VERSION = "1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=8)
def _keyed(secret: bytes) -> hmac.HMAC:
    return hmac.new(secret, digestmod=hashlib.sha256)


def unsubscribe_token(
    secret: bytes, user_id: str | int, campaign: str, issued_at: dt.datetime
) -> str:
    """A stateless, signed one-click unsubscribe token.

    Format: `<payload>.<mac>`, both unpadded URL-safe base64. `payload` is the UTF-8 text
    `1␟<user id>␟<campaign>␟<issued at, integer Unix seconds UTC>` (␟ = U+001F, "1" the format
    version); `mac` is HMAC-SHA256(secret, payload bytes), 32 bytes. The token is *signed, not
    encrypted*: it reveals the user id and campaign (never an address) to whoever holds it, and
    only the secret's holder can mint one. Verify with `verify_unsubscribe_token`."""
    if not secret:
        raise ConfigError("the unsubscribe secret is empty")
    if issued_at.tzinfo is None or issued_at.utcoffset() is None:
        raise ValueError("issued_at must be timezone-aware")
    uid, camp = str(user_id), str(campaign)
    for value, what in ((uid, "user id"), (camp, "campaign")):
        if not value or any(ord(c) < 0x20 for c in value):
            raise ValueError(f"{what} must be non-empty, without control characters")
    ts = int(issued_at.astimezone(dt.UTC).timestamp())
    payload = "\x1f".join((_TOKEN_VERSION, uid, camp, str(ts))).encode("utf-8")
    mac = _keyed(secret).copy()  # the key schedule once per secret, not once per user
    mac.update(payload)
    return f"{_b64(payload)}.{_b64(mac.digest())}"


def verify_unsubscribe_token(secret: bytes, token: str) -> tuple[str, str, dt.datetime]:
    """(user id, campaign, issued at UTC) of a token made by `unsubscribe_token`; TokenError
    when it is malformed or its signature does not match (tampered, other secret)."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 4096:
        raise TokenError("malformed unsubscribe token")
    p64, m64 = token.split(".")
    try:
        payload, mac = _unb64(p64), _unb64(m64)
    except (ValueError, TypeError):
        raise TokenError("malformed unsubscribe token") from None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise TokenError("unsubscribe token signature does not match")
    try:
        version, uid, camp, ts = payload.decode("utf-8").split("\x1f")
        issued = dt.datetime.fromtimestamp(int(ts), dt.UTC)
    except (ValueError, OverflowError):
        raise TokenError("malformed unsubscribe token") from None
    if version != _TOKEN_VERSION:
        raise TokenError(f"unsupported unsubscribe token version {version!r}")
    return uid, camp, issued


def unsubscribe_url(url_template: str, token: str) -> str:
    """`https://u.example.com/u/{token}` with the token filled in (also for a mailto
    template such as `unsub+{token}@example.com`)."""
    if "{token}" not in url_template:
        raise ConfigError(
            f"unsubscribe URL '{url_template}' has no {{token}}",
            hint="e.g. https://u.example.com/u/{token}",
        )
    return url_template.replace("{token}", token)
