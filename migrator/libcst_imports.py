"""LibCST's codemod framework, imported without the part of its cost nobody reads or that was paid before.

Importing ``libcst.codemod`` (LibCST's nodes and matchers, about 400 dataclasses) is 0.4 s, most
of a cold conversion's imports, in every process that converts. Three parts of it are waste:

* **Signatures rendered into docstrings.** For each of the ~200 matcher classes, which have no
  docstring, ``dataclasses`` writes one from ``str(inspect.signature(cls))``, rendering unions of
  dozens of matcher types: 0.1 s, for docstrings no one reads. Imported through
  ``import_codemod_framework``, those classes get their name alone as their docstring, which is
  what ``dataclasses`` itself writes when it cannot have a signature.
* **The same hashes computed again.** The matchers' annotations are unions of unions of
  generic aliases; ``typing`` caches each one it builds, hashing its arguments, and an alias's
  hash is its arguments' hashes, computed anew each time, down to the leaves. Meanwhile each
  alias's hash is kept once computed (they are immutable): 0.03 s.
* **The same methods compiled again.** ``dataclasses`` writes the source of each class's
  ``__init__``, ``__repr__``, ``__eq__``... and compiles it with ``exec``: about 1,100 distinct
  sources, 0.14 s, giving the same code every time for the same source. The code is kept on disk
  the way Python keeps bytecode (``CODE_FILE``, in this package's ``__pycache__``, written unless
  ``PYTHONDONTWRITEBYTECODE`` is set, as ``.pyc`` files are) and looked up by a digest of the very
  source text, so a LibCST or Python that writes other text compiles it as before. The file is
  checked against the interpreter's bytecode magic number; one that cannot be read is compiled
  again and rewritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import inspect
import marshal
import os
import sys
import tempfile
import typing
from pathlib import Path

#: The compiled methods of LibCST's dataclasses, for this interpreter (bytecode is per version).
CODE_FILE = Path(__file__).parent / "__pycache__" / f"libcst_dataclasses.{sys.implementation.cache_tag}.marshal"


class _NoSignatures:
    """``inspect`` as ``dataclasses`` sees it meanwhile: ``signature`` fails as it may for any
    class, which ``dataclasses`` catches; everything else is ``inspect``'s."""

    def __getattr__(self, name: str):
        return getattr(inspect, name)

    @staticmethod
    def signature(*args, **kwargs):
        raise ValueError("no signature rendered while LibCST's matchers are imported")


class _CompiledOnce:
    """``exec`` as ``dataclasses`` sees it meanwhile: source compiled before runs that code."""

    def __init__(self, known: dict[bytes, object]) -> None:
        self.known = known
        self.used: dict[bytes, object] = {}
        self.compiled = 0

    def __call__(self, source, globals=None, locals=None):
        if isinstance(source, str):
            key = hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            code = self.used.get(key) or self.known.get(key)
            if code is None:
                # As exec compiles it in dataclasses' module, which has no __future__ imports.
                code = compile(source, "<string>", "exec", dont_inherit=True)
                self.compiled += 1
            self.used[key] = source = code
        return exec(source, globals, locals)


class _HashesKept:
    """``typing``'s generic aliases, meanwhile, keep the hash they computed (by id, holding the
    alias, so that no id is reused while the table lives)."""

    CLASSES = tuple(cls for cls in (getattr(typing, name, None) for name in ("_GenericAlias", "_UnionGenericAlias",
                                                                             "_LiteralGenericAlias"))
                    if isinstance(cls, type) and "__hash__" in vars(cls))

    def __enter__(self) -> None:
        kept: dict[int, tuple[object, int]] = {}
        self.originals = {cls: vars(cls)["__hash__"] for cls in self.CLASSES}
        self.kept = kept

        def keeping(original):
            def __hash__(alias) -> int:
                found = kept.get(id(alias))
                if found is None:
                    found = kept[id(alias)] = (alias, original(alias))
                return found[1]
            return __hash__

        for cls, original in self.originals.items():
            cls.__hash__ = keeping(original)

    def __exit__(self, *exc) -> None:
        for cls, original in self.originals.items():
            cls.__hash__ = original
        self.kept.clear()


#: What the last ``import_codemod_framework`` that imported LibCST did: methods found compiled, compiled now.
last_import = {"found": 0, "compiled": 0}


def _read(path: Path) -> dict[bytes, object]:
    try:
        magic, codes = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):  # none yet, or unreadable: compile
        return {}
    return codes if magic == importlib.util.MAGIC_NUMBER and isinstance(codes, dict) else {}


def _write(path: Path, codes: dict[bytes, object]) -> None:
    """Atomically, as two runs side by side may both write it; a folder that refuses is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            os.chmod(tmp, 0o644)  # readable by all, as Python's own bytecode files
            with os.fdopen(fd, "wb") as out:
                out.write(marshal.dumps((importlib.util.MAGIC_NUMBER, codes)))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


def import_codemod_framework(write: bool | None = None) -> None:
    """``import libcst.codemod``, the first time without rendering the matchers' signatures and
    with the methods ``dataclasses`` compiled in an earlier run. ``write``: whether to store
    newly compiled methods (default: unless ``PYTHONDONTWRITEBYTECODE``, as Python does)."""
    if ("libcst.matchers" in sys.modules or getattr(dataclasses, "inspect", None) is not inspect
            or "exec" in vars(dataclasses)):
        import libcst.codemod  # noqa: F401  (imported already, or a dataclasses this does not know)

        return
    compiled_once = _CompiledOnce(_read(CODE_FILE))
    dataclasses.inspect = _NoSignatures()  # type: ignore[attr-defined]
    dataclasses.exec = compiled_once  # type: ignore[attr-defined]
    try:
        with _HashesKept():
            import libcst.codemod  # noqa: F401
    finally:
        dataclasses.inspect = inspect  # type: ignore[attr-defined]
        del dataclasses.exec  # type: ignore[attr-defined]
    last_import.update(found=len(compiled_once.used.keys() & compiled_once.known.keys()), compiled=compiled_once.compiled)
    if write is None:
        write = not sys.dont_write_bytecode
    # Kept: what this import used (methods of a LibCST no longer installed drop out).
    if write and (compiled_once.compiled or len(compiled_once.used) != len(compiled_once.known)):
        _write(CODE_FILE, compiled_once.used)


if __name__ == "__main__":  # python -m migrator.libcst_imports: store the compiled methods now (an install step)
    import_codemod_framework(write=True)
    print(f"{CODE_FILE}: {last_import['found']} methods found compiled, {last_import['compiled']} compiled now")
