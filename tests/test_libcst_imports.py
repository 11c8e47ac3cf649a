"""``migrator.libcst_imports``: LibCST's matchers imported without rendering their signatures or
evaluating their annotations, and nothing else changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from migrator import stored

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import dataclasses, inspect, sys
from migrator import libcst_imports
from migrator.libcst_imports import import_codemod_framework

import_codemod_framework()
import libcst as cst
import libcst.matchers as m

@dataclasses.dataclass
class After:
    x: int

print(m.Name.__doc__, m.Call.__doc__)  # what dataclasses writes when it has no signature
print(dataclasses.inspect is inspect, After.__doc__)  # put back: later dataclasses as ever
print(m.matches(cst.Call(func=cst.Name("f")), m.Call(func=m.Name("f"))), m.matches(cst.Name("g"), m.Name("f")))
import_codemod_framework()  # a second time: nothing to do
print(dataclasses.inspect is inspect)
import typing  # the aliases' own hash is back, and gives what it gave
hashes = [vars(getattr(typing, n))["__hash__"].__qualname__ for n in ("_GenericAlias", "_UnionGenericAlias")]
print(hashes, hash(typing.Union[int, typing.List[str]]) == hash(typing.Union[typing.List[str], int]))
"""


def test_the_matchers_import_without_signature_docstrings_and_work_as_ever() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Name Call", "True After(x: int)", "True False", "True",
                                        "['_GenericAlias.__hash__', '_UnionGenericAlias.__hash__'] True"]


def test_without_it_the_matchers_carry_their_signatures() -> None:
    """What the module saves: the docstrings it leaves out are the signatures, unions and all."""
    probe = "import libcst.matchers as m\nprint(m.Name.__doc__.startswith('Name(value: Union['))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.strip() == "True", done.stdout + done.stderr


# What dataclasses generated for LibCST's classes: the code of every method it wrote, and the
# annotations of __init__ as they resolve (the matchers' are kept unevaluated, as strings: they must
# name the very same types).
FINGERPRINT = """
import dataclasses, hashlib, json, sys, typing
from pathlib import Path
from migrator import libcst_imports
{setup}
import libcst, libcst.matchers

digest = hashlib.sha256()
classes = 0
for module in (libcst, libcst.matchers):
    for name in sorted(vars(module)):
        cls = getattr(module, name)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            continue
        classes += 1
        for method in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
            function = vars(cls).get(method)
            code = getattr(function, "__code__", None)
            if code is not None:
                digest.update(repr((name, method, code.co_code, code.co_consts, code.co_names, code.co_varnames,
                                    sorted(map(repr, typing.get_type_hints(function).items())))).encode())
print(json.dumps({{"classes": classes, "digest": digest.hexdigest(), **libcst_imports.last_import}}))
"""


def _fingerprint(setup: str, *flags: str, write_bytecode: bool = False) -> dict:
    import json
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} if write_bytecode else None
    done = subprocess.run([sys.executable, *flags, "-c", FINGERPRINT.format(setup=setup)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _through_cache(path: Path, write: str = "None") -> str:
    """Methods kept at ``path``, the matchers' code beside it."""
    return (f"libcst_imports.CODE_FILE = Path({str(path)!r})\n"
            f"libcst_imports.MATCHERS_FILE = Path({str(path.with_suffix('.matchers'))!r})\n"
            f"libcst_imports.import_codemod_framework(write={write})")


def test_compiled_methods_are_kept_and_give_the_same_classes(tmp_path: Path) -> None:
    plain = _fingerprint("")  # LibCST imported as anyone imports it: nothing of this module's
    assert plain["classes"] > 300 and plain["found"] == plain["compiled"] == 0
    cache = tmp_path / "codes.marshal"
    first = _fingerprint(_through_cache(cache, "True"))
    assert first["compiled"] > 1000 and first["found"] == 0 and cache.exists()
    assert first["matchers_unannotated"] and cache.with_suffix(".matchers").exists()
    again = _fingerprint(_through_cache(cache))
    assert again["compiled"] == 0 and again["found"] == first["compiled"] and again["matchers_unannotated"]
    assert plain["digest"] == first["digest"] == again["digest"]


def test_the_matchers_annotations_are_kept_unevaluated_only_where_their_code_is_kept(tmp_path: Path) -> None:
    cache = tmp_path / "codes.marshal"
    probe = "import libcst.matchers as m\nprint(repr(m.Name.__annotations__['value']))"
    unwritten = _fingerprint(_through_cache(cache), "-B")
    assert not unwritten["matchers_unannotated"] and not cache.with_suffix(".matchers").exists()
    done = subprocess.run([sys.executable, "-c", "from pathlib import Path\nfrom migrator import libcst_imports\n"
                           + _through_cache(cache, "True") + "\n" + probe], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.stdout.strip().startswith("'Union["), done.stderr  # the annotation as written, a string
    source = cache.with_suffix(".matchers")
    digest, path, _ = stored.load(source)
    assert path.endswith("libcst/matchers/__init__.py")
    stored.store(source, (b"another source", path, compile("x = 1", path, "exec")), write=True)
    assert _fingerprint(_through_cache(cache), "-B")["matchers_unannotated"] is False  # not this source's code


def test_bytecode_setting_is_respected_and_a_damaged_file_is_compiled_again(tmp_path: Path) -> None:
    cache = tmp_path / "codes.marshal"
    # -B: PYTHONDONTWRITEBYTECODE's flag. Nothing written, as Python writes no .pyc then.
    assert _fingerprint(_through_cache(cache), "-B")["compiled"] > 1000 and not cache.exists()
    assert _fingerprint(_through_cache(cache), write_bytecode=True)["compiled"] > 1000 and cache.exists()
    cache.write_bytes(cache.read_bytes()[: 5000])  # cut short, as a full disk may leave it
    damaged = _fingerprint(_through_cache(cache), write_bytecode=True)
    assert damaged["compiled"] > 1000 and damaged["found"] == 0
    assert _fingerprint(_through_cache(cache))["found"] > 1000  # written whole again
    unwritable = tmp_path / "missing-parent" / "file"
    unwritable.parent.write_text("a file where the folder would be")
    assert _fingerprint(_through_cache(unwritable / "codes.marshal", "True"))["compiled"] > 1000
