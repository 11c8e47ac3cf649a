"""Converting many files: the pre-filter in this process, the parsing in other processes, results in order.

``convert_paths`` reads every file and runs the byte pre-filter here (it is fast, and most files
of a repository stop at it). With ``jobs`` above 1 on Linux, the second file the pre-filter lets
through goes to a converting process (``_Converter``), forked then, or before the command line
was even read where ``head_start`` was asked for (``migrator.launch``): it imports LibCST and
the codemods while this process goes on through the rest of the files, then forks ``jobs``
workers from itself, which start on the files sent so far, largest first. Elsewhere (no fork)
a pool of ``jobs`` processes takes the files once all are read. Results come back to the caller in the order of
``paths`` whatever finishes first, so output and reports do not depend on ``-j``. All writing
stays in this process (the caller's ``on_result``), with ``write_atomic``: on Ctrl-C the other
processes are killed, no file is left half-written, and ``convert_paths`` returns ``False`` so
the caller can exit with 130.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import multiprocessing.queues
import os
import queue
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Sequence, TextIO

from migrator.cache import ResultCache
from migrator.engine import applicable, convert_source
from migrator.libcst_imports import import_codemod_framework
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


def _die_with_parent(parent: int) -> None:
    """On Linux, have the kernel kill this process when ``parent`` exits: a run killed outright
    (SIGKILL, a CI job's timeout) must leave no converting process or worker behind, blocked
    forever on a queue whose other end no one will write to again."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux's C library
        return
    if os.getppid() != parent:  # it exited before the request was made
        os._exit(1)


def _worker_start(parent: int) -> None:
    _ignore_sigint()
    _die_with_parent(parent)


#: Whether workers can be forked from a process that has imported LibCST and the codemods.
FORKS = sys.platform == "linux"
PR_SET_PDEATHSIG = 1  # prctl(2)
#: An item of ``convert_paths`` whose job went to the converting process.
SENT = object()

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
    import_codemod_framework()  # what the engine and every codemod import first

    import migrator.codemod  # noqa: F401

    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def _import_before_forking(codemods: Sequence) -> None:
    """Import LibCST and ``codemods`` here, once, so that the workers forked from this process
    start with them (about 0.3 CPU-s, most of it LibCST; each worker importing them itself took
    most of what a second core saves on a repository's few training scripts). Not black (0.1 s):
    most launches are written as black would write them without it (``_train_function``), and
    a worker imports it at the first that needs it. (LibCST and ``migrator.codemod`` come with
    the first codemod loaded, and with ``_collect_less``.)"""
    from migrator.engine import loaded

    for codemod in codemods:
        loaded(codemod)
    _collect_less()


def _convert(job: tuple[bytes, tuple, ConvertOptions, str]) -> FileResult:
    data, todo, options, path = job
    _collect_less()
    if _is_notebook(path):  # its code cells are converted as one program (``migrator.notebooks``)
        from migrator import notebooks

        return notebooks.convert(data, todo, options, path=path)
    return convert_source(data, todo, options, path=path)


#: What ``_Converter``'s queue carries after the last job.
_END = None


class _Jobs(multiprocessing.queues.Queue):
    @staticmethod
    def _on_queue_feeder_error(e, obj) -> None:
        """The converting process went away before it read every job: ``_Converter.result``
        converts them here. (The default prints a traceback.)"""


class _Converter:
    """The process that converts, forked when the pre-filter finds a second file to convert (a
    file alone is converted in the caller's process: nothing to share, no process to start), or
    earlier, unconfigured, by ``head_start``: ``configure`` then tells it how many workers to fork.

    While this process reads and pre-filters the rest of the files, it imports LibCST and the
    codemods (about 0.6 CPU-s, that the pre-filter of a large tree no longer waits for), then
    forks the workers from itself, so they start with the imports done. The jobs sent before
    then go to the workers largest first (a large file started last is the run's tail), later
    ones as they come. Results come back in the order the jobs were sent.

    The jobs go through a ``multiprocessing.Queue``, whose thread here writes them to the pipe:
    ``submit`` never waits for the other process to read. The process and its workers have a
    process group of their own, so ``kill`` ends all of them with one signal, and Ctrl-C at a
    terminal reaches this process alone.
    """

    def __init__(self, workers: int | None = None, codemods: tuple | None = None) -> None:
        context = multiprocessing.get_context("fork")
        self._jobs = _Jobs(ctx=context)
        self._results, results_end = context.Pipe(duplex=False)
        self._process = context.Process(target=_serve, name="migrate-convert", daemon=False,
                                        args=(self._jobs, results_end, self._results, os.getpid()))
        self._process.start()
        results_end.close()
        try:  # its own process group, set from both sides: ``kill`` may come before the child's own call
            os.setpgid(self._process.pid, self._process.pid)
        except OSError:  # it did so already, or it is gone
            pass
        self._sent: list[tuple] = []  # kept to convert here should the process die
        self._returned = 0
        if workers is not None:
            self.configure(workers, codemods or ())

    def configure(self, workers: int, codemods: tuple) -> None:
        """How many workers to fork, and the codemods any job may need: the first thing sent."""
        self._jobs.put((workers, codemods))

    def submit(self, job: tuple) -> None:
        self._sent.append(job)
        self._jobs.put(job)

    def finish(self) -> None:
        """No more jobs."""
        self._jobs.put(_END)
        self._jobs.close()

    def result(self) -> FileResult:
        """The result of the next job sent; converted here if the process went away before it."""
        job = self._sent[self._returned]
        self._returned += 1
        if self._results is not None:
            try:
                return self._results.recv()
            except (EOFError, OSError):  # killed (out of memory?): the rest is converted here
                self._results.close()
                self._results = None
        return _convert(job)

    def kill(self) -> None:
        self._jobs.cancel_join_thread()  # exit without waiting to hand over jobs nobody will read
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except OSError:
            self._process.kill()
        self._process.join()

    def close(self) -> None:
        self._process.join()
        if self._results is not None:
            self._results.close()


def _serve(jobs: multiprocessing.Queue, results, parent_end, parent: int) -> None:
    """``_Converter``'s process: import, fork the workers, convert every job, send the results in
    order. On any error it stops quietly: the parent converts what it did not send back, and
    reports the error there as it would have without this process."""
    parent_end.close()  # so that this process's sends fail, not block, should the parent go away
    os.setpgid(0, 0)
    _ignore_sigint()
    _die_with_parent(parent)
    try:
        _convert_sent(jobs, results)
    except Exception:
        pass


def _convert_sent(jobs: multiprocessing.Queue, results) -> None:
    import_codemod_framework()  # the bulk of the imports, whatever the jobs
    try:
        workers, codemods = jobs.get_nowait()
    except queue.Empty:  # a head start (``head_start``): the command line is still being read
        from migrator.registry import index

        _import_before_forking(index())  # every codemod: any may be selected
        workers, codemods = jobs.get()
    first, ended = _arrived(jobs)
    if ended:  # every job is known: only their codemods
        _import_before_forking(dict.fromkeys(c for job in first for c in job[1]))
    else:  # the parent is still pre-filtering: what any job may need costs no waiting now
        _import_before_forking(codemods)
        more, ended = _arrived(jobs)
        first += more
    pool = multiprocessing.get_context("fork").Pool(min(workers, len(first)) if ended else workers,
                                                    initializer=_worker_start, initargs=(os.getpid(),))
    try:
        pending: list = [None] * len(first)
        for index in sorted(range(len(first)), key=lambda i: -len(first[i][0])):  # largest first
            pending[index] = pool.apply_async(_convert, (first[index],))
        while not ended:
            job = jobs.get()
            if job is _END:
                break
            pending.append(pool.apply_async(_convert, (job,)))
        for handle in pending:
            results.send(handle.get())
        pool.close()
        pool.join()
    finally:
        pool.terminate()


#: The converting process ``head_start`` forked, until ``convert_paths`` takes it or drops it.
_early: _Converter | None = None


def head_start() -> None:
    """Fork the converting process now, before the command line is even read.

    Its imports (LibCST and the codemods, about 0.2 s of one core) are the longest wait of a run
    over a tree that holds training scripts; begun here, they overlap this process's own start-up
    (the command line's imports, finding and pre-filtering the files) instead of following it.
    ``convert_paths`` takes it at the second file to convert; a run that finds fewer, or runs
    with one job, kills it unused: a fifth of a second of an otherwise idle core, spent only on
    runs over folders (``migrator.launch`` decides)."""
    global _early
    if _early is not None or not FORKS or available_cores() < 2:
        return
    try:
        _early = _Converter()
    except OSError:  # no process to be had: the run forks one later if it can
        return
    atexit.register(_drop_head_start)  # before multiprocessing's own, which would wait for it


def _take_head_start() -> _Converter | None:
    global _early
    early, _early = _early, None
    return early


def _drop_head_start() -> None:
    early = _take_head_start()
    if early is not None:
        early.kill()


def _arrived(jobs: multiprocessing.Queue) -> tuple[list[tuple], bool]:
    """The jobs in the queue now, and whether the last one is among them."""
    found = []
    try:
        while True:
            job = jobs.get_nowait()
            if job is _END:
                return found, True
            found.append(job)
    except queue.Empty:
        return found, False


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
    # Read, look up, pre-filter, here. Each item is a finished result, a job, or a job sent to the
    # converting process (``SENT``), which is forked at the first job where it may be.
    items: list[FileResult | tuple | object] = []
    keys: dict[str, str] = {}  # path -> cache key, for the jobs whose results are to be stored
    context = cache.context(codemods, options) if cache is not None else ""
    converter: _Converter | None = None
    held: int | None = None  # the first job: a file alone is converted here, with no process to start
    forks = jobs > 1 and FORKS
    pool = None

    def emit(result: FileResult) -> None:
        if progress is not None:
            progress.clear()
        if cache is not None and result.path in keys:
            cache.put(keys.pop(result.path), result)
        on_result(result)
        if progress is not None:
            progress.advance()

    try:
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
            job = (data, todo, options, str(path))
            if converter is None and forks and held is not None:  # the second job
                try:
                    converter = _take_head_start() or _Converter()
                except OSError:  # no process to be had (a limit on processes, memory): all of it here
                    forks = False
                else:
                    converter.configure(jobs, codemods)
                    converter.submit(items[held])
                    items[held] = SENT
            if converter is not None:
                converter.submit(job)
                items.append(SENT)
            else:
                held = len(items) if held is None else held
                items.append(job)
        if converter is not None:
            converter.finish()

        jobs_left = sum(1 for item in items if isinstance(item, tuple))
        if jobs > 1 and jobs_left > 1 and not FORKS:  # no fork here: a pool of fresh interpreters
            pool = multiprocessing.get_context(None).Pool(min(jobs, jobs_left), initializer=_ignore_sigint)
            items = [pool.apply_async(_convert, (item,)) if isinstance(item, tuple) else item for item in items]
        for item in items:
            if isinstance(item, FileResult):
                emit(item)
            elif item is SENT:
                emit(converter.result())
            elif isinstance(item, tuple):
                emit(_convert(item))
            else:
                emit(item.get())
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
        if converter is not None:
            converter.close()
            converter = None
    except KeyboardInterrupt:
        return False
    finally:
        _drop_head_start()  # not taken: fewer than two files to convert, or one job
        if converter is not None:
            converter.kill()
        if pool is not None:
            pool.terminate()
            pool.join()
        if progress is not None:
            progress.clear()
    return True
