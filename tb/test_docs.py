"""The documentation against the code: the README's layout table names every module of every
package, and the code's docstrings and comments cite only files that are in the repository
(no ``*.md`` from outside it, no issue numbers; the paper is cited by section)."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("hw", "golden", "realm/llm", "synth", "tb", "realm")
#: Modules the layout table covers by a pattern (``test_<block>.py``) rather than by name.
BY_PATTERN = re.compile(r"^(test_\w+|conftest|__init__)\.py$")
CITED = re.compile(r"[\w./-]*\w\.md\b")
#: The team's reference notes, which live outside the repository: never cited by bare name.
OUTSIDE = {"realm.md", "realm_paper.md", "toolchain.md", "energy.md", "anchors.md", "style.md",
           "models.md"}
ISSUE = re.compile(r"\b[Ii]ssue\s+#?\d+")


def layout_rows(readme):
    """{package path: the text of its row} from the README's layout table."""
    rows = {}
    for line in readme.splitlines():
        m = re.match(r"\|\s*`([\w/]+)/`\s*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def unlisted(rows, root=ROOT):
    """Modules of :data:`PACKAGES` whose file name is not in their package's row."""
    out = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).glob("*.py")):
            if not BY_PATTERN.match(path.name) and f"`{path.name}`" not in rows.get(pkg, ""):
                out.append(f"{pkg}/{path.name}")
    return out


def bad_citations(path, text, root=ROOT):
    """Citations in ``text`` (a file at ``path``) of Markdown files the repository does not
    hold, and issue numbers."""
    bad = [m.group(0) for m in ISSUE.finditer(text)]
    for m in CITED.finditer(text):
        cited = m.group(0)
        if "/" not in cited:  # a bare name: an output file's (summary.md) unless a note's
            bad += [cited] if cited in OUTSIDE else []
        elif not cited.startswith("build/") and not any(
                (base / cited).resolve().exists() for base in (root, path.parent)):
            bad.append(cited)
    return bad


def test_layout_lists_every_module():
    rows = layout_rows((ROOT / "README.md").read_text())
    assert set(PACKAGES) <= set(rows), f"no layout row for {sorted(set(PACKAGES) - set(rows))}"
    assert unlisted(rows) == []


@pytest.mark.parametrize("pkg", PACKAGES)
def test_code_cites_only_repository_files(pkg):
    found = {f"{pkg}/{p.name}": bad for p in sorted((ROOT / pkg).glob("*.py"))
             if p.name != "test_docs.py" and (bad := bad_citations(p, p.read_text()))}
    assert found == {}


def test_the_checks_can_fail(tmp_path):
    """A module missing from its row, a file from outside and an issue number are caught."""
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "new.py").write_text("")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "energy.md").write_text("")
    assert unlisted({"hw": "`old.py`"}, tmp_path)[:1] == ["hw/new.py"]
    text = ("see docs/energy.md §2, energy.md, ../shared/reference/realm.md, issue 11; "
            "writes summary.md and build/synth/report.md")
    assert bad_citations(tmp_path / "hw" / "new.py", text, tmp_path) == [
        "issue 11", "energy.md", "../shared/reference/realm.md"]


def test_readme_documents_the_cache_and_the_extras():
    """Where the converted models go, how large, how long the first use takes, and which extra
    each command needs."""
    text = " ".join((ROOT / "README.md").read_text().split())
    for fact in ("`$REALM_CACHE/<preset>/`", "517 MB for SmolLM2-135M", "converted in 18 s",
                 "`sim` (cocotb", "`synth` (pyosys", "`llm` (transformers", "`ray` (",
                 "`formal` ("):
        assert fact in text, fact
