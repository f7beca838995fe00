"""Importing export files into the workspace database.

Why no sniffer: DuckDB's CSV sniffer guesses types and quoting, and its guesses hide errors (it
chose `quote=''` for a file with an unterminated quote and took the broken row as data). So every
column is read with a declared type and `auto_detect=false`, and what does not fit becomes a
reject with file, line, column and reason, never a silent coercion.

The pipeline, per file, inside the import's one transaction:
1. `readers` turn the file (CSV/TSV, JSON array, JSON lines, Parquet; gz/zst) into a TEMP
   staging table of canonical, typed columns plus `_row` (record order) — CSV through a typed
   `read_csv` (the fast path the import benchmark measures), everything else through VARCHAR
   values cast in SQL;
2. `kinds` checks each row (required values, enums, future timestamps, ...) and moves the bad
   ones to `import_rejects`;
3. `load` merges the good rows into the entity tables (dedupe, upsert, identity resolution) and
   counts inserted / updated / duplicates, so that read = inserted + updated + duplicates +
   rejected (+ forgotten: rows of erased people, kept out on purpose).
"""
