"""Converting many files: the pre-filter in this process, the parsing in a pool, results in order.

``convert_paths`` reads every file and runs the byte pre-filter here (it is fast, and most files
of a repository stop at it), then hands only the files some codemod concerns to a pool of
``jobs`` processes. Results come back to the caller in the order of ``paths`` whatever finishes
first, so output and reports do not depend on ``-j``. All writing stays in this process (the
caller's ``on_result``), with ``write_atomic``: on Ctrl-C the pool is terminated, no file is left
half-written, and ``convert_paths`` returns ``False`` so the caller can exit with 130.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Sequence, TextIO

from migrator.cache import ResultCache
from migrator.engine import applicable, convert_source
from migrator.options import ConvertOptions
from migrator.results import FileResult

#: Exit code for a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _read(path: Path) -> FileResult | bytes:
    try:
        if path.is_dir():  # a folder the walk could not enter: say why
            os.listdir(path)
        return path.read_bytes()
    except OSError as exc:
        return FileResult(str(path), "failed", b"", error=f"cannot read: {exc.strerror or exc}")


def _is_notebook(path: str) -> bool:
    return path.lower().endswith(".ipynb")


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; the parent alone decides how the pool ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


#: The cyclic collector's first threshold while converting (Python's default is 700).
GC_THRESHOLD = 5000


def _collect_less() -> None:
    """Once per process, before its first conversion: the modules every conversion imports are
    frozen out of the cyclic collector's reach (tens of thousands of objects, LibCST's matcher
    classes among them, that it would otherwise traverse again in every full collection), and a
    collection starts after 5,000 allocations, not 700: a conversion allocates nodes by the
    hundred thousand, nearly all freed by reference counting. About a sixth of a cold
    ``convert --check -j1`` over the benchmark's tree (``benchmarks/convert_throughput.py``)."""
    if gc.get_freeze_count():
        return
    import libcst.codemod  # noqa: F401  (what the engine and every codemod import first)

    import migrator.codemod  # noqa: F401

    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def _import_before_forking(items: Sequence[FileResult | tuple]) -> None:
    """Import LibCST and the codemods the jobs need here, once, so that the forked workers start
    with them (about half a CPU-second per process, most of it LibCST's matcher classes; each
    worker importing them itself took most of what a second core saves on a repository's few
    training scripts)."""
    from migrator.engine import loaded

    _collect_less()
    for item in items:
        if not isinstance(item, FileResult):
            for codemod in item[1]:
                loaded(codemod)


def _convert(job: tuple[bytes, tuple, ConvertOptions, str]) -> FileResult:
    data, todo, options, path = job
    _collect_less()
    if _is_notebook(path):  # its code cells are converted as one program (``migrator.notebooks``)
        from migrator import notebooks

        return notebooks.convert(data, todo, options, path=path)
    return convert_source(data, todo, options, path=path)


class Progress:
    """A one-line progress bar on stderr, for terminals only, drawn once a run has taken a while."""

    def __init__(self, total: int, stream: TextIO | None = None, delay_s: float = 1.0) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self.delay_s = delay_s
        self.last_draw = 0.0
        self.shown = False

    @staticmethod
    def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
        stream = stream or sys.stderr
        return not quiet and stream.isatty() and os.environ.get("TERM") != "dumb"

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def advance(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.start < self.delay_s or (now - self.last_draw < 0.1 and self.done < self.total):
            return
        self.last_draw = now
        width = 30
        filled = width * self.done // max(self.total, 1)
        rate = self.done / max(now - self.start, 1e-9)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} files, {rate:.0f}/s")
        self.stream.flush()
        self.shown = True


def convert_paths(
    paths: Sequence[Path],
    codemods: Sequence,
    options: ConvertOptions,
    on_result: Callable[[FileResult], None],
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    cache: ResultCache | None = None,
) -> bool:
    """Convert ``paths``, calling ``on_result`` for each in order. ``False`` if Ctrl-C stopped it.

    With a ``cache``, a file settled before with the same bytes, path, options, codemods and tool
    is neither pre-filtered nor converted again (``migrator.cache``), and what is settled here is
    stored for next time.
    """
    codemods = tuple(codemods)
    # First pass, here: read, look up, pre-filter. Each item is a finished result or a job to run.
    items: list[FileResult | tuple] = []
    keys: dict[str, str] = {}  # path -> cache key, for the jobs whose results are to be stored
    context = cache.context(codemods, options) if cache is not None else ""
    for path in paths:
        data = _read(path)
        if isinstance(data, FileResult):
            items.append(data)
            continue
        key = None
        if cache is not None:  # looked up first: a hit costs less than the pre-filter's scan
            key = cache.key(context, data, str(path))
            stored = cache.get(key, str(path), data)
            if stored is not None:
                items.append(stored)
                continue
        # A notebook's bytes are JSON: its code is pre-filtered once taken out of the cells.
        todo = codemods if _is_notebook(str(path)) else tuple(applicable(codemods, data))
        if not todo:
            settled = FileResult(str(path), "unchanged", data)
            if key is not None and len(data) >= cache.SCANNED_BYTES_WORTH_STORING:
                cache.put(key, settled)
            items.append(settled)
            continue
        if key is not None:
            keys[str(path)] = key
        items.append((data, todo, options, str(path)))

    def emit(result: FileResult) -> None:
        if progress is not None:
            progress.clear()
        if cache is not None and result.path in keys:
            cache.put(keys.pop(result.path), result)
        on_result(result)
        if progress is not None:
            progress.advance()

    jobs_left = sum(1 for item in items if not isinstance(item, FileResult))
    pool = None
    try:
        if jobs <= 1 or jobs_left <= 1:
            for item in items:
                emit(item if isinstance(item, FileResult) else _convert(item))
        else:
            method = "fork" if sys.platform == "linux" else None
            if method == "fork":
                _import_before_forking(items)
            context = multiprocessing.get_context(method)
            pool = context.Pool(min(jobs, jobs_left), initializer=_ignore_sigint)
            pending = [item if isinstance(item, FileResult) else pool.apply_async(_convert, (item,)) for item in items]
            for entry in pending:
                emit(entry if isinstance(entry, FileResult) else entry.get())
            pool.close()
            pool.join()
            pool = None
    except KeyboardInterrupt:
        return False
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if progress is not None:
            progress.clear()
    return True
