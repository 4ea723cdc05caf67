"""Publishing: what the README block counts and borrows, which commit it names, and the refusals before anything is
written. Publishing a real run and rendering it again byte for byte is checked end to end on the smoke run
(tests/pipeline_check.py), and the rendered words by the golden pages (tests/test_golden.py)."""
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED
from basisconv.pipeline.narrative import reading_line
from basisconv.pipeline.publish import basis_stage_seconds, borrowed_claims, code_commit, render_folder

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def test_the_commit_ignores_only_what_the_profile_command_writes(tmp_path, monkeypatch):
    """`make repro PROFILE="cpu mirror"` rewrites params.yaml (to the profile's composition) and dvc.lock: the
    provenance names the clean commit then; a hand-edited param or any code change is "+changes"."""
    import shutil
    from basisconv.pipeline.params import compose
    shutil.copytree(Path(__file__).parents[1] / "profiles", tmp_path / "profiles")
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(compose("paper")))
    Path("dvc.lock").write_text("schema: '2.0'\n")
    Path("code.py").write_text("x = 1\n")
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "code"]):
        subprocess.run(GIT + cmd, check=True)
    head = code_commit("cpu+mirror")
    assert "+" not in head
    run = compose("cpu", "mirror")
    Path("params.yaml").write_text("# generated\n" + yaml.safe_dump(run, sort_keys=False))
    Path("dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    assert code_commit("cpu+mirror") == head
    assert code_commit("smoke") == head + "+changes"  # another profile's params than the published run's
    assert code_commit() == head + "+changes"  # no profile named: any params.yaml edit counts
    run["train"]["lr"] = 0.3  # an ablation by hand: not what the published command writes
    Path("params.yaml").write_text(yaml.safe_dump(run))
    assert code_commit("cpu+mirror") == head + "+changes"
    Path("params.yaml").write_text("- not a mapping\n")
    assert code_commit("cpu+mirror") == head + "+changes"
    Path("params.yaml").write_text(yaml.safe_dump(compose("cpu", "mirror")))
    Path("code.py").write_text("x = 2\n")
    assert code_commit("cpu+mirror") == head + "+changes"


def _row(claim, verdict=SUPPORTED, source="paper", timed=False, run="cpu+mirror"):
    return {"group": "training", "claim": claim, "source": source, "comparison": f"{claim} comparison", "measured": "m",
            "verdict": verdict, "sentence": f"The paper claims that {claim}.", "timed": timed, "repeats": "",
            "run": run, "precision": "fp32"}


def test_borrowed_claims_are_read_from_the_other_runs_kept_table(tmp_path):
    """Known answer: a claim the run decides is not borrowed, nor a speed claim (timed) or a package assumption;
    the rest are, each naming the run, its precision and its report; a folder without a kept table is refused."""
    other = tmp_path / "docs/results/cpu-mirror"
    (other / "tables").mkdir(parents=True)
    pd.DataFrame([_row("own"), _row("borrowed", CONTRADICTED), _row("speed", timed=True),
                  _row("proxy", source="package")]).to_csv(other / "tables/claims.csv", index=False)
    own = pd.DataFrame([_row("own", UNDECIDED, run="cpu-full+mirror")])
    got = borrowed_claims(own, [other])
    assert list(got.claim) == ["borrowed"] and list(got.verdict) == [CONTRADICTED]
    assert got.comparison.iloc[0] == f"borrowed comparison (run `cpu+mirror`, fp32: [report]({other}/README.md))"
    assert len(borrowed_claims(own, [])) == 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"--also .*empty: no tables/claims.csv there"):
        borrowed_claims(own, [tmp_path / "empty"])


def test_render_refuses_a_folder_without_kept_results(tmp_path):
    (tmp_path / "old").mkdir()
    with pytest.raises(ValueError, match=r"--render .*old: no results/run.json there, so no kept results"):
        render_folder(tmp_path / "old")


def test_reading_line_counts_the_package_assumptions_apart_from_the_paper_claims():
    """Known answer: a table of 3 paper claims (one borrowed) and 1 package assumption; the assumption is not one of
    the paper's claims, so it is not counted among them."""
    t = pd.DataFrame({"claim": ["a", "b", "c", "d"], "source": ["paper", "paper", "paper", "package"],
                      "verdict": [SUPPORTED, CONTRADICTED, UNDECIDED, SUPPORTED],
                      "borrowed": [False, False, True, False]})
    assert reading_line(t, "`cpu`") == (
        "Of the 3 rows testing the paper's claims (1 of them from the published run `cpu`, which trains what this "
        "profile does not), 1 holds here, 1 does not hold here and 1 is not decided at this scale. The package's own 1 "
        "assumption (rows marked (package), not claims of the paper): 1 holds here, 0 do not hold here, 0 are not "
        "decided.")
    implied = pd.concat([t, pd.DataFrame({"claim": ["e", "f"], "source": ["implied"] * 2,
                                          "verdict": [SUPPORTED, UNDECIDED], "borrowed": [False] * 2})])
    implied.loc[implied.claim == "e", "borrowed"] = True
    assert reading_line(implied, "`cpu`").count("1 of them from the published run") == 2


def test_reading_line_does_not_count_a_row_with_the_same_models_twice():
    t = pd.DataFrame({"claim": ["a", "b", "c"], "source": ["implied"] * 3,
                      "verdict": [SUPPORTED, SUPPORTED, CONTRADICTED], "repeats": ["", "same model", ""]})
    line = reading_line(t)
    assert "1 holds here, 1 does not hold here" in line and "1 row of these repeats" in line


def test_basis_stage_seconds_counts_a_switch_run_from_its_snapshot():
    """A switch run's train_time includes its baseline snapshot's epochs, which the basis stage did not train."""
    runs = pd.DataFrame({"variant": ["baseline", "all_layers@switch23", "all_layers@scratch", "baseline",
                                     "spectral@switch23"], "epochs": [25] * 5, "basis_epochs": [0, 2, 25, 0, 2],
                         "same_as": ["", "", "", "", "all_layers@switch23"],
                         "train_time": [1000.0, 1010.0, 900.0, 1100.0, 1010.0],
                         "basis_epoch_time": [40.0, 35.0, 36.0, 44.0, 35.0]})
    # scratch 900 + second baseline 1100 (the first is the baseline stage's) + switch 2 own epochs x 35 s; the twin
    # was not trained again
    assert basis_stage_seconds(runs) == 900 + 1100 + 70
