"""Scale data sets: generated once by `mcrm.demo.generate_scale`, reused afterwards.

A data set lives in `benchmarks/.data/<name>-<scale>/` with a `manifest.json` written last
(so an interrupted generation is never reused) recording the generator's arguments, the files
and their row counts. A manifest whose arguments differ from the requested ones, or `--regen`,
makes the set be generated again.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.core import Context

SEED = 7


@dataclass(frozen=True)
class DataSet:
    """SPEC sizes at `--scale full`; `small` takes a tenth of each."""

    name: str
    users: int
    events: int
    purchases: int


# The import target needs a 5M-row events file; users and purchases only keep the generator's
# ratios plausible. (The segment target, later, needs 1M users / 20M events / 2M purchases.)
IMPORT = DataSet("import", users=500_000, events=5_000_000, purchases=100_000)


@dataclass(frozen=True)
class Files:
    root: Path
    paths: dict[str, Path]
    rows: dict[str, int]
    generated_seconds: float | None

    def __getitem__(self, key: str) -> Path:
        return self.paths[key]


def _count_rows(path: Path) -> int:
    import duckdb

    con = duckdb.connect()
    try:
        row = con.execute(
            "SELECT count(*) FROM read_csv(?, header=true, all_varchar=true)", [str(path)]
        ).fetchall()
        return int(row[0][0])
    finally:
        con.close()


def ensure(ctx: Context, ds: DataSet, log: bool = True) -> Files:
    """The data set at this run's scale, generating it if missing or stale."""
    args = {
        "users": ctx.size(ds.users),
        "events": ctx.size(ds.events),
        "purchases": ctx.size(ds.purchases),
        "seed": SEED,
    }
    root = ctx.data_dir / f"{ds.name}-{ctx.scale}"
    manifest = root / "manifest.json"
    if manifest.exists() and not ctx.regen:
        doc = json.loads(manifest.read_text())
        paths = {k: root / v for k, v in doc["files"].items()}
        if doc.get("args") == args and all(p.exists() for p in paths.values()):
            return Files(root, paths, doc["rows"], doc.get("generated_seconds"))
    try:
        from mcrm.demo import generate_scale
    except ImportError as e:
        raise SystemExit(
            f"benchmarks: cannot generate scale data: {e} (mcrm.demo.generate_scale is needed; "
            "or pass --events-csv FILE)"
        ) from None
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    if log:
        print(f"generating {ds.name} data at scale {ctx.scale}: {args} -> {root}", flush=True)
    t0 = time.perf_counter()
    made = generate_scale(root, **args)
    secs = time.perf_counter() - t0
    paths = {k: Path(v) for k, v in made.items()}
    rows = {k: _count_rows(p) for k, p in paths.items() if p.suffix == ".csv"}
    doc = {
        "args": args,
        "files": {k: str(p.relative_to(root)) for k, p in paths.items()},
        "rows": rows,
        "generated_seconds": round(secs, 1),
    }
    manifest.write_text(json.dumps(doc, indent=2) + "\n")
    if log:
        print(f"generated in {secs:.1f} s: {rows}", flush=True)
    return Files(root, paths, rows, secs)


def external(kind: str, path: Path) -> Files:
    """A file given on the command line instead of a generated set."""
    return Files(path.parent, {kind: path}, {kind: _count_rows(path)}, None)


# ---------------------------------------------------------------------------------------------
# Imported workspaces (the segments targets)

# SPEC §4.4: 1M users / 20M events / 2M purchases (`small` is a tenth).
SEGMENTS = DataSet("scale", users=1_000_000, events=20_000_000, purchases=2_000_000)


@dataclass(frozen=True)
class Imported:
    """A workspace whose database holds an imported data set (see `ensure_workspace`)."""

    root: Path
    rows: dict[str, int]
    import_seconds: dict[str, float]


def ensure_workspace(
    ctx: Context,
    name: str,
    ds: DataSet,
    config: str,
    copy: tuple[Path, ...] = (),
    kinds: tuple[str, ...] = ("users", "events", "purchases"),
    log: bool = True,
) -> Imported:
    """A workspace in `.data/<name>-<scale>/` with `ds` imported through `mcrm.api`, once.

    `config` is the `mcrm.yaml` text; `copy` are files put next to it (e.g. `segments.yaml`,
    re-copied on every call so edits to the original are picked up without a re-import).
    A `manifest.json` written after the last import marks the database complete; it records
    the data set's manifest, the config and each kind's rows and import time. A different
    data set or config, a missing database, or `--regen` makes it be imported again.
    """
    files = ensure(ctx, ds, log=log)
    root = ctx.data_dir / f"{name}-{ctx.scale}"
    manifest = root / "manifest.json"
    source = json.loads((files.root / "manifest.json").read_text())
    want = {"data": {"args": source["args"], "rows": source["rows"]}, "config": config}
    if manifest.exists() and not ctx.regen:
        doc = json.loads(manifest.read_text())
        db = root / doc.get("database", "")
        if all(doc.get(k) == v for k, v in want.items()) and db.is_file():
            for f in copy:
                shutil.copyfile(f, root / f.name)
            return Imported(root, doc["imported_rows"], doc["import_seconds"])
    from mcrm import api
    from mcrm.config import open_workspace

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "mcrm.yaml").write_text(config)
    for f in copy:
        shutil.copyfile(f, root / f.name)
    ws = open_workspace(str(root), {}, root)
    rows: dict[str, int] = {}
    secs: dict[str, float] = {}
    for kind in kinds:
        path = files[kind]
        if log:
            print(f"importing {kind} ({files.rows[kind]:,} rows) into {root} ...", flush=True)
        t0 = time.perf_counter()
        res = api.import_files(ws, kind, [str(path)], cwd=root)
        secs[kind] = round(time.perf_counter() - t0, 1)
        if res.rejected or res.rows_read != files.rows[kind]:
            raise SystemExit(
                f"benchmarks: importing {path}: read {res.rows_read} rows, rejected "
                f"{res.rejected}; expected {files.rows[kind]} and 0"
            )
        rows[kind] = res.rows_read
        if log:
            print(f"  {kind}: {res.rows_read:,} rows in {secs[kind]:.1f} s", flush=True)
    doc = {
        **want,
        "database": str(ws.db_path.relative_to(root)),
        "imported_rows": rows,
        "import_seconds": secs,
    }
    manifest.write_text(json.dumps(doc, indent=2) + "\n")
    return Imported(root, rows, secs)
