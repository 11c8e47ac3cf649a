"""Run the selected codemods over one file's source: one parse, every codemod, one safety check.

The engine knows nothing about any particular migration. It asks each codemod for its byte
triggers (so most files are never parsed), parses once, hands the same tree from one codemod to
the next, and checks that what comes out still parses before anyone writes it.
"""

from __future__ import annotations

import ast
import warnings
from typing import TYPE_CHECKING, Iterable, Sequence

from migrator.options import ConvertOptions
from migrator.results import Entry, FileResult, Status

if TYPE_CHECKING:  # LibCST is imported only once a file passes the byte pre-filter
    import libcst as cst

    from migrator.codemod import MigrationCodemod

class BeyondLimits(Exception):
    """A valid file that LibCST cannot hold (its parser's nesting limit): left unchanged, never failed."""


class ConversionError(Exception):
    """A file that cannot be converted; ``line`` points at the cause when there is one."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def applicable(codemods: Iterable, data: bytes) -> list:
    """The pre-filter (``migrator.prefilter``): only codemods whose declared names the file uses.

    Works on codemod classes and on the registry's light ``CodemodInfo`` records alike.
    """
    from migrator.prefilter import applicable as prefiltered

    return prefiltered(codemods, data)


def loaded(codemod) -> type[MigrationCodemod]:
    return codemod.load() if hasattr(codemod, "load") else codemod


def parse(data: bytes) -> cst.Module:
    import libcst as cst

    if b"\x00" in data:
        raise ConversionError("binary file (it contains NUL bytes), not Python source")
    try:
        return cst.parse_module(data)
    except cst.ParserSyntaxError as exc:
        hint = " (Python 2 code? migrate reads Python 3 only)" if _looks_like_python2(data) else ""
        message, line = exc.message, exc.raw_line
        try:  # Python's own parser names the line and the problem more precisely
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ast.parse(data)
        except SyntaxError as py_exc:
            message, line = py_exc.msg, py_exc.lineno or line
        except (ValueError, RecursionError, MemoryError):
            pass
        else:
            # Python accepts the file: it is valid, only deeper than LibCST's parser goes
            # (e.g. thousands of implicitly concatenated strings in a row).
            raise BeyondLimits(f"LibCST's parser stops at line {line} of this valid file (nested too deep)") from None
        raise ConversionError(f"syntax error: {message}{hint}", line) from None
    except (UnicodeDecodeError, LookupError, SyntaxError) as exc:
        raise ConversionError(f"cannot decode the file: {exc}") from None


def _looks_like_python2(data: bytes) -> bool:
    return any(
        line.lstrip().startswith((b"print ", b"exec ")) and not line.lstrip().startswith((b"print (", b"exec ("))
        for line in data.splitlines()
    )


def convert_source(
    data: bytes,
    codemods: Sequence,
    options: ConvertOptions | None = None,
    path: str = "<string>",
    *,
    prefilter: bool = True,
) -> FileResult:
    """Convert one file's bytes. Never raises for bad input: failures come back as results.

    ``codemods`` are codemod classes or the registry's ``CodemodInfo`` records (loaded on demand).
    ``prefilter=False`` runs every codemod on every file (what the pre-filter must agree with).
    """
    options = options or ConvertOptions()
    todo = applicable(codemods, data) if prefilter else list(codemods)
    if not todo:
        return FileResult(path, "unchanged", data)
    try:
        try:
            return _convert(data, todo, options, path)
        except RecursionError:
            pass
        # A valid file can nest deeper than Python's default limits allow: try again where it fits.
        from migrator import deep

        try:
            return deep.call_deep(lambda: _convert(data, todo, options, path))
        except RecursionError:
            raise BeyondLimits(f"nested deeper than {deep.RECURSION_LIMIT} frames allow") from None
    except BeyondLimits as exc:
        why = f"{exc}; left unchanged: convert it by hand if it is a training script"
        return FileResult(path, "unchanged", data, entries=(Entry("migrate", 1, why, "follow-up"),))


def _convert(data: bytes, todo: Sequence, options: ConvertOptions, path: str) -> FileResult:
    """Parse, run ``todo`` over the one tree, check the result. Lets ``RecursionError`` through."""
    from migrator.libcst_imports import import_codemod_framework

    import_codemod_framework()
    from libcst.codemod import CodemodContext, SkipFile
    from libcst.metadata import MetadataWrapper

    from migrator import walks
    from migrator.codemod import EARLIER

    try:
        tree = parsed = parse(data)
        # The parser's tree has no node twice, so it needs no defensive copy. While codemods
        # return the very same tree, they share its wrapper and every metadata already resolved.
        wrapper: MetadataWrapper | None = MetadataWrapper(tree, unsafe_skip_copy=True)
        entries: list[Entry] = []
        for cls in map(loaded, todo):
            if wrapper is None:
                # A codemod changed the tree and may have put one node in two places: copy once
                # if it did (metadata is keyed by node). The walk that tells is recorded for the
                # codemods' own questions about this tree anyway (``migrator.walks``).
                wrapper = MetadataWrapper(tree, unsafe_skip_copy=not walks.repeats_a_node(tree))
                tree = wrapper.module
            # What came before (the file's bytes, earlier codemods' entries) for codemods that audit it.
            codemod = cls(CodemodContext(filename=path, scratch={EARLIER: (data, tuple(entries))}), options)
            codemod.shared_wrapper = wrapper
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tree = codemod.transform_module(tree)
            except SkipFile:
                pass
            if tree is not wrapper.module:
                # A transform rebuilds the nodes above any it visits, even where it changes nothing
                # (four runs in ten, over the fixtures): an equal tree keeps the tree it came from,
                # and with it every metadata already resolved. Subtrees it skipped are the very same
                # objects (``codemod._visit``), which the comparison passes at once. (Over the
                # fixtures, no tree that compares unequal generates the same code.)
                if tree.deep_equals(wrapper.module):
                    tree = wrapper.module
                else:
                    wrapper = None
            entries.extend(codemod.entries)
        # A tree no codemod changed is the file as it was read (no code generated for it).
        output = data if tree is parsed else tree.code.encode(tree.encoding)
        if output != data:
            _check_output(output, tree.encoding)
    except ConversionError as exc:
        return FileResult(path, "failed", data, error=exc.message, error_line=exc.line)
    except (RecursionError, BeyondLimits):
        raise
    except Exception as exc:  # a bug of ours must never cost the user their file
        return FileResult(path, "failed", data, error=f"internal error, file left as it was: {type(exc).__name__}: {exc}")
    status: Status = "converted" if output != data else "unchanged"
    return FileResult(
        path,
        status,
        data,
        output if status == "converted" else None,
        tuple(sorted(entries, key=lambda e: (e.line, e.kind, e.codemod))),
        encoding=tree.encoding,
    )


def _check_output(output: bytes, encoding: str) -> None:
    """Like black's safety check: what we write must still be valid Python."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(output.decode(encoding))
    except SyntaxError as exc:
        raise ConversionError(f"internal error: the result would not parse ({exc.msg}); file left as it was") from None
