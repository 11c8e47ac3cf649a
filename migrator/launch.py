"""The ``migrate`` command's entry point: a head start for runs over folders, then the command line.

A run over a folder that holds training scripts waits longest for the converting process's imports
(``migrator.parallel.head_start``). Forked here, before ``click`` and the command line's modules
are imported, those imports overlap this process's own start-up. Only ``convert`` over at least
one folder, with more than one job, asks for it: a pre-commit hook passes files, one at a time
or a few, where the head start would be spent for nothing. Reading the command line here is a
guess, never a decision: a head start nobody takes is killed unused, and ``migrator.cli`` reads the
command line as it always does.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence


def converts_a_folder(argv: Sequence[str]) -> bool:
    """Whether ``argv`` (without the program's name) looks like ``convert`` over a folder with more than one job."""
    if not argv or argv[0] != "convert":
        return False
    rest = list(argv[1:])
    jobs = None
    for position, arg in enumerate(rest):
        if arg in ("-h", "--help", "-o", "--output") or arg.startswith("--output=") \
                or (arg.startswith("-o") and not arg.startswith("--")):
            return False  # help, or one file written elsewhere
        if arg in ("-j", "--jobs") and position + 1 < len(rest):
            jobs = rest[position + 1]
        elif arg.startswith("--jobs="):
            jobs = arg.partition("=")[2]
        elif arg.startswith("-j") and not arg.startswith("--"):
            jobs = arg[2:]
    if jobs == "1":
        return False
    return any(not arg.startswith("-") and os.path.isdir(arg) for arg in rest)


def main() -> None:
    try:
        if converts_a_folder(sys.argv[1:]):
            from migrator import parallel

            parallel.head_start()
        from migrator.cli import main as command_line
    except KeyboardInterrupt:  # Ctrl-C before the command line is read: quietly, as a shell reports it
        sys.exit(130)
    command_line()


if __name__ == "__main__":  # pragma: no cover
    main()
