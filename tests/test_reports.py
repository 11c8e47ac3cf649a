"""The Markdown report reads well on a pull request; the HTML page is self-contained and complete
(its rendering in a real browser is in test_html_report_browser.py)."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.test_cli import GUIDE, ROOT, run

TWO = ROOT / "fixtures" / "transformers_trainer" / "two_trainers_in_lists.input.py"


def make_project(root: Path) -> Path:
    shutil.copy(GUIDE, root / "train.py")
    shutil.copy(TWO, root / "two.py")
    (root / "plain.py").write_text("print('nothing to migrate')\n")
    (root / "broken.py").write_text("from transformers import Trainer\ndef f(:\n    pass\n")
    (root / "tags.py").write_text(  # markup in code and messages must come out as text
        "from transformers import Trainer\n"
        "a = Trainer(model='<b>x</b>', args=None)\n"
        "a.train()\n"
        "b = Trainer(model=None)\n"
        "b.train()\n"
    )
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def test_markdown_summary_tables_then_a_section_per_file(project: Path) -> None:
    run("convert", "--check", ".", "--report", "r.md", cwd=project)
    text = (project / "r.md").read_text()
    assert text.startswith("# Ray Train migration\n\n2 files would be converted, 2 unchanged, 1 failed; 2 follow-ups")
    assert "| file | status | changes | follow-ups |" in text
    assert re.search(r"^\| `train\.py` \| converted \| [1-9]\d* \| 0 \|$", text, re.M)
    assert "| `two.py` | unchanged | 0 | 2 |" in text
    assert "| `broken.py` | failed | 0 | 0 |" in text
    assert "plain.py" not in text, "files with nothing to say stay out of the report"
    assert "| code | codemod | changes | follow-ups |" in text
    assert "| `RT102` | `transformers_trainer` | 0 | 2 |" in text
    # Per file: a heading, the follow-ups as a checklist with their lines, the diff folded away.
    two = text[text.index("## `two.py`"):]
    assert two.startswith("## `two.py`: unchanged, 0 changes, 2 follow-ups\n\n### Follow-ups\n\n- [ ] line 3: a Trainer built here")
    assert "- [ ] line 5: " in two
    train = text[text.index("## `train.py`"):text.index("## `two.py`")]
    assert "<details><summary>Changes and diff (" in train and train.rstrip().endswith("</details>")
    assert "```diff\n--- train.py\n+++ train.py\n" in train
    assert "**Could not convert** (line 2): syntax error" in text


def test_markdown_fence_outgrows_backticks_in_the_diff() -> None:
    from migrator.report import Report
    from migrator.results import Entry, FileResult

    report = Report(check=True)
    report.add(FileResult("doc.py", "converted", b'"""Run:\n```bash\npython a.py\n```\n"""\n',
                          b'"""Run:\n````bash\npython b.py\n````\n"""\n',
                          (Entry("transformers_trainer", 3, "launch line", "change"),)))
    text = report.to_markdown()
    assert "\n`````diff\n" in text and "\n`````\n" in text, "a fence longer than any backtick run in the diff"


class _Page(HTMLParser):
    """The facts a reader sees: sections with their path, rows with line numbers and notes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.sections: list[str] = []
        self.notes: list[tuple[str, str]] = []  # (data-line, text)
        self._note: list[str] | None = None
        self._line: str = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "section":
            self.sections.append(a.get("data-path") or "")
        if tag == "div" and "note" in (a.get("class") or ""):
            self._note, self._line = [], a.get("data-line") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._note is not None:
            self.notes.append((self._line, "".join(self._note)))
            self._note = None

    def handle_data(self, data: str) -> None:
        if self._note is not None:
            self._note.append(data)


def test_html_page_is_self_contained_and_complete(project: Path) -> None:
    run("convert", "--check", ".", "--report", "r.html", cwd=project)
    html = (project / "r.html").read_text()
    page = _Page()
    page.feed(html)
    assert page.sections == ["broken.py", "tags.py", "train.py", "two.py"]
    # Nothing is fetched: no scripts, no linked styles, fonts or images, no URLs at all.
    assert not [t for t, _ in page.tags if t in ("script", "link", "img", "iframe", "object")]
    links = [a.get("href") for t, a in page.tags if "href" in a or "src" in a]
    assert links and all(link.startswith("#file-") for link in links), links
    style = html[html.index("<style>"):html.index("</style>")]
    assert not re.search(r"url\(|@import|@font-face", style)
    assert ("3", "RT102a Trainer built here is not assigned to a name, so it cannot be traced to its training: convert it by hand") in page.notes
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert 'class="code del"' in html and 'class="code ins"' in html
    assert "Could not convert (line 2): syntax error" in html
