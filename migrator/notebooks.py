"""Jupyter notebooks: the code cells, in order, converted as one program, written back as a notebook.

    cell 1: import transformers            cell 1: import transformers, ray.train ...
    cell 2: !pip install -q datasets       cell 2: !pip install -q datasets          (kept exactly)
    cell 3: model = ...; args = ...        cell 3: (its code moved into train_func, below)
    cell 4: trainer.train()                cell 4: def train_func(config): ...
                                                   ray_trainer = TorchTrainer(train_func, ...)

How: IPython's own syntax (line magics ``%time``, cell magics ``%%capture``, shell lines
``!pip``, ``x = !ls``, help ``x?``/``??x``, with their backslash continuations) is masked to an
import of a unique name (never moved by the codemods), so it is never parsed as Python and never lost;
the cells are joined with one unique marker comment per boundary; the joined program goes
through the engine like any script; the result is split again on the markers and the masks are
restored. The split is by top-level statements only (a marker the codemods carried into a
function moves up to before that function), so every cell is whole Python again, and each
output line belongs to exactly one cell: the train function lands in the last cell whose code it
took in, which is where training happened, with the launch after it.

Notebooks are read and written with ``nbformat`` (imported only when a notebook is converted),
keeping the nbformat version, markdown cells, cell ids, metadata and the outputs of untouched
cells; a changed cell loses its outputs (they no longer match its code).
"""

from __future__ import annotations

import ast
import io
import re
import secrets
import tokenize
import warnings
from dataclasses import dataclass
from typing import Sequence

from migrator.options import ConvertOptions
from migrator.results import Entry, FileResult

SUFFIX = ".ipynb"

#: Cell magics whose body is Python: only the ``%%name`` line is masked, the body is converted.
PYTHON_BODY_CELL_MAGICS = frozenset({"capture", "time", "timeit", "prun", "debug"})

_MAGIC_START = re.compile(r"^\s*(%|!|\?)")
_ASSIGNED_MAGIC = re.compile(r"^\s*[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*(%|!)")
_HELP_END = re.compile(r"^\s*[A-Za-z_*][\w.*\[\]()]*\s*\?\??\s*$")


class NotebookError(Exception):
    """A notebook that cannot be read or converted; the file is left as it was."""


def is_notebook(path: str) -> bool:
    return str(path).lower().endswith(SUFFIX)


# -- reading ---------------------------------------------------------------------------------------
def read(data: bytes):
    """The notebook in ``data`` (nbformat 4), or ``NotebookError`` saying in one line what is wrong."""
    import nbformat

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"not a notebook: not UTF-8 JSON ({exc.reason} at byte {exc.start})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    except nbformat.reader.NotJSONError:
        raise NotebookError("not a notebook: the file is not valid JSON") from None
    except Exception as exc:  # nbformat raises whatever its readers hit on odd JSON
        raise NotebookError(f"not a notebook: {type(exc).__name__}: {exc}") from None
    if not isinstance(nb, dict) or "nbformat" not in nb:
        raise NotebookError("not a notebook: no 'nbformat' field")
    version = nb.get("nbformat")
    if version != 4:
        raise NotebookError(
            f"nbformat {version} notebooks are not supported (only 4); open and save it in Jupyter to upgrade it"
        )
    try:
        nbformat.validate(nb)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookError(f"not a valid nbformat 4 notebook: {message}") from None
    return nb


def write(nb, original: bytes) -> bytes:
    import nbformat

    text = nbformat.writes(nb)
    if original.endswith(b"\n") and not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")


# -- masking IPython syntax ------------------------------------------------------------------------
@dataclass
class Masked:
    """One cell's Python stand-in: ``text``, and what each placeholder replaced."""

    text: str
    magics: dict[int, str]
    #: per line of ``text``: the cell's own line number (1-based) it came from
    lines: list[int]


def _candidates(lines: Sequence[str]) -> set[int]:
    found = set()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _MAGIC_START.match(line) or _ASSIGNED_MAGIC.match(line) or _HELP_END.match(line):
            found.add(i)
    return found


