"""Campaigns: definitions, templates, delivery policy and the send plan (SPEC §5)."""
