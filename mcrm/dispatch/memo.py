"""Rendering for sends: the campaign's templates rendered once per distinct input, not once
per recipient, with byte-for-byte the text `Renderer` gives (preview, plan, goldens).

A send renders the same few templates for thousands of users, and what a template prints
usually depends on a handful of values (`user.first_name`, the locale) plus one value that
is different for everybody but only printed (`unsubscribe_url`). `MemoRenderer.render`
therefore, per template, once:

1. **Proves the template is a pure function of named values.** Its syntax tree may hold
   only output, text, `if`, constants, operators, comparisons, conditional expressions,
   filters (any but `random`), tests, and reads of context names through constant
   attributes or keys (`user.first_name`, `user["locale"]`, `rfm.segment`). No `for`,
   `set`, `with`, macros, calls, includes, imports, `extends`, `{% filter %}`,
   `{% autoescape %}` or extension tags (`skip`): a template with any of them is always
   rendered in full.
2. **Splits the values it reads** into *keys* — every maximal constant read chain
   (`user.first_name`) — and *opaque names*: a top-level name that is only ever printed as
   it is (`{{ unsubscribe_url }}`, nowhere else: not in a condition, filter or attribute).

Then per message: the key is the template and the values of its chains, each as (type, value)
for str / int / bool / None and (type, repr) for floats, decimals, dates and times (equal
values that print differently, such as `1.0` and `1.00`, or one instant in two zones, get
different keys); a missing value is its own key. Any other value (a dict, a list, markup) means
a full render of that message. The locale and currency are always in the key and never opaque
(the `money` / `date` filters read them from the context). A template is rendered for a new key
with each opaque name bound to a sentinel (private-use characters around a random per-process
nonce, which HTML escaping leaves alone), and that text is kept; each message's text is the
kept text with the sentinels replaced by its own values, escaped exactly as Jinja's autoescape
escapes a printed string (`markupsafe.escape`) in an autoescaped template, verbatim otherwise.
An opaque value that is not a plain `str` means a full render. Errors and skips are never kept:
a failing key renders in full every time, so its message names the user as before. A template
whose keys rarely repeat (fewer than one hit in ten after 1,000 renders) stops being memoised;
each memo holds at most 10,000 texts.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from jinja2 import Undefined, nodes
from markupsafe import Markup, escape

from mcrm.campaigns.render import Renderer

MAX_TEXTS = 10_000
PROBE = 1_000  # renders after which a template that rarely hits stops being memoised
MIN_HIT_RATE = 0.1

IMPLICIT = frozenset({"locale", "currency"})  # context names filters read themselves
_ABSENT = ("absent",)
_DICT_ATTRS = frozenset(dir(dict))
_UNKEYABLE = object()
_ALLOWED = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.If,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Filter,
    nodes.Test,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.BinExpr,
    nodes.UnaryExpr,
    nodes.Concat,
    nodes.Tuple,
    nodes.List,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
    nodes.MarkSafe,
    nodes.MarkSafeIfAutoescape,
)
_PLAIN = (str, int, bool, type(None))
_BY_REPR = (float, Decimal, dt.date, dt.datetime, dt.time, dt.timedelta)


class _Plan:
    """What one template reads: its key chains and opaque names; its memo."""

    __slots__ = ("chains", "opaque", "autoescape", "env", "sentinels", "memo", "renders", "hits")

    def __init__(
        self,
        chains: list[tuple[str, tuple[tuple[bool, Any], ...]]],
        opaque: list[str],
        autoescape: bool,
        env: Any,
        nonce: str,
    ):
        self.chains = chains
        self.opaque = opaque
        self.autoescape = autoescape
        self.env = env
        self.sentinels = {n: f"\ue000{nonce}{i}\ue001" for i, n in enumerate(opaque)}
        self.memo: dict[tuple[Any, ...], str] = {}
        self.renders = 0
        self.hits = 0

    def key(self, context: Mapping[str, Any]) -> tuple[Any, ...] | None:
        out: list[Any] = [_value_key(context.get("locale")), _value_key(context.get("currency"))]
        env = self.env
        for name, steps in self.chains:
            v = context.get(name, _ABSENT)
            if v is _ABSENT:
                out.append(_ABSENT)
                continue
            last = len(steps) - 1
            for i, (is_attr, arg) in enumerate(steps):
                if type(v) is dict and type(arg) is str and arg not in _DICT_ATTRS:
                    # what the sandbox does for a plain dict and a name that is not one of
                    # dict's own attributes, without its exception round trip
                    v = v.get(arg, _ABSENT)
                    if v is _ABSENT and i < last:
                        return None  # reading on from a missing value fails: render in full
                else:
                    v = env.getattr(v, arg) if is_attr else env.getitem(v, arg)
            if v is _ABSENT:
                out.append(_ABSENT)
                continue
            k = _value_key(v)
            if k is _UNKEYABLE:
                return None
            out.append(k)
        return tuple(out)

    def values(self, context: Mapping[str, Any]) -> list[str] | None:
        """The opaque names' printed text, or None when one is not a plain str."""
        out = []
        for name in self.opaque:
            v = context.get(name, _ABSENT)
            if type(v) is not str:
                return None
            out.append(str(escape(v)) if self.autoescape else v)
        return out


