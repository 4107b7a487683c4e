"""``python -m spindle``: the same as the ``spindle`` command."""

from spindle.cli import main

main()
