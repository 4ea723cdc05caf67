"""Every figure's caption is written from the run's own numbers (basisconv.pipeline.captions), read here from the
golden smoke results: one caption per figure, each naming values of this run, changing when a result changes."""
import copy
from pathlib import Path

import pytest

from basisconv.pipeline import captions, render

GOLDEN = Path(__file__).parent / "golden" / "smoke"


@pytest.fixture(scope="module")
def r():
    return render.load(GOLDEN)


@pytest.mark.timeout(120)
def test_one_caption_per_figure_with_this_runs_numbers(r):
    for name, fig in render.FIGURES.items():
        assert callable(getattr(captions, name, None)), f"no caption for figure {name}"
        text = render.figure_caption(r, name)
        assert len(text) > 150 and any(ch.isdigit() for ch in text), name
    assert "26.50 %" in render.figure_caption(r, "baseline_learning_curve")  # the baseline's test accuracy
    assert "1,000 training" in render.figure_caption(r, render.SAMPLES)
    fronts = render.figure_caption(r, "basis_fronts")
    assert "selection keeps 88% of the parameters" in fronts and "32.80 % (one seed)" in fronts
    with pytest.raises(KeyError, match=r"no figure 'basis_pareto'; known figures: .*basis_fronts"):
        render.figure_caption(r, "basis_pareto")


@pytest.mark.timeout(120)
def test_a_changed_result_changes_its_caption(r):
    before = render.figure_caption(r, "basis_schedules")
    changed = copy.deepcopy(r)
    runs = changed["tables"]["runs"]
    runs.loc[runs.variant == "baseline", "test_acc"] -= 0.01
    assert render.figure_caption(changed, "basis_schedules") != before
    assert render.figure_caption(changed, "baseline_learning_curve") == render.figure_caption(r, "baseline_learning_curve")
