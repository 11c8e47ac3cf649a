"""Run a function where deep syntax trees fit: a thread with a large stack and a high recursion limit.

LibCST's parser, its visitors and ``deep_clone`` recurse once (or several times) per level of the
tree, and some valid files are very deep: ``pydoc_data/topics.py`` in the standard library is
one 15,000-line dict of implicitly concatenated strings, which LibCST holds as a
15,000-level ``ConcatenatedString`` chain. Python's default limit (1,000 frames) and the main
thread's 8 MiB C stack are far too small for that, and raising the limit in the main thread
trades a ``RecursionError`` for a segfault. A fresh thread gets a stack sized for the limit.

The engine converts in the calling thread first and comes here only after a ``RecursionError``,
so ordinary files pay nothing.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable, TypeVar

T = TypeVar("T")

#: Frames allowed in the deep thread. topics.py needs about 30,000; the margin covers files a
#: few times deeper. Beyond this a file is left unchanged (see ``engine``), never failed.
RECURSION_LIMIT = 200_000
#: C stack for the deep thread. Only the pages actually touched are committed, so this costs
#: address space, not memory, unless a file really is this deep (about 4 KiB a frame at worst).
STACK_BYTES = 1 << 30

_lock = threading.Lock()
_active = 0
_saved_limit = 0


def call_deep(fn: Callable[[], T]) -> T:
    """``fn()`` in a thread with a large stack and ``RECURSION_LIMIT``; its result or its exception."""
    global _active, _saved_limit
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    with _lock:
        if _active == 0:
            _saved_limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_saved_limit, RECURSION_LIMIT))
        _active += 1
    try:
        with _lock:
            previous = threading.stack_size(STACK_BYTES)
            try:
                thread = threading.Thread(target=target, name="migrate-deep", daemon=True)
                thread.start()
            finally:
                threading.stack_size(previous)
        thread.join()
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                sys.setrecursionlimit(_saved_limit)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
