"""A strict YAML loader that remembers where every value came from.

PyYAML's `safe_load` loses line numbers and silently keeps the last of two duplicate keys.
We compose the node tree with `yaml.SafeLoader`, refuse duplicate keys, and convert it to plain
Python values plus a side table of `key path -> (1-based line, original scalar text)`, so every
validation error can say `segments.yaml:14 / segments.x.where` and, for YAML 1.1 surprises
(`21:00` read as 1260, `NO` as False), show what the user actually wrote.

`Problems` collects every problem of a validation pass so `validate` commands report all at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcrm.errors import ConfigError, McrmError, Where, did_you_mean, os_reason

Path_ = tuple[str | int, ...]


def key_path(path: Path_) -> str:
    """`('segments', 'x', 'where', 'all', 0)` -> `segments.x.where.all[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class YamlDoc:
    """A loaded YAML file: its data and where each key path came from."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    raw: dict[Path_, str] = field(default_factory=dict)

    def where(self, path: Path_) -> Where:
        """The location of `path`, falling back to its nearest located parent."""
        p = tuple(path)
        while p and p not in self.lines:
            p = p[:-1]
        return Where(self.file, self.lines.get(p), key_path(path) or None)

    def raw_text(self, path: Path_) -> str | None:
        return self.raw.get(tuple(path))


def load_yaml(path: Path, display: str | None = None) -> YamlDoc:
    """Load `path` strictly; a missing file is an empty document."""

    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return YamlDoc(shown, None)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{shown} is not valid UTF-8 (byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"cannot read {shown}: {os_reason(e, path)}") from None
    return parse_yaml(text, shown)


def parse_yaml(text: str, display: str) -> YamlDoc:
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(
            f"invalid YAML: {e.problem or e.context}", where=Where(display, line)
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML: {e}", where=Where(display)) from None
    doc = YamlDoc(display, None)
    if node is None:
        return doc
    constructor = yaml.SafeLoader(text)
    doc.data = _convert(node, (), doc, constructor)
    return doc


def _convert(node: Any, path: Path_, doc: YamlDoc, constructor: Any) -> Any:
    import yaml

    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError(
                    "YAML merge keys (<<) are not supported",
                    where=Where(doc.file, key_node.start_mark.line + 1, key_path(path) or None),
                )
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key)
            if key in out:
                raise ConfigError(
                    f"duplicate key '{key}'",
                    hint="YAML keeps only the last of two equal keys; remove one",
                    where=Where(doc.file, key_node.start_mark.line + 1, key_path((*path, key))),
                )
            out[key] = _convert(value_node, (*path, key), doc, constructor)
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, (*path, i), doc, constructor) for i, v in enumerate(node.value)]
    doc.raw[path] = node.value
    return constructor.construct_object(node, deep=True)


class Problems:
    """Collects validation problems so a pass can report all of them at once."""

    def __init__(self) -> None:
        self.errors: list[McrmError] = []
        self.warnings: list[McrmError] = []

    def error(self, message: str, where: Where | None = None, hint: str | None = None) -> None:
        self.errors.append(ConfigError(message, hint=hint, where=where))

    def warn(self, message: str, where: Where | None = None, hint: str | None = None) -> None:
        self.warnings.append(ConfigError(message, hint=hint, where=where))

    def unknown_keys(
        self, doc: YamlDoc, path: Path_, mapping: dict[str, Any], allowed: set[str] | list[str]
    ) -> None:
        allowed_set = set(allowed)
        for key in mapping:
            if key not in allowed_set:
                self.error(
                    f"unknown key '{key}'",
                    where=doc.where((*path, key)),
                    hint=did_you_mean(str(key), allowed_set)
                    or f"allowed: {', '.join(sorted(allowed_set))}",
                )

    def raise_first(self) -> None:
        """Stop with the first error (for commands other than `validate`)."""
        if self.errors:
            first = self.errors[0]
            more = len(self.errors) - 1
            if more:
                first.hint = (first.hint + "; " if first.hint else "") + (
                    f"{more} more problem(s): run the matching `validate` command"
                )
            raise first

    def __bool__(self) -> bool:
        return bool(self.errors)


def expect_str(
    doc: YamlDoc, path: Path_, value: Any, problems: Problems, what: str = "a string"
) -> str | None:
    """Check that a scalar is a string; YAML 1.1 coercions get a `quote it` hint."""
    if isinstance(value, str):
        return value
    raw = doc.raw_text(path)
    shown = f"'{raw}'" if raw is not None else repr(value)
    problems.error(
        f"expected {what}, found {type(value).__name__} {shown}"
        + (f" (YAML read it as {value!r})" if raw is not None and raw != str(value) else ""),
        where=doc.where(path),
        hint=f'quote it: "{raw}"' if raw is not None else None,
    )
    return None
