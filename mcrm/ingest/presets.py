"""Vendor export presets: Amplitude, Mixpanel, Firebase (BigQuery export), AppsFlyer, Shopify.

A preset knows one vendor's real export shape (see docs/vendor-formats.md) and turns a file into
canonical staged rows for one or more kinds: a Shopify orders export yields purchases plus the
customers' profiles and their e-mail marketing consent; an Amplitude export yields events plus
the user properties it carries. Each preset is SQL over the raw records, so it runs in DuckDB
at the same speed as a plain import, and bad rows become rejects the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcrm.errors import UsageError, did_you_mean
from mcrm.ingest.kinds import KINDS, Kind

if TYPE_CHECKING:
    from mcrm.ingest.readers import ReadOptions, Source, Staged, Stager

StageFn = Callable[["Stager", "Source", "ReadOptions"], list[tuple[Kind, "Staged"]]]


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str  # the KIND it is imported as
    formats: tuple[str, ...]
    description: str
    fn: StageFn

    def stage(
        self, stager: Stager, kind: Kind, src: Source, opts: ReadOptions
    ) -> list[tuple[Kind, Staged]]:
        if src.fmt not in self.formats:
            raise UsageError(
                f"preset {self.name} reads {' or '.join(self.formats)} files, "
                f"not {src.fmt} ({src.display})"
            )
        return self.fn(stager, src, opts)


PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> None:
    PRESETS[preset.name] = preset


def get_preset(name: str, kind: Kind) -> Preset:
    from mcrm.ingest import message_presets, vendors  # noqa: F401  (registers the presets)

    if name not in PRESETS:
        raise UsageError(
            f"unknown preset '{name}'",
            hint=did_you_mean(name, list(PRESETS)) or f"presets: {', '.join(sorted(PRESETS))}",
        )
    p = PRESETS[name]
    if p.kind != kind.name:
        raise UsageError(
            f"preset {name} imports {p.kind}, not {kind.name}",
            hint=f"mcrm import {p.kind} FILE --preset {name}",
        )
    return p


def kind(name: str) -> Kind:
    return KINDS[name]