def _value_key(v: Any) -> Any:
    t = type(v)
    if t in _PLAIN:
        return (t, v)
    if isinstance(v, Undefined):
        return _ABSENT
    if t in _BY_REPR:
        return (t, repr(v))
    return _UNKEYABLE


def _chain(node: nodes.Node) -> tuple[str, tuple[tuple[bool, Any], ...]] | None:
    """`user.first_name` / `user["x"][0]` as (name, steps); None if not a constant chain."""
    steps: list[tuple[bool, Any]] = []
    while True:
        if isinstance(node, nodes.Name):
            return node.name, tuple(reversed(steps))
        if isinstance(node, nodes.Getattr):
            steps.append((True, node.attr))
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            if not isinstance(node.arg.value, str | int) or isinstance(node.arg.value, bool):
                return None
            steps.append((False, node.arg.value))
            node = node.node
        else:
            return None


def analyse(ast: nodes.Template) -> tuple[list[Any], list[str]] | None:
    """(key chains, opaque names) of a memoisable template, else None (see the docstring)."""
    chains: dict[tuple[str, tuple[tuple[bool, Any], ...]], None] = {}
    bare: set[str] = set()  # names printed as they are somewhere
    elsewhere: set[str] = set()  # names read any other way

    def visit(node: nodes.Node, parent: nodes.Node | None) -> bool:
        if not isinstance(node, _ALLOWED):
            return False
        if isinstance(node, nodes.Name) and node.ctx != "load":
            return False
        if isinstance(node, nodes.Filter) and (node.node is None or node.name == "random"):
            return False
        if isinstance(node, nodes.Name | nodes.Getattr | nodes.Getitem):
            c = _chain(node)
            if c is not None:
                if isinstance(node, nodes.Name) and isinstance(parent, nodes.Output):
                    bare.add(node.name)
                else:
                    elsewhere.add(c[0])
                    chains[c] = None
                return True
            if isinstance(node, nodes.Getattr):  # an attribute of a computed value (a method)
                return False
            # a computed key (`user.attributes[k]`): base and key are both read
            assert isinstance(node, nodes.Getitem)  # a Name is always a chain
            return visit(node.node, node) and visit(node.arg, node)
        return all(visit(child, node) for child in node.iter_child_nodes())

    if not visit(ast, None):
        return None
    # the locale and currency are read by filters (`money`, `date`) besides any printing:
    # they are always keys, never replaced by a sentinel
    keyed = elsewhere | IMPLICIT
    opaque = sorted(bare - keyed)
    for name in sorted(bare & keyed):  # printed here, read as a key elsewhere: a key
        chains[(name, ())] = None
    return list(chains), opaque


class MemoRenderer(Renderer):
    """`Renderer` whose `render` keeps the text per distinct input (module docstring)."""

    def __init__(self, campaigns_dir: Any, **kw: Any):
        super().__init__(campaigns_dir, **kw)
        self._plans: dict[tuple[bool, str], _Plan | None] = {}
        self._nonce = secrets.token_hex(8)

    def _plan(self, path_or_source: str, inline: bool) -> _Plan | None:
        k = (inline, path_or_source)
        if k in self._plans:
            return self._plans[k]
        plan = None
        env: Any = self.env
        try:
            if inline:  # from_string: no name, so never autoescaped
                source, auto = path_or_source, False
            else:
                env = self._env_for(path_or_source)
                source = self._source(path_or_source)
                choose: Any = env.autoescape
                auto = bool(choose(path_or_source) if callable(choose) else choose)
            got = analyse(env.parse(source)) if env is self.env else None
            if got is not None and self._nonce not in source:
                plan = _Plan(got[0], got[1], auto, env, self._nonce)
        except Exception:
            plan = None  # rendering will report what is wrong with the template
        self._plans[k] = plan
        return plan

    def render(
        self,
        path_or_source: str,
        context: Mapping[str, Any],
        *,
        inline: bool = False,
        where: Any = None,
    ) -> str:
        plan = self._plan(path_or_source, inline)
        if plan is None:
            return super().render(path_or_source, context, inline=inline, where=where)
        try:
            key = plan.key(context)
        except Exception:
            key = None
        values = plan.values(context) if key is not None else None
        if key is None or values is None:
            return super().render(path_or_source, context, inline=inline, where=where)
        plan.renders += 1
        text = plan.memo.get(key)
        if text is None:
            bound = context
            if plan.opaque:
                bound = {**context, **plan.sentinels}
            text = super().render(path_or_source, bound, inline=inline, where=where)
            if isinstance(text, Markup):
                text = str(text)
            if len(plan.memo) >= MAX_TEXTS:
                plan.memo.clear()
            plan.memo[key] = text
            if plan.renders >= PROBE and plan.hits < MIN_HIT_RATE * plan.renders:
                self._plans[(inline, path_or_source)] = None  # keys rarely repeat
        else:
            plan.hits += 1
        for sentinel, value in zip(plan.sentinels.values(), values, strict=True):
            text = text.replace(sentinel, value)
        return text
