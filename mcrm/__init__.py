"""mcrm: a mobile CRM that runs from a terminal and a git repo.

This module imports nothing on purpose: `mcrm --help` must stay cheap (see `mcrm/cli/`).
"""

__version__ = "0.1.0"