def _ends_cleanly(text: str) -> bool:
    """Whether ``text`` ends between logical lines (no open string, bracket or continuation)."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO(text).readline):
            pass
    except (tokenize.TokenError, SyntaxError):
        return False
    return True


def mask(source: str, token: str, counter: list[int]) -> Masked:
    """Replace IPython-only lines of one cell by ``import <token>_<n>`` placeholders."""
    lines = source.splitlines()
    magics: dict[int, str] = {}

    def placeholder(indent: str, original: str) -> str:
        n = counter[0]
        counter[0] += 1
        magics[n] = original
        # An import: the codemods never move imports, so IPython lines stay on the driver, in
        # order (a ``!pip install`` or ``%matplotlib`` never lands on the workers, which have no
        # IPython), and imports the codemods add go after them.
        return f"{indent}import {token}_{n}"

    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        name = lines[first].lstrip()[2:].split(maxsplit=1)[0] if lines[first].strip() != "%%" else ""
        if name not in PYTHON_BODY_CELL_MAGICS:  # %%bash, %%writefile...: the whole cell is not Python
            return Masked(placeholder("", source.rstrip("\n")) + "\n", magics, [first + 1])
        head = placeholder("", lines[first])
        rest = mask("\n".join(lines[first + 1:]), token, counter)
        magics.update(rest.magics)
        return Masked(head + "\n" + rest.text, magics, [first + 1] + [n + first + 1 for n in rest.lines])

    # A candidate is IPython only where a new logical line starts: not inside a string, brackets
    # or a backslash continuation of Python code (a ``% b`` in parentheses is a modulo). The
    # prefix before it, earlier magics masked, must tokenize to its end.
    candidates: set[int] = set()
    for i in sorted(_candidates(lines)):
        if _ends_cleanly(_render(lines[:i], candidates)[0]):
            candidates.add(i)
    out: list[str] = []
    origin: list[int] = []
    i = 0
    while i < len(lines):
        if i in candidates:
            group = [lines[i]]
            while group[-1].rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                group.append(lines[i])
            indent = lines[i - len(group) + 1][: len(group[0]) - len(group[0].lstrip())]
            out.append(placeholder(indent, "\n".join(group)))
            origin.append(i - len(group) + 2)
        else:
            out.append(lines[i])
            origin.append(i + 1)
        i += 1
    return Masked("\n".join(out) + ("\n" if out else ""), magics, origin)


def _render(lines: Sequence[str], candidates: set[int]) -> tuple[str, list[int]]:
    """The cell with candidates (and their backslash continuations) masked; original line -> rendered line."""
    out: list[str] = []
    where = [0] * len(lines)
    i = 0
    while i < len(lines):
        where[i] = len(out)
        if i in candidates:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            while lines[i].rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                where[i] = len(out)
            out.append(f"{indent}pass")
        else:
            out.append(lines[i])
        i += 1
    return "\n".join(out) + "\n", where


def unmask(text: str, token: str, magics: dict[int, str]) -> str:
    pattern = re.compile(rf"^([ \t]*)import {re.escape(token)}_(\d+)$")
    out = []
    for line in text.split("\n"):
        match = pattern.match(line)
        if not match:
            out.append(line)
            continue
        indent, original = match.group(1), magics[int(match.group(2))]
        first = original.split("\n")[0]
        old_indent = first[: len(first) - len(first.lstrip())]
        if indent == old_indent:
            out.append(original)
        else:  # carried into a function: indent the magic (and its continuation) like its new block
            extra = indent[len(old_indent):] if indent.startswith(old_indent) else ""
            pieces = original.split("\n")
            out.append("\n".join([indent + pieces[0].lstrip()] + [extra + p if p.strip() else p for p in pieces[1:]]))
    return "\n".join(out)


# -- joining and splitting -------------------------------------------------------------------------
@dataclass
class Program:
    text: str
    token: str
    magics: dict[int, str]
    #: code cell index (0-based among code cells) -> first line of the cell in ``text`` (1-based)
    starts: list[int]
    #: per line of ``text`` (1-based, index 0 unused): (code cell, line in that cell) or None
    origin: list[tuple[int, int] | None]
    #: placeholder number -> (code cell, line in that cell) it stands for
    magic_home: dict[int, tuple[int, int]]


def join(sources: Sequence[str]) -> Program:
    joined_text = "\n".join(sources)
    token = "_migrate_nb_" + secrets.token_hex(6)
    while token in joined_text:  # pragma: no cover - 48 random bits
        token = "_migrate_nb_" + secrets.token_hex(6)
    counter = [0]
    magics: dict[int, str] = {}
    parts: list[str] = []
    starts: list[int] = []
    origin: list[tuple[int, int] | None] = [None]
    for index, source in enumerate(sources):
        masked = mask(source, token, counter)
        magics.update(masked.magics)
        parts.append(f"# {token} cell {index}\n")
        origin.append(None)
        starts.append(len(origin))
        parts.append(masked.text)
        origin.extend((index, n) for n in masked.lines)
    text = "".join(parts)
    home = {}
    pattern = re.compile(rf"^[ \t]*import {re.escape(token)}_(\d+)$")
    for n, line in enumerate(text.split("\n"), start=1):
        match = pattern.match(line)
        if match:
            home[int(match.group(1))] = origin[n]
    return Program(text, token, magics, starts, origin, home)


def split(text: str, program: Program, count: int) -> list[str]:
    """The converted program cut back into ``count`` cells, at top-level statement boundaries only."""
    marker = re.compile(rf"^[ \t]*# {re.escape(program.token)} cell (\d+)[ \t]*$")
    lines = text.split("\n")
    tree = ast.parse(text)
    spans = []  # top-level statements: (first line incl. decorators, last line), 1-based
    for node in tree.body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        spans.append((first, node.end_lineno or node.lineno))
    owner = {}
    for index, (first, last) in enumerate(spans):
        for n in range(first, last + 1):
            owner[n] = index
    # Where each cell begins: a top-level marker begins its cell there; a marker carried inside a
    # statement moves up to just before that statement (and the comments directly above it).
    begins: dict[int, int] = {}  # line (1-based) -> cell that begins there
    for n, line in enumerate(lines, start=1):
        match = marker.match(line)
        if not match:
            continue
        cell = int(match.group(1))
        if n in owner:
            at = spans[owner[n]][0]
            while at > 1 and lines[at - 2].lstrip().startswith("#") and not marker.match(lines[at - 2]):
                at -= 1
            n = at
        begins[n] = max(begins.get(n, -1), cell)
    cells: list[list[str]] = [[] for _ in range(count)]
    current = 0
    for n, line in enumerate(lines, start=1):
        if n in begins and begins[n] > current:
            current = begins[n]
        if marker.match(line):
            continue
        cells[current].append(line)
    # Every line went to exactly one cell, in order; check that nothing but markers was dropped.
    kept = sum(len(c) for c in cells)
    if kept != sum(1 for line in lines if not marker.match(line)):  # pragma: no cover - by construction
        raise NotebookError("internal error: the converted cells do not add up to the converted program")
    return ["\n".join(c) for c in cells]


def _tidy(cell: str) -> str:
    """No blank lines at the ends of a cell (Jupyter cells carry none)."""
    return cell.strip("\n").rstrip()


# -- converting ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellChange:
    number: int  # 1-based position among all the notebook's cells, as Jupyter shows them
    before: str
    after: str


def convert(data: bytes, codemods: Sequence, options: ConvertOptions | None, path: str) -> FileResult:
    """Convert one notebook's bytes. Never raises for bad input: failures come back as results."""
    from migrator.engine import convert_source

    try:
        nb = read(data)
    except NotebookError as exc:
        return FileResult(path, "failed", data, error=str(exc))
    code = [(number, cell) for number, cell in enumerate(nb.cells, start=1) if cell.get("cell_type") == "code"]
    sources = [cell.source if isinstance(cell.source, str) else "".join(cell.source) for _, cell in code]
    if not code:
        return FileResult(path, "unchanged", data)
    try:
        program = join(sources)
    except Exception as exc:  # a bug of ours must never cost the user their file
        return FileResult(path, "failed", data, error=f"internal error, file left as it was: {type(exc).__name__}: {exc}")
    result = convert_source(program.text.encode("utf-8"), codemods, options, path=path)
    if result.status == "failed":
        error = result.error or "cannot convert"
        line = result.error_line
        where = program.origin[line] if line and 0 < line < len(program.origin) else None
        if where is not None:  # a line of the joined program: name the cell and its line instead
            error = f"cell {code[where[0]][0]}, line {where[1]}: {error}"
        return FileResult(path, "failed", data, error=error, entries=_located(result.entries, program, code))
    if result.status == "unchanged" or result.output is None:
        return FileResult(path, "unchanged", data, entries=_located(result.entries, program, code))
    try:
        converted = result.output.decode("utf-8")
        pieces = split(converted, program, len(code))
        moved_magics = _moved_magics(pieces, program, code)
        new_sources = _place_cell_magics([unmask(_tidy(p), program.token, program.magics) for p in pieces],
                                         sources, program)
        for (number, _), text in zip(code, new_sources):
            _check_cell(text, number)
    except NotebookError as exc:
        return FileResult(path, "failed", data, error=str(exc))
    except Exception as exc:
        return FileResult(path, "failed", data, error=f"internal error, file left as it was: {type(exc).__name__}: {exc}")
    changes: list[CellChange] = []
    moved_away = {i for i, text in enumerate(new_sources) if not text.strip() and sources[i].strip()}
    for i, ((number, cell), old, new) in enumerate(zip(code, sources, new_sources)):
        if i in moved_away:
            new = "# (migrate: this cell's code moved into the train function in a later cell)"
        if new != old:
            changes.append(CellChange(number, old, new))
            cell.source = new
            cell.outputs = []
            cell.execution_count = None
    if not changes:
        return FileResult(path, "unchanged", data, entries=_located(result.entries, program, code))
    entries = list(_located(result.entries, program, code))
    entries += [Entry("notebook", 1, f"cell {c.number} changed; its outputs were cleared", "change", cell=c.number)
                for c in changes]
    entries += moved_magics
    output = write(nb, data)
    return FileResult(path, "converted", data, output, tuple(entries), notebook_cells=tuple(changes))


