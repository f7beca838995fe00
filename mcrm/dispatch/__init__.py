"""Dispatch: provider adapters, the outbox, `mcrm send` and `mcrm run` (SPEC §6)."""
