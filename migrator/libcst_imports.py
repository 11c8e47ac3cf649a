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
* **Annotations evaluated for no one.** Each matcher field is annotated with a union of a dozen
  matcher types, which ``typing`` builds, checks, flattens and caches when the class is
  created: a third of the matchers' import, for annotations that nothing at run time reads
  (matching walks ``dataclasses.fields`` by name; the decorators read the *visitor's* hints).
  ``libcst.matchers`` is loaded compiled as if it began with ``from __future__ import
  annotations``, its annotations kept as the strings they are written as. That code is kept
  (``MATCHERS_FILE``) with a digest of the module's source, as the methods above are; where it is
  not kept and may not be written, the module is imported as LibCST ships it.
"""

from __future__ import annotations

import __future__
import dataclasses
import hashlib
import importlib.abc
import importlib.machinery
import inspect
import sys
import typing
from pathlib import Path

from migrator import stored

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


#: ``libcst.matchers`` compiled with its annotations unevaluated, for this interpreter.
MATCHERS_FILE = Path(__file__).parent / "__pycache__" / f"libcst_matchers.{sys.implementation.cache_tag}.marshal"
MATCHERS = "libcst.matchers"


class _MatchersUnannotated(importlib.abc.MetaPathFinder):
    """Finds ``libcst.matchers`` where Python would, and loads it compiled with lazy annotations."""

    def __init__(self, write: bool | None) -> None:
        self.write = write
        self.used = False

    def find_spec(self, name: str, path=None, target=None):
        if name != MATCHERS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if type(loader) is not importlib.machinery.SourceFileLoader:  # a zip, a frozen module: as it is
            return spec
        code = self._code(Path(loader.path))
        if code is not None:
            spec.loader = _CompiledLoader(loader.name, loader.path, code)
            self.used = True
        return spec

    def _code(self, source_path: Path):
        try:
            source = source_path.read_bytes()
        except OSError:
            return None
        digest = hashlib.blake2b(source, digest_size=16).digest()
        kept = stored.load(MATCHERS_FILE)
        if isinstance(kept, tuple) and len(kept) == 3 and kept[:2] == (digest, str(source_path)):
            return kept[2]
        if not stored.may_write(self.write):
            return None  # compiling it here would cost more than the annotations do
        code = compile(source, str(source_path), "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
        stored.store(MATCHERS_FILE, (digest, str(source_path), code), True)
        return code


class _CompiledLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, code) -> None:
        super().__init__(fullname, path)
        self.code = code

    def get_code(self, fullname: str):
        return self.code


#: What the last ``import_codemod_framework`` that imported LibCST did: methods found compiled, compiled now.
last_import = {"found": 0, "compiled": 0, "matchers_unannotated": False}


def _read(path: Path) -> dict[bytes, object]:
    codes = stored.load(path)
    return codes if isinstance(codes, dict) else {}  # none yet, or unreadable: compile


def import_codemod_framework(write: bool | None = None) -> None:
    """``import libcst.codemod``, the first time without rendering the matchers' signatures and
    with the methods ``dataclasses`` compiled in an earlier run. ``write``: whether to store
    newly compiled methods (default: unless ``PYTHONDONTWRITEBYTECODE``, as Python does)."""
    if ("libcst.matchers" in sys.modules or getattr(dataclasses, "inspect", None) is not inspect
            or "exec" in vars(dataclasses)):
        import libcst.codemod  # noqa: F401  (imported already, or a dataclasses this does not know)

        return
    compiled_once = _CompiledOnce(_read(CODE_FILE))
    matchers = _MatchersUnannotated(write)
    dataclasses.inspect = _NoSignatures()  # type: ignore[attr-defined]
    dataclasses.exec = compiled_once  # type: ignore[attr-defined]
    sys.meta_path.insert(0, matchers)
    try:
        with _HashesKept():
            import libcst.codemod  # noqa: F401
    finally:
        sys.meta_path.remove(matchers)
        dataclasses.inspect = inspect  # type: ignore[attr-defined]
        del dataclasses.exec  # type: ignore[attr-defined]
    last_import.update(found=len(compiled_once.used.keys() & compiled_once.known.keys()), compiled=compiled_once.compiled,
                       matchers_unannotated=matchers.used)
    # Kept: what this import used (methods of a LibCST no longer installed drop out).
    if compiled_once.compiled or len(compiled_once.used) != len(compiled_once.known):
        stored.store(CODE_FILE, compiled_once.used, write)


if __name__ == "__main__":  # python -m migrator.libcst_imports: what ``python -m migrator.stored`` does
    print("\n".join(stored.store_all()))
