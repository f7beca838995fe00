"""The command line: one module per noun, each command about ten lines.

Why deferred imports: `mcrm --help` must not import duckdb, polars, jinja2 or requests (it
would cost most of its 0.3 s budget), so these modules import library code inside the command
bodies, and signatures use only stdlib types and enums. A subprocess test proves it and ruff's
TID253 bans module-level imports of those four here.
"""
