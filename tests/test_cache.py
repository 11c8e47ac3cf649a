"""The result cache (``migrator.cache``): a warm run says exactly what a cold one says, without
converting; anything a result depends on misses; a broken or unwritable cache only costs speed."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from migrator import cache as cache_module
from migrator import parallel
from migrator.cache import ResultCache
from migrator.cli import main
from migrator.options import ConvertOptions
from migrator.parallel import convert_paths
from migrator.registry import select

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SAMPLE = FIXTURES / "samples" / "transformers" / "argparse_args.py"


def _every_sample(tmp_path: Path) -> list[Path]:
    """Every runnable sample and notebook fixture, copied (the cache keys on the path given), and a
    Latin-1 script with CRLF line ends, whose bytes must come back as they were converted."""
    sources = sorted((FIXTURES / "samples").rglob("*.py")) + sorted(FIXTURES.rglob("*.ipynb"))
    copies = []
    for source in sources:
        target = tmp_path / "tree" / source.relative_to(FIXTURES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copies.append(target)
    latin = tmp_path / "tree" / "latin1_crlf.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\r\n# caf\xe9\r\n" + SAMPLE.read_bytes().replace(b"\n", b"\r\n"))
    # Passes the pre-filter, yet nothing is left to change: an "unchanged" result is stored too.
    done = tmp_path / "tree" / "already_converted.py"
    shutil.copyfile(FIXTURES / "samples" / "transformers" / "argparse_args.py", done)
    done.write_bytes(_converted(done))
    plain = tmp_path / "tree" / "plain_module.py"  # settled by the pre-filter alone
    plain.write_bytes(b"import os\n\n\ndef here():\n    return os.getcwd()\n" + b"# padding\n" * 1000)
    return copies + [plain, done, latin]


def _converted(path: Path) -> bytes:
    seen = []
    convert_paths([path], select(), ConvertOptions(), seen.append)
    return seen[0].output


def _run(files: list[Path], cache: ResultCache | None, options: ConvertOptions = ConvertOptions(), jobs: int = 1):
    seen = []
    assert convert_paths(files, select(), options, seen.append, jobs=jobs, cache=cache)
    return seen


def test_a_warm_run_says_what_a_cold_run_says_without_converting(tmp_path: Path, monkeypatch) -> None:
    files = _every_sample(tmp_path)
    store = ResultCache(tmp_path / "cache")
    cold = _run(files, store)
    stored = store.misses
    assert stored > 40 and store.hits == 0
    assert {r.status for r in cold} >= {"converted", "unchanged"}
    failed = [r.path for r in cold if r.status == "failed"]
    converted_again = []
    real = parallel.convert_source

    def counted(data, todo, options, path):
        converted_again.append(path)
        return real(data, todo, options, path=path)

    monkeypatch.setattr(parallel, "convert_source", counted)
    prefiltered = []
    real_applicable = parallel.applicable

    def counted_applicable(codemods, data):
        prefiltered.append(data)
        return real_applicable(codemods, data)

    monkeypatch.setattr(parallel, "applicable", counted_applicable)
    warm_store = ResultCache(tmp_path / "cache")
    warm = _run(files, warm_store)
    assert warm == cold
    # Failures are never stored: those files alone are converted again.
    assert converted_again == [p for p in failed if not p.endswith(".ipynb")]
    assert len(prefiltered) == len(converted_again)  # a hit is not even pre-filtered
    assert warm_store.hits == stored - len(failed) and warm_store.misses == len(failed)
    assert warm[-3].status == warm[-2].status == "unchanged"
    latin = warm[-1]
    assert latin.status == "converted" and latin.encoding == "iso-8859-1" and b"\r\n" in latin.output
    notebook = next(r for r in warm if r.path.endswith(".ipynb"))
    assert notebook.status == "converted" and notebook.notebook_cells  # per-cell diffs survive the round trip


def test_whatever_a_result_depends_on_misses(tmp_path: Path, monkeypatch) -> None:
    script = tmp_path / "train.py"
    shutil.copyfile(SAMPLE, script)
    store = ResultCache(tmp_path / "cache")
    first = _run([script], store)[0]
    assert first.status == "converted" and store.misses == 1

    def hits_after(change) -> int:
        change()
        again = ResultCache(tmp_path / "cache")
        _run([script], again, options=options[0])
        return again.hits

    options = [ConvertOptions()]
    assert hits_after(lambda: None) == 1
    assert hits_after(lambda: script.write_bytes(script.read_bytes() + b"\n# edited\n")) == 0
    assert hits_after(lambda: options.__setitem__(0, ConvertOptions(num_workers=4))) == 0
    # The codemods the pre-filter picks are in the key: --only changes them.
    only = ResultCache(tmp_path / "cache")
    seen = []
    convert_paths([script], select(only=("transformers_trainer",)), options[0], seen.append, cache=only)
    assert only.hits == 0 and seen[0].status == "converted"
    # The same bytes under another path.
    other = tmp_path / "elsewhere.py"
    shutil.copyfile(script, other)
    moved = ResultCache(tmp_path / "cache")
    assert _run([other], moved, options=options[0])[0].path == str(other) and moved.hits == 0
    # The tool itself: a codemod file edited (its size or time changes) is another fingerprint.
    tool_file = tmp_path / "codemod.py"
    tool_file.write_text("x = 1\n")
    monkeypatch.setattr(cache_module, "_tool_files", lambda: [str(tool_file)])
    assert hits_after(lambda: None) == 0
    assert hits_after(lambda: None) == 1
    assert hits_after(lambda: tool_file.write_text("x = 22\n")) == 0


def test_failures_and_small_plain_files_are_not_stored_and_broken_entries_are_misses(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_bytes(b"from transformers import Trainer\ndef f(:\n")
    script = tmp_path / "train.py"
    shutil.copyfile(SAMPLE, script)
    small = tmp_path / "small.py"  # the pre-filter settles it for less than an entry costs
    small.write_bytes(b"import os\n")
    store = ResultCache(tmp_path / "cache")
    results = _run([broken, small, script], store)
    assert [r.status for r in results] == ["failed", "unchanged", "converted"]
    entries = [p for p in store.folder.rglob("*") if p.is_file()]
    assert len(entries) == 1  # the converted script's only
    results = results[::2]
    entries[0].write_bytes(entries[0].read_bytes()[:20])  # truncated
    again = ResultCache(tmp_path / "cache")
    assert _run([script], again) == results[1:] and again.hits == 0
    assert pickle.loads(entries[0].read_bytes()).status == "converted"  # written anew
    leftovers = [p.name for p in store.folder.rglob(".entry.*")]
    assert leftovers == []


def test_an_unwritable_cache_only_costs_speed(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    script = tmp_path / "train.py"
    shutil.copyfile(SAMPLE, script)
    store = ResultCache(blocker / "cache")
    assert _run([script], store)[0].status == "converted"
    assert _run([script], ResultCache(blocker / "cache"))[0].status == "converted"


def test_no_cache_neither_reads_nor_writes(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "cache"
    monkeypatch.setenv("MIGRATE_CACHE_DIR", str(root))
    script = tmp_path / "train.py"
    shutil.copyfile(SAMPLE, script)
    runner = CliRunner()
    assert runner.invoke(main, ["convert", "--check", "--no-cache", str(script)]).exit_code == 1
    assert not root.exists()
    assert runner.invoke(main, ["convert", "--check", str(script)]).exit_code == 1
    assert len([p for p in root.rglob("*") if p.is_file()]) == 1
    # An entry that lies is believed without --no-cache and ignored with it.
    entry = next(p for p in root.rglob("*") if p.is_file())
    stored = pickle.loads(entry.read_bytes())
    entry.write_bytes(pickle.dumps(stored.__class__(stored.path, "unchanged", b"")))
    assert runner.invoke(main, ["convert", "--check", str(script)]).exit_code == 0
    assert runner.invoke(main, ["convert", "--check", "--no-cache", str(script)]).exit_code == 1


def test_stale_fingerprints_are_pruned_when_a_new_one_starts(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    old, recent = root / "old-fingerprint", root / "recent-fingerprint"
    for folder in (old, recent):
        (folder / "ab").mkdir(parents=True)
    long_ago = os.stat(old).st_mtime - cache_module.STALE_AFTER_S - 60
    os.utime(old, (long_ago, long_ago))
    script = tmp_path / "train.py"
    shutil.copyfile(SAMPLE, script)
    _run([script], ResultCache(root))
    assert not old.exists() and recent.exists()


def test_a_warm_check_from_process_start_never_imports_libcst(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    shutil.copyfile(SAMPLE, script)
    code = ("import sys\nfrom migrator.cli import main\n"
            "try:\n    main(['convert', '--check', '-q', sys.argv[1]])\n"
            "except SystemExit as exit:\n    print(exit.code, 'libcst' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-c", code, str(script)], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=120).stdout.split() for _ in range(2)]
    assert runs == [["1", "True"], ["1", "False"]]


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_stored_by_a_pool_are_read_back_in_order(tmp_path: Path, jobs: int) -> None:
    files = []
    for name in ("a", "b", "c"):
        target = tmp_path / f"{name}.py"
        shutil.copyfile(SAMPLE, target)
        files.append(target)
    store = ResultCache(tmp_path / "cache")
    cold = _run(files, store, jobs=jobs)
    warm_store = ResultCache(tmp_path / "cache")
    assert _run(files, warm_store, jobs=jobs) == cold and warm_store.hits == 3
    assert [r.path for r in cold] == [str(f) for f in files]


def test_the_cache_can_be_turned_off_in_pyproject(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "cache"
    monkeypatch.setenv("MIGRATE_CACHE_DIR", str(root))
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text("[tool.migrate]\nno-cache = true\n")
    script = tmp_path / "train.py"
    shutil.copyfile(SAMPLE, script)
    assert CliRunner().invoke(main, ["convert", "--check", str(script)]).exit_code == 1
    assert not root.exists()


def test_where_the_cache_lives(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIGRATE_CACHE_DIR", str(tmp_path / "explicit"))
    assert cache_module.default_dir() == tmp_path / "explicit"
    monkeypatch.delenv("MIGRATE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_module.default_dir() == tmp_path / "xdg" / "migrate"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_module.default_dir() == tmp_path / "home" / ".cache" / "migrate"
    monkeypatch.setattr(cache_module.os.path, "expanduser", lambda path: path)  # no home to be found
    assert not str(cache_module.default_dir()).startswith("~")
