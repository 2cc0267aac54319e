"""``python -m powercheck`` = the ``powercheck`` command."""

from powercheck.cli import run

run()