def _located(entries: Sequence[Entry], program: Program, code) -> tuple[Entry, ...]:
    """Report entries point at lines of the joined program; point them at (cell, line) instead.

    Entries point at the *input* program's lines (where the thing was found), which is what the
    cell and line of the original notebook are.
    """
    out = []
    for e in entries:
        where = program.origin[e.line] if 0 < e.line < len(program.origin) else None
        if where is None:
            out.append(e)
            continue
        index, line = where
        out.append(Entry(e.codemod, line, e.message, e.kind, cell=code[index][0]))
    return tuple(out)


def _moved_magics(pieces: Sequence[str], program: Program, code) -> list[Entry]:
    """Follow-ups for IPython lines that now sit in another cell (their code moved around them)."""
    found = []
    pattern = re.compile(rf"^[ \t]*import {re.escape(program.token)}_(\d+)$", re.M)
    for index, piece in enumerate(pieces):
        for match in pattern.finditer(piece):
            n = int(match.group(1))
            home, line = program.magic_home[n]
            if home != index:
                first = program.magics[n].split("\n")[0].strip()
                found.append(Entry(
                    "notebook", line,
                    f"IPython line `{first[:60]}` now runs in cell {code[index][0]}, on the driver, before the train "
                    f"function: names it uses may now exist only on the Ray workers; move or drop it",
                    "follow-up", cell=code[home][0]))
    return found


