"""`--help` of every command must not import duckdb, polars, jinja2 or requests (SPEC §2).

Only a fresh interpreter proves that an import is deferred: the test process itself has long
imported all four. Commands are enumerated from the click command tree, so new commands are
covered without editing this test."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, subprocess, sys
import typer.main
from typer.testing import CliRunner
from mcrm.cli.main import app

def walk(cmd, path):
    yield path
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from walk(sub, path + [name])

paths = list(walk(typer.main.get_command(app), []))
runner = CliRunner()
failures = []
for path in paths:
    result = runner.invoke(app, path + ["--help"])
    if result.exit_code != 0 or "Usage:" not in result.stdout:
        failures.append([path, result.exit_code])
heavy = [m for m in ("duckdb", "polars", "jinja2", "requests") if m in sys.modules]
# pydantic (typer 0.29's option coercion) is ~0.2 s of the 0.3 s start-up budget: the root
# options must not pull it in (mcrm.cli.main._PlainStr), or every `--help` pays for it.
root_help = subprocess.run(
    [sys.executable, "-c", "import sys; sys.argv = ['mcrm', '-w', '.', 'import', '--help']\n"
     "from mcrm.cli.main import main\n"
     "try:\n    main()\nexcept SystemExit:\n    pass\n"
     "print('pydantic' in sys.modules, file=sys.stderr)"],
    capture_output=True, text=True,
)
if root_help.stderr.strip().splitlines()[-1:] != ["False"]:
    heavy.append("pydantic: " + root_help.stderr.strip()[-200:])
print(json.dumps({"paths": paths, "failures": failures, "heavy": heavy}))
"""


def test_help_of_every_command_stays_light() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    paths = [" ".join(p) for p in report["paths"]]
    # the tree really was walked: groups, their subcommands, top-level commands
    for expected in ("", "import", "import events", "import rejects", "users show", "sql"):
        assert expected in paths
    assert len(paths) > 20
    assert report["failures"] == []
    assert report["heavy"] == [], f"--help imported {report['heavy']}"


def test_real_process_agrees_with_the_in_process_runner(tmp_path: object) -> None:
    """A real `python -m mcrm` run gives the same code, stdout and stderr as CliRunner."""
    from pathlib import Path

    from typer.testing import CliRunner

    from mcrm.cli.main import app

    root = Path(str(tmp_path))
    (root / "mcrm.yaml").write_text("timezone: UTC\n", encoding="utf-8")
    args = ["--workspace", str(root), "import", "events", "missing.csv"]
    proc = subprocess.run(
        [sys.executable, "-m", "mcrm", *args], capture_output=True, text=True, timeout=60
    )
    inproc = CliRunner().invoke(app, args)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        inproc.exit_code,
        inproc.stdout,
        inproc.stderr,
    )
    assert proc.returncode == 3
