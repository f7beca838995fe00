"""Reports (SPEC §7): each module builds one `Report` from the workspace database.

Definitions follow `reference/analytics.md`; `mcrm.reports.common` holds what every report
shares (the period, the activity relation, the result type and its output).
"""
