"""Per-file outcomes: small frozen dataclasses, free of LibCST so reports stay cheap to import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EntryKind = Literal["change", "follow-up"]
Status = Literal["converted", "unchanged", "failed"]


@dataclass(frozen=True)
class Entry:
    """One line of the report: something changed, or something left for a human."""

    codemod: str
    line: int
    message: str
    kind: EntryKind
    #: In a notebook: the cell (1-based, as Jupyter counts them) that ``line`` is a line of.
    cell: int | None = None

    @property
    def code(self) -> str:
        """The finding's stable code (``RT102``), from ``migrator/data/codes.toml``."""
        from migrator.codes import code_for

        return code_for(self.codemod, self.kind)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"codemod": self.codemod, "code": self.code, "line": self.line, "message": self.message,
                                   "kind": self.kind}
        if self.cell is not None:
            data["cell"] = self.cell
        return data

    def where(self, path: str) -> str:
        """``path:line``, or ``path:cell N:line`` in a notebook."""
        return f"{path}:cell {self.cell}:{self.line}" if self.cell is not None else f"{path}:{self.line}"


@dataclass(frozen=True)
class FileResult:
    """What happened to one file. ``output`` is set only when the file changed."""

    path: str
    status: Status
    source: bytes
    output: bytes | None = None
    entries: tuple[Entry, ...] = ()
    error: str | None = None
    error_line: int | None = None
    encoding: str = "utf-8"
    #: A converted notebook's changed cells (``migrator.notebooks.CellChange``), for per-cell diffs.
    notebook_cells: tuple = ()

    @property
    def changes(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "change"]

    @property
    def follow_ups(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "follow-up"]

    def text(self, which: Literal["source", "output"]) -> str:
        data = self.source if which == "source" else (self.output if self.output is not None else self.source)
        return data.decode(self.encoding, errors="replace")
