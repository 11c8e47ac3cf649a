"""The HTML review page rendered by a real browser: headless Chromium, from the system packages
(CI installs it in .ci/run), with networking off. It must show every file and every follow-up
beside its line, and render to a screenshot of sensible size."""

from __future__ import annotations

import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.test_cli import run
from tests.test_reports import make_project

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium: apt-get install -y chromium (.ci/run does)")


def _browse(page: Path, tmp_path: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *mode, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )


class _Rendered(HTMLParser):
    """Rows of the rendered tables: per section, each row's cells as text, and its notes."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[list[str]]] = {}
        self.headings: list[str] = []
        self._section: str | None = None
        self._cells: list[str] | None = None
        self._in_h2 = False
        self._in_td = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("data-path") or ""
            self.sections[self._section] = []
        elif tag == "tr" and self._section is not None:
            self._cells = []
            self.sections[self._section].append(self._cells)
        elif tag == "td" and self._cells is not None:
            self._cells.append("")
            self._in_td = True
        elif tag == "h2":
            self._in_h2 = True
            self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        elif tag == "h2":
            self._in_h2 = False
        elif tag == "td":
            self._in_td = False

    def handle_data(self, data: str) -> None:
        if self._cells and self._in_td:
            self._cells[-1] += data
        if self._in_h2:
            self.headings[-1] += data


def test_page_renders_files_and_follow_ups_in_chromium(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    project = make_project(tmp_path / "project")
    report = tmp_path / "review.html"
    run("convert", "--check", ".", "--report", str(report), cwd=project)

    dom = _browse(report, tmp_path, "--dump-dom").stdout
    page = _Rendered()
    page.feed(dom)
    assert list(page.sections) == ["broken.py", "tags.py", "train.py", "two.py"]
    assert any(h.startswith("two.pyunchanged") and "2 follow-ups" in h for h in page.headings), page.headings

    # Each follow-up sits in the notes cell of the row that shows its line on the left.
    rows = {cells[0]: cells for cells in page.sections["two.py"] if len(cells) == 5 and cells[0]}
    for line in ("3", "5"):
        assert rows[line][4].startswith("RT102a Trainer built here is not assigned"), rows[line]
        assert "Trainer(" in rows[line][1]
    assert rows["4"][4] == "", "no note on a line without a finding"

    # A converted file shows both sides: the old launch on the left, TorchTrainer on the right.
    train = page.sections["train.py"]
    assert any("trainer.train()" in cells[1] for cells in train if len(cells) == 5)
    assert any("TorchTrainer(" in cells[3] for cells in train if len(cells) == 5)
    assert any(cells[4].startswith("RT101") for cells in train if len(cells) == 5)
    assert "<b>x</b>" not in dom and "&lt;b&gt;x&lt;/b&gt;" in dom

    shot = tmp_path / "review.png"
    _browse(report, tmp_path, f"--screenshot={shot}", "--window-size=1400,1000", "--hide-scrollbars")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 1000)
    assert len(data) > 20_000, "a blank page compresses to a few kB; this one has content"
