"""Where each node of a module is, as LibCST's ``PositionProvider`` has it, in less time.

``PositionProvider`` generates the module's code with a codegen state that records each node's
range: a ``CodeRange`` of two ``CodePosition`` (frozen dataclasses, three objects per node), a
generator-based context manager per syntactic position, a regular expression per token, and a
dict keyed by the nodes themselves, whose ``__hash__`` is Python code. Codemods read a few
dozen of those ranges (the lines of what they report), and an engine run generates them for most
of the trees a conversion goes through: a tenth of converting a training script.

``positions(module)`` runs the same codegen with a state that keeps each range as four integers
in a dict keyed by node id, and builds a ``CodeRange`` only for the nodes asked for. It follows
the codegen protocol LibCST's own state follows (``before_codegen``/``after_codegen`` around
every node, ``record_syntactic_position`` around its own tokens), so the ranges are the same:
``tests/test_metadata_fast_path.py`` compares them, node by node, on the releases the engine's
fast path is used with (``migrator.codemod.CHECKED_LIBCST``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Iterator

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst._position import CodePosition, CodeRange
from libcst.metadata.position_provider import NEWLINE_RE  # the line breaks LibCST's own state counts


class _State(CodegenState):
    """LibCST's codegen state, with each node's (start line, start column, end line, end column)."""

    def __init__(self, module: cst.Module) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.line = 1  # one-indexed, as LibCST counts
        self.column = 0  # zero-indexed
        self.starts: list[tuple[int, int]] = []
        self.ranges: dict[int, tuple[int, int, int, int]] = {}
        self.nodes: dict[int, cst.CSTNode] = {}

    def add_indent_tokens(self) -> None:
        tokens = self.indent_tokens
        self.tokens.extend(tokens)
        for token in tokens:
            self._advance(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self._advance(value)

    def _advance(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            segments = NEWLINE_RE.split(value)
            self.line += len(segments) - 1
            self.column = len(segments[-1])
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self.starts.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self.starts.pop()
        key = id(node)
        if key not in self.ranges:  # a syntactic position recorded already stands
            self.ranges[key] = (*start, self.line, self.column)
            self.nodes[key] = node

    def record_syntactic_position(self, node: cst.CSTNode, *, start_node: cst.CSTNode | None = None,
                                  end_node: cst.CSTNode | None = None) -> _Syntactic:
        return _Syntactic(self, node, start_node, end_node)


class _Syntactic:
    """``record_syntactic_position`` as an object with ``__enter__``/``__exit__``: no generator."""

    __slots__ = ("state", "node", "start_node", "end_node", "line", "column")

    def __init__(self, state: _State, node: cst.CSTNode, start_node: cst.CSTNode | None,
                 end_node: cst.CSTNode | None) -> None:
        self.state, self.node, self.start_node, self.end_node = state, node, start_node, end_node

    def __enter__(self) -> None:
        self.line, self.column = self.state.line, self.state.column

    def __exit__(self, *exc: object) -> None:
        state = self.state
        ranges = state.ranges
        start = ranges[id(self.start_node)][:2] if self.start_node is not None else (self.line, self.column)
        end = ranges[id(self.end_node)][2:] if self.end_node is not None else (state.line, state.column)
        key = id(self.node)
        ranges[key] = (*start, *end)
        state.nodes[key] = self.node


class Positions(Mapping):
    """node -> ``CodeRange``, for every node of the module, built when first asked for."""

    def __init__(self, ranges: dict[int, tuple[int, int, int, int]], nodes: dict[int, cst.CSTNode]) -> None:
        self._ranges = ranges
        self._nodes = nodes  # holds every node, so that no id is reused while this mapping lives
        self._built: dict[int, CodeRange] = {}

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        key = id(node)
        built = self._built.get(key)
        if built is None:
            if self._nodes.get(key) is not node:
                raise KeyError(node)
            line, column, end_line, end_column = self._ranges[key]
            built = self._built[key] = CodeRange(CodePosition(line, column), CodePosition(end_line, end_column))
        return built

    def __iter__(self) -> Iterator[cst.CSTNode]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)


def positions(module: cst.Module) -> Positions:
    state = _State(module)
    module._codegen(state)
    return Positions(state.ranges, state.nodes)
