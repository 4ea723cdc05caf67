"""Golden pages: the words and tables a run's results render to, one file per page kind, compared whole.

``tests/golden/smoke/results/`` is the kept results of a smoke run (what ``publish`` keeps beside a page); this test
renders them as ``publish --render`` does and compares the report page (``README.md``), the README results block
(``block.md``) and the verdict and main tables with the committed copies. A change of wording shows up here as a
diff to review, not as a failed assertion about a phrase. After a reviewed change of the rendering, ``make golden``
renders the pages again from the committed results; after a change of what a smoke run computes, ``make smoke`` then
``make golden FROM_RUN=1`` takes that run's results first."""
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "smoke"
PAGES = ("README.md", "block.md", "tables/claims.csv", "tables/main_table.md", "tables/runs.md")


def render_golden(out: Path) -> dict[str, str]:
    """Render the kept results copied into ``out``: ``{page: text}`` of every file of ``PAGES``."""
    from basisconv.experiment.io import read_json
    from basisconv.pipeline import publish, render
    r = render.load(out)
    own = render.claims_table(r)
    render.page(out, out, read_json(out / render.RUN_FILE)["title"], r=r)
    (out / "block.md").write_text(publish.results_block(r, Path("docs/results/smoke"), own, own.iloc[:0]) + "\n")
    return {p: (out / p).read_text() for p in PAGES}


@pytest.mark.timeout(180)
def test_golden_pages(tmp_path):
    shutil.copytree(GOLDEN / "results", tmp_path / "results")
    got = render_golden(tmp_path)
    for page, text in got.items():
        assert text == (GOLDEN / page).read_text(), (
            f"{page} renders differently from tests/golden/smoke/{page}: review the difference, then `make golden`")


@pytest.mark.timeout(60)
def test_readme_block_is_short_and_narrow():
    """The README block a newcomer reads first (issue 43): at most 45 lines, a headline of at most 5, at most 12
    verdict rows, no table line over 160 characters, no machine id."""
    block = (GOLDEN / "block.md").read_text().splitlines()
    assert len(block) <= 45
    assert block.index("") <= 5  # the headline paragraph comes first
    table = [line for line in block if line.startswith("|")]
    assert 2 < len(table) <= 2 + 12 and max(map(len, table)) <= 160
    assert "vm/" not in "\n".join(block) and "vm/" not in (GOLDEN / "README.md").read_text()


def update(from_run: bool = False) -> None:
    """Write the pages the golden results render to (after a reviewed change of the rendering); ``from_run``: first
    take the work tree's (smoke) run as the new golden results (after a change of what a smoke run computes)."""
    import tempfile
    from basisconv.pipeline import publish
    if from_run:
        with tempfile.TemporaryDirectory() as tmp:
            dest = publish.publish(docs_dir=tmp, block_name=None)
            if dest.name != "smoke":
                raise SystemExit(f"the work tree holds a {dest.name} run: `make smoke` first (the golden pages are "
                                 "a smoke run's)")
            if GOLDEN.exists():
                shutil.rmtree(GOLDEN)
            GOLDEN.mkdir(parents=True)
            shutil.copytree(dest / "results", GOLDEN / "results")
        for f in (GOLDEN / "results" / "data").glob("samples.*"):  # an image of the data (1 MB): not needed
            f.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(GOLDEN / "results", Path(tmp) / "results")
        for page, text in render_golden(Path(tmp)).items():
            (GOLDEN / page).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / page).write_text(text)
    print(f"wrote {GOLDEN}: review `git diff tests/golden`")


if __name__ == "__main__":
    if sys.argv[1:] not in (["--update"], ["--update", "--from-run"]):
        raise SystemExit("usage: python tests/test_golden.py --update [--from-run]")
    update(from_run=sys.argv[2:] == ["--from-run"])
