"""`python -m mcrm` is the same as the `mcrm` console script."""

from mcrm.cli.main import main

main()
