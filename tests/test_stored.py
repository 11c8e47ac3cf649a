"""``migrator.stored``: the codemods' TOML tables parsed once and kept as bytecode is kept."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from migrator import stored

ROOT = Path(__file__).resolve().parent.parent
TABLES = sorted((ROOT / "codemods" / "data").glob("*.toml"))


def _table(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "table.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_codemod_table_reads_back_as_tomllib_parses_it(tmp_path: Path) -> None:
    assert len(TABLES) >= 9
    for table in TABLES:
        copy = tmp_path / table.name
        copy.write_bytes(table.read_bytes())
        parsed = tomllib.loads(table.read_text(encoding="utf-8"))
        assert stored.toml_table(copy, write=True) == parsed  # parsed, and stored
        assert stored._kept_for(copy).exists()
        assert stored.toml_table(copy) == parsed  # read back


def test_a_kept_table_is_what_is_read_and_a_changed_one_is_parsed_again(tmp_path: Path) -> None:
    path = _table(tmp_path, 'a = 1\n[b]\nc = ["x", "y"]\n')
    assert stored.toml_table(path, write=True) == {"a": 1, "b": {"c": ["x", "y"]}}
    kept = stored._kept_for(path)
    digest, _ = stored.load(kept)
    stored.store(kept, (digest, {"a": "from the kept form"}), write=True)
    assert stored.toml_table(path) == {"a": "from the kept form"}  # the same bytes: not parsed
    path.write_text("a = 2\n", encoding="utf-8")
    assert stored.toml_table(path, write=True) == {"a": 2}  # other bytes: parsed again, and kept
    assert stored.load(kept)[1] == {"a": 2}


def test_an_unreadable_kept_form_is_parsed_again_and_nothing_is_written_when_told_not_to(tmp_path: Path) -> None:
    path = _table(tmp_path, "a = 1\n")
    kept = stored._kept_for(path)
    kept.parent.mkdir()
    kept.write_bytes(b"not marshal data")
    assert stored.toml_table(path, write=False) == {"a": 1}
    assert kept.read_bytes() == b"not marshal data"
    stored.store(kept, ("another interpreter's", {}), write=True)
    kept.write_bytes(kept.read_bytes().replace(stored.importlib.util.MAGIC_NUMBER, b"\0\0\0\0"))
    assert stored.load(kept) is None  # another interpreter's bytecode magic: not read


def test_a_table_marshal_cannot_write_is_parsed_every_time(tmp_path: Path) -> None:
    path = _table(tmp_path, "when = 2026-12-02\n")
    assert str(stored.toml_table(path, write=True)["when"]) == "2026-12-02"
    assert not stored._kept_for(path).exists()


def test_nothing_is_written_where_python_writes_no_bytecode(tmp_path: Path) -> None:
    path = _table(tmp_path, "a = 1\n")
    probe = f"from pathlib import Path\nfrom migrator import stored\nprint(stored.toml_table(Path({str(path)!r})))"
    for flag, written in (("-B", False), ("-c", True)):
        done = subprocess.run([sys.executable, *([flag] if flag == "-B" else []), "-c", probe], capture_output=True,
                              text=True, cwd=ROOT, env={"PATH": "", "PYTHONPATH": str(ROOT)}, timeout=60)
        assert done.stdout.strip() == "{'a': 1}", done.stderr
        assert stored._kept_for(path).exists() == written
