"""Golden fixtures: ``fixtures/<codemod>/<case>.input.py`` beside ``<case>.expected.py``.

An input with no expected file must come out unchanged. ``<case>.report.txt`` is the reviewed
snapshot of the report entries (changes and follow-ups). The first line of an input may carry
CLI options for that case: ``# migrate-options: --num-workers 4 --no-use-gpu``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from migrator.engine import FileResult, convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
OPTIONS_PREFIX = "# migrate-options:"


@dataclass(frozen=True)
class Case:
    codemod: str
    name: str
    input: Path

    @property
    def expected(self) -> Path:
        return self.input.with_name(f"{self.name}.expected.py")

    @property
    def report(self) -> Path:
        return self.input.with_name(f"{self.name}.report.txt")

    @property
    def id(self) -> str:
        return f"{self.codemod}/{self.name}"


def cases() -> list[Case]:
    found = []
    for path in sorted(FIXTURES.glob("*/*.input.py")):
        found.append(Case(path.parent.name, path.name[: -len(".input.py")], path))
    return found


def options_for(source: str) -> ConvertOptions:
    first = source.splitlines()[0] if source else ""
    if not first.startswith(OPTIONS_PREFIX):
        return ConvertOptions()
    args = shlex.split(first[len(OPTIONS_PREFIX):])
    kwargs: dict[str, object] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--num-workers":
            kwargs["num_workers"] = int(args[i + 1]); i += 1
        elif arg == "--no-use-gpu":
            kwargs["use_gpu"] = False
        elif arg == "--storage-path":
            kwargs["storage_path"] = args[i + 1]; i += 1
        elif arg == "--lightning-package":
            kwargs["lightning_package"] = args[i + 1]; i += 1
        else:
            raise ValueError(f"unknown option in fixture header: {arg}")
        i += 1
    return ConvertOptions(**kwargs)


def convert_text(source: str, options: ConvertOptions | None = None, path: str = "case.py") -> FileResult:
    return converted_bytes(source.encode("utf-8"), options or options_for(source), path)


def converted_bytes(data: bytes, options: ConvertOptions | None = None, path: str = "case.py",
                    *, prefilter: bool = True) -> FileResult:
    """``convert_source`` with every codemod, each distinct input converted once per test process.

    The goldens, the static checks on them, the no-silent-miss audit and the pre-filter test all
    convert the same fixtures; a conversion depends only on the bytes and the options (no codemod
    reads the file name), and its result is frozen, so they share it.
    """
    result = _converted(data, options or ConvertOptions(), prefilter)
    return result if result.path == path else replace(result, path=path)


@lru_cache(maxsize=None)
def _converted(data: bytes, options: ConvertOptions, prefilter: bool) -> FileResult:
    return convert_source(data, all_codemods(), options, path="case.py", prefilter=prefilter)


def report_lines(result: FileResult) -> str:
    return "".join(f"{e.line}: {e.kind} [{e.codemod}] {e.message}\n" for e in result.entries)
