"""validate's runs each start from the working directory as the user left it (runtime/workspace.py)."""

from __future__ import annotations

from pathlib import Path

from migrator.runtime.workspace import RunOutputs


def test_what_a_run_creates_is_moved_aside_and_what_was_there_stays(tmp_path: Path) -> None:
    cwd, workdir = tmp_path / "project", tmp_path / "validate"
    cwd.mkdir()
    (cwd / "train.py").write_text("print()")
    (cwd / "data.csv").write_text("x\n1\n")
    outputs = RunOutputs(cwd, workdir)
    assert outputs.note() is None

    (cwd / "snapshot.pt").write_bytes(b"original's")
    (cwd / "out").mkdir()
    (cwd / "out" / "model.pt").write_bytes(b"m")
    (cwd / "data.csv").write_text("x\n2\n")  # changed, but the user's: left alone
    assert outputs.set_aside("the original (plain Python)") == ["out", "snapshot.pt"]
    assert sorted(p.name for p in cwd.iterdir()) == ["data.csv", "train.py"]
    kept = workdir / "outputs" / "the-original-plain-Python"
    assert (kept / "snapshot.pt").read_bytes() == b"original's" and (kept / "out" / "model.pt").is_file()

    (cwd / "snapshot.pt").write_bytes(b"converted's")
    assert outputs.set_aside("the converted script on 1 worker") == ["snapshot.pt"]
    assert outputs.set_aside("nothing new") == []
    note = outputs.note()
    assert str(workdir / "outputs") in note and "snapshot.pt" in note and "nothing new" not in note
