"""The byte pre-filter: which codemods a file can concern, decided without parsing it.

Generated from what each codemod declares, never from a hand-kept list that could disagree:

* ``TRIGGERS``: whole identifiers or dotted names (``b"Trainer"``, ``b"ray.air"``). They match
  only as whole names: ``Trainer`` does not match ``Maintainer``, ``air`` does not match ``pair``.
  A trigger that starts with ``*`` is the end of an identifier (``b"*Trainer"``: ``Trainer``,
  ``SFTTrainer``, a project's ``QuestionAnsweringTrainer``), for a codemod that acts on any name
  so ending: a library's files, which name ``transformers`` in every import, need not be parsed
  for it. One that ends with ``*`` is the start of a name (``b"transformers.modeling_*"``). One
  that starts with ``.`` is an attribute's name (``b".max_len"``: ``tokenizer.max_len``, not a
  local ``max_len``), for a codemod that acts only where the name follows a dot.
* ``MODULES`` (optional): top-level or dotted module names; when a codemod declares them, the
  file must also *import* one of them (``import ray``, ``from ray.air import x``,
  ``import os, ray``). Plain words in comments and docstrings rarely pass both checks.

Only substring searches and literal-led regular expressions over the file's bytes (no
tokenizer: tokenizing costs about as much as parsing). The first step, which of the triggers'
literals the file holds at all, is one pass of an Aho-Corasick automaton (``ahocorasick_rs``) over
the bytes: one substring search per literal, about a hundred of them, cost 0.18 s over the
benchmark's 5.5 MB tree (``benchmarks/convert_throughput.py``), the automaton 0.01 s. Without that
package (a platform it has no wheel for) the searches run one by one, with the same result.
``tests/test_prefilter.py`` runs every golden fixture and the property-test corpus with and without
this filter and requires the same result.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Sequence

_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_ENDING = re.compile(rb"\*[A-Za-z0-9_]+\Z")
_START = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*[.A-Za-z0-9_]?\*\Z")
_ATTRIBUTE = re.compile(rb"\.[A-Za-z_][A-Za-z0-9_]*\Z")
WILDCARD = b"*"
DOT = b"."


def _check_names(owner: str, kind: str, names: Iterable[bytes], wildcards: bool = False) -> None:
    for name in names:
        if not isinstance(name, bytes) or not (
            _NAME.match(name) or (wildcards and (_ENDING.match(name) or _START.match(name) or _ATTRIBUTE.match(name)))
        ):
            allowed = "whole identifiers, dotted names, *endings, starts* or .attributes" if wildcards else "whole identifiers or dotted names"
            raise ValueError(f"{owner}: {kind} must be {allowed} as bytes, got {name!r}")


def _literal(trigger: bytes) -> bytes:
    """The bytes a file must hold for ``trigger`` to match: the trigger less its ``*`` or leading ``.``."""
    return trigger.strip(WILDCARD).lstrip(DOT)


def _alternation(names: Iterable[bytes]) -> bytes:
    # Longest first, so that "ray.air" is tried before "ray".
    return b"|".join(re.escape(n) for n in sorted(set(names), key=lambda n: (-len(n), n)))


_IDENTIFIER_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


@lru_cache(maxsize=256)
def _names_pattern(names: tuple[bytes, ...]) -> re.Pattern[bytes]:
    # No look-behind at the front: a pattern that starts with alternatives of literals lets the
    # regex engine skip ahead by first character; the byte before a hit is checked by hand.
    return re.compile(rb"(?:" + _alternation(names) + rb")(?![A-Za-z0-9_])")


@lru_cache(maxsize=256)
def _attributes_pattern(names: tuple[bytes, ...]) -> re.Pattern[bytes]:
    # The dot first (a literal the engine skips ahead to), then what Python allows between it and
    # the name inside brackets: blanks, line breaks, backslash continuations, comments. Each byte
    # there can be matched one way only (a comment runs to its line's end, line breaks are the
    # blanks' alone): with a comment that could end anywhere, ``.`` before a run of ``#`` took
    # time exponential in the run's length, and would with two ways to read each CRLF.
    return re.compile(rb"\.(?:[ \t\f\r\n]|\\(?=[\r\n])|#[^\r\n]*(?=[\r\n]))*(?:" + _alternation(names)
                      + rb")(?![A-Za-z0-9_])")


@lru_cache(maxsize=256)
def _starts_pattern(starts: tuple[bytes, ...]) -> re.Pattern[bytes]:
    return re.compile(_alternation(starts))


def names_any(data: bytes, names: tuple[bytes, ...]) -> bool:
    """Whether one of ``names`` occurs as a whole name (not inside a longer identifier), or, for a
    ``*ending``, at the end of one, for a ``start*`` at the start of one, for an ``.attribute``
    after a dot."""
    endings = tuple(n[1:] for n in names if n.startswith(WILDCARD))
    if endings and _names_pattern(endings).search(data):
        return True
    attributes = tuple(n[1:] for n in names if n.startswith(DOT))
    if attributes and _attributes_pattern(attributes).search(data):
        return True
    starts = tuple(n[:-1] for n in names if n.endswith(WILDCARD))
    for match in _starts_pattern(starts).finditer(data) if starts else ():
        start = match.start()
        if start == 0 or data[start - 1] not in _IDENTIFIER_BYTES:
            return True
    whole = tuple(n for n in names if not n.startswith((WILDCARD, DOT)) and not n.endswith(WILDCARD))
    for match in _names_pattern(whole).finditer(data) if whole else ():
        start = match.start()
        if start == 0 or data[start - 1] not in _IDENTIFIER_BYTES:
            return True
    return False


# Literal-led patterns (``from``/``import`` first) are fast to scan for. Prose like "import ray
# here" in a comment can pass; that costs a parse, never a wrong result.
_FROM = re.compile(rb"from[ \t]+(\.*[A-Za-z_][\w.]*)[ \t]+import\b")
_IMPORT = re.compile(rb"import[ \t]+([A-Za-z_][\w.]*(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*(?:[ \t]+as[ \t]+\w+)?)*)")
_AS = re.compile(rb"[ \t]+as[ \t]+\w+")


def imported_modules(data: bytes) -> set[bytes]:
    """Every module an ``import``/``from`` names, with all its dotted prefixes (``ray.air`` -> ``ray``)."""
    names: list[bytes] = [m.group(1) for m in _FROM.finditer(data)]
    for match in _IMPORT.finditer(data):
        names.extend(part.strip() for part in _AS.sub(b"", match.group(1)).split(b","))
    modules: set[bytes] = set()
    for name in names:
        parts = name.split(b".")
        modules.update(b".".join(parts[: i + 1]) for i in range(len(parts)))
    return modules


class Prefilter:
    """The filter for one selection of codemods (classes or the registry's light records)."""

    def __init__(self, codemods: Sequence) -> None:
        self.codemods = tuple(codemods)
        literals: set[bytes] = set()
        for cm in self.codemods:
            owner = getattr(cm, "id", None)
            owner = owner() if callable(owner) else owner or repr(cm)
            _check_names(owner, "TRIGGERS", cm.TRIGGERS, wildcards=True)
            _check_names(owner, "MODULES", getattr(cm, "MODULES", ()))
            literals.update(_literal(t) for t in cm.TRIGGERS)
        self._literals = tuple(sorted(literals))
        self._automaton = _automaton(self._literals)

    def literals_in(self, data: bytes) -> set[bytes]:
        """The triggers' literals that occur in ``data``, anywhere (inside longer words too)."""
        if self._automaton is not None:
            literals = self._literals
            return {literals[i] for i, _, _ in self._automaton.find_matches_as_indexes(data, overlapping=True)}
        return {literal for literal in self._literals if literal in data}

    def applicable(self, data: bytes) -> list:
        """The codemods, in order, that ``data`` can concern.

        Cheapest first: the triggers' literals found anywhere (``literals_in``; most files stop
        here), then the imports of the few files left, then whole-name matches of the triggers
        that occurred.
        """
        present = self.literals_in(data)
        if not present:
            return []
        imported: set[bytes] | None = None
        todo = []
        for cm in self.codemods:
            triggers = tuple(t for t in cm.TRIGGERS if _literal(t) in present)
            if not triggers:
                continue
            modules = getattr(cm, "MODULES", ())
            if modules:
                if imported is None:
                    imported = imported_modules(data)
                if imported.isdisjoint(modules):
                    continue
            if names_any(data, triggers):
                todo.append(cm)
        return todo


def _automaton(literals: tuple[bytes, ...]):
    """One automaton finding every literal at once; None without ``ahocorasick_rs`` (or literals)."""
    if not literals:
        return None
    try:
        from ahocorasick_rs import BytesAhoCorasick
    except ImportError:
        return None
    return BytesAhoCorasick(literals)


@lru_cache(maxsize=32)
def for_codemods(codemods: tuple) -> Prefilter:
    return Prefilter(codemods)


def applicable(codemods: Iterable, data: bytes) -> list:
    return for_codemods(tuple(codemods)).applicable(data)