def _place_cell_magics(cells: list[str], originals: Sequence[str], program: Program) -> list[str]:
    """A ``%%magic`` line must open its cell: if the codemods moved it, put it back at the top."""
    out = list(cells)
    for i, text in enumerate(out):
        lines = text.split("\n")
        for j, line in enumerate(lines):
            stripped = line.lstrip()
            if stripped.startswith("%%") and j != next((k for k, l in enumerate(lines) if l.strip()), j):
                lines.pop(j)
                lines.insert(0, stripped)
                break
        out[i] = "\n".join(lines)
    return out


def _check_cell(text: str, number: int) -> None:
    """Each cell, magics masked again, must be Python on its own (the split kept statements whole)."""
    masked = mask(text, "_migrate_check", [0]).text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(masked)
    except SyntaxError as exc:
        raise NotebookError(f"internal error: converted cell {number} would not parse ({exc.msg}); file left as it was") from None


def diff(result: FileResult) -> str:
    """A unified diff per changed cell, each headed ``PATH:cell N``."""
    from migrator.diffs import unified_diff

    def ended(text: str) -> str:
        return text if not text or text.endswith("\n") else text + "\n"

    return "".join(unified_diff(ended(c.before), ended(c.after), f"{result.path}:cell {c.number}")
                   for c in result.notebook_cells or ())


# -- running a notebook ----------------------------------------------------------------------------
def script_of(data: bytes) -> tuple[str, int]:
    """The code cells as one script, IPython lines turned into ``pass`` with a note; and how many."""
    nb = read(data)
    parts = []
    skipped = 0
    for number, cell in enumerate(nb.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        masked = mask(source, "_migrate_magic", [0])
        skipped += len(masked.magics)
        text = masked.text
        for n, original in masked.magics.items():
            first = original.split("\n")[0].strip()
            text = re.sub(rf"(?m)^([ \t]*)import _migrate_magic_{n}$",
                          lambda m: f"{m.group(1)}pass  # skipped (IPython only): {first[:60]}", text, count=1)
        parts.append(f"# cell {number}\n{text}")
    return "\n".join(parts), skipped
