"""Implementations of the ``spindle`` subcommands, one module per family.

:mod:`spindle.cli` names each command and imports its module only when the
command runs, so nothing here is imported by ``spindle --help``.
"""
