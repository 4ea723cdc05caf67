import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from basisconv.experiment.io import write_json
from basisconv.pipeline.publish import END, START, basis_stage_seconds, markers, publish


def _fake_run(tmp: Path):
    """The result files a finished run leaves, at the paths of basisconv.pipeline.layout (tiny, made-up values)."""
    from basisconv.pipeline.layout import STAGES
    from basisconv.pipeline.stages.report import TABLES, table_path
    hw = {"device_name": "Test CPU", "threads": 2, "cpu_count": 2, "torch": "9.9", "torchvision": "0.99",
          "python": "3.11"}
    write_json(tmp / STAGES["baseline"]["summary"], {"profile": "cpu+mirror", "data": "CIFAR-10 (local JPEG mirror)",
                                                     "hardware": hw, "epoch_time_mean": 30.0, "train_time": 120.0,
                                                     "epochs": 4})
    write_json(tmp / STAGES["faithfulness"]["summary"], {
        "n_layers": 4, "n_pairs": 2, "ratio": 0.5, "retrain_epochs": 1, "spearman_finetune": 0.6, "seconds": 50.0,
        "additivity_real_mean_abs_interaction": 0.3, "additivity_finetune_mean_abs_interaction": 0.2,
        "params_resolved": {"sensitivity": {"proxies": ["finetune"]}}})
    write_json(tmp / STAGES["benchmark"]["summary"], {"hardware": hw})
    write_json(tmp / STAGES["sensitivity"]["selection"], {
        "candidates": ["a", "b"], "layers": ["b"], "ratios": {"b": 0.5}, "search_seconds": 12.0,
        "search_cost_fraction": 0.1, "predicted_loss": 0.3, "params_saved": 1234,
        "comparisons": {"random0": {"layers": ["a"], "ratios": {"a": 0.5}}},
        "params_resolved": {"sensitivity": {"ratios": [0.5]}}})
    for name in TABLES:
        (tmp / table_path(name)).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"x": [1]}).to_csv(tmp / table_path(name), index=False)
    pd.DataFrame({"variant": ["baseline", "selected@switch", "random0@switch"], "test_acc_mean": [55.5, 55.1, 54.0],
                  "test_acc_std": [0.0, 0.0, 0.0], "seeds": [1, 1, 1], "params": [100, 80, 80],
                  "compression": [1.0, 1.25, 1.25], "data": ["x"] * 3}
                 ).to_csv(tmp / table_path("main_table"), index=False)
    pd.DataFrame({"model": ["baseline"], "mode": ["train_step"], "batch_size": [64], "median_ms": [10.0],
                  "images_per_s": [6400.0], "theoretical_speedup": [1.0], "measured_speedup": [1.0]}
                 ).to_csv(tmp / table_path("benchmark_models"), index=False)
    # the switch run carries its baseline snapshot's 3 epochs in train_time; its own last epoch took 25 s
    pd.DataFrame({"variant": ["baseline", "selected@switch"], "seed": [0, 0], "test_acc": [0.555, 0.551],
                  "train_time": [120.0, 100.0], "basis_epoch_time": [30.0, 25.0]}).to_csv(tmp / table_path("runs"), index=False)
    write_json(tmp / STAGES["basis"]["summary"], {"params_resolved": {"train": {"epochs": 4},
                                                                      "basis": {"switch_epoch": 3, "ratio": 0.5}}})
    (tmp / "reports/tables").mkdir(parents=True)
    (tmp / "reports/figures").mkdir()
    (tmp / "reports/notebooks").mkdir()
    (tmp / "reports/tables/main_table.md").write_text("| t |\n")
    (tmp / "reports/figures/a.png").write_bytes(b"png")
    (tmp / "reports/README.md").write_text("# report\n")
    (tmp / "reports/notebooks/01_data.ipynb").write_text(json.dumps({"cells": [], "metadata": {"papermill": {"duration": 90.0}}}))


def test_publish_fills_block_from_files(tmp_path, monkeypatch):
    _fake_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("README.md").write_text(f"intro\n{START}\nold\n{END}\noutro\n")
    dest = publish()
    text = Path("README.md").read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "\nold\n" not in text
    for expected in ("cpu+mirror", "CIFAR-10 (local JPEG mirror)", "Test CPU", "1.5 min", "55.50 ± 0.00 % (mean ± std) over 1 seed.",
                     "from the code at commit `", "with `ALLOW_LONG=1` where it stops at its wall-time estimate",
                     "(the first seed), sensitivity sweep 12 s, faithfulness checks 50 s, basis-stage trainings (the "
                     "other baseline seeds and every basis run) 25 s", "| the sensitivity-selected layers keep accuracy (read here as: within 1 point "
                     "of the baseline) | selected@switch - baseline | -0.40 points (1 seed: no interval) | not decided at this "
                     "scale |", "| the sensitivity search is cheap next to training (read here as: at most 10 % of one "
                     "baseline training) | sweep / one baseline training | 12 s against 120 s, 10.0 % (one timing of each: no "
                     "interval) | supported |",
                     "Of the 2 rows testing the paper's claims, 1 holds here, 0 do not hold here and 1 is not "
                     "decided at this scale."):
        assert expected in re.sub(r" +", " ", text), expected  # table cells are padded
    assert dest == Path("docs/results/cpu-mirror") and (dest / "figures/a.png").is_file()
    page = (dest / "README.md").read_text()  # the published report says which code and precision produced it
    assert page.startswith("# report\n\n> **Provenance.** Profile `cpu+mirror`") and "from the code at commit `" in page
    assert "training in " in page and "timings in " in page
    publish()  # idempotent: the block is replaced again, not duplicated
    assert Path("README.md").read_text().count(START) == 1
    # a second, named block (another profile) is filled without touching the main one
    start, end = markers("results-long")
    Path("README.md").write_text(Path("README.md").read_text() + f"{start}\nold\n{end}\n")
    main_block = Path("README.md").read_text().split(START)[1].split(END)[0]
    publish(block_name="results-long")
    text = Path("README.md").read_text()
    assert text.split(START)[1].split(END)[0] == main_block and "\nold\n" not in text
    assert "cpu+mirror" in text.split(start)[1]


def test_publish_names_the_commit_of_the_work_tree_before_it_wrote(tmp_path, monkeypatch):
    """Publishing rewrites tracked files (the README block, docs/results): the block and the report page both name
    the commit as the tree was before, not a "+changes" that publishing itself made."""
    import subprocess
    _fake_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("README.md").write_text(f"intro\n{START}\nold\n{END}\n")
    old = Path("docs/results/cpu-mirror")  # an earlier publication of the profile, which publishing replaces
    old.mkdir(parents=True)
    (old / "README.md").write_text("# the earlier report\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "README.md", "docs"], ["commit", "-q", "-m", "published"]):
        subprocess.run(git + cmd, check=True)
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    dest = publish()
    for text in (Path("README.md").read_text(), (dest / "README.md").read_text()):
        assert f"from the code at commit `{head}`" in text and "+changes" not in text


def test_the_commit_ignores_only_what_the_profile_command_writes(tmp_path, monkeypatch):
    """`make repro PROFILE="cpu mirror"` rewrites params.yaml (to the profile's composition) and dvc.lock: the
    provenance names the clean commit then; a hand-edited param or any code change is "+changes"."""
    import shutil
    import subprocess
    import yaml
    from basisconv.pipeline.params import compose
    from basisconv.pipeline.publish import code_commit
    shutil.copytree(Path(__file__).parents[1] / "profiles", tmp_path / "profiles")
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(compose("paper")))
    Path("dvc.lock").write_text("schema: '2.0'\n")
    Path("code.py").write_text("x = 1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "code"]):
        subprocess.run(git + cmd, check=True)
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


def test_publish_needs_markers(tmp_path, monkeypatch):
    _fake_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("README.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- results:start -->"):
        publish()


def _other_published_run(folder: Path, claims_rows: list[dict]) -> None:
    folder.mkdir(parents=True)
    (folder / "tables").mkdir()
    pd.DataFrame(claims_rows).to_csv(folder / "tables/claims.csv", index=False)


def test_publish_keeps_its_claims_and_borrows_only_the_undecided_ones(tmp_path, monkeypatch):
    from basisconv.pipeline.claims import sentence
    _fake_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("README.md").write_text(f"intro\n{START}\nold\n{END}\noutro\n")
    cheap = "the sensitivity search is cheap next to training (read here as: at most 10 % of one baseline training)"
    scratch = "the switch schedule matches training basis layers from scratch (within 1 point)"
    rows = [{"claim": c, "source": "paper", "comparison": comp, "measured": m, "verdict": v,
             "sentence": sentence(c, m, v), "timed": timed, "run": "cpu+mirror", "precision": "fp32"}
            for c, comp, m, v, timed in [
                (cheap, "sweep / one baseline training", "1 s against 100 s, 1.0 %", "supported", False),
                (scratch, "selected@switch - selected@scratch", "+0.10 points", "supported", False),
                # a speed verdict of other hardware, under any wording: never borrowed
                ("basis layers on every layer speed up the inference", "the all-layers model against the baseline",
                 "1.46x, 95 % CI [1.30x, 1.63x]", "supported", True)]]
    proxy = "the `zero_shot` proxy ranks layers in the same direction as retraining them (rank correlation above 0)"
    rows.append({"claim": proxy, "source": "package", "comparison": "zero_shot drop vs retrained drop",
                 "measured": "Spearman 0.74", "verdict": "supported", "sentence": sentence(proxy, "Spearman 0.74",
                 "supported", "package"), "timed": False, "run": "cpu+mirror", "precision": "fp32"})
    _other_published_run(Path("docs/results/cpu-mirror"), rows)
    Path("profile_other").mkdir()
    _other_published_run(Path("profile_older"), [{k: v for k, v in r.items() if k != "timed"} for r in rows])
    before = Path("README.md").read_text()
    with pytest.raises(ValueError, match=r"--also profile_other: no tables/claims.csv there"):
        publish(also=["profile_other"])  # checked before anything is written
    with pytest.raises(ValueError, match=r"--also profile_older: its tables/claims.csv has no 'timed' column"):
        publish(also=["profile_older"])
    assert Path("README.md").read_text() == before and not Path("docs/results/cpu-mirror/README.md").exists()
    with pytest.raises(ValueError, match="that is the folder this run is published to"):  # the fake run is cpu+mirror
        publish(also=["docs/results/cpu-mirror"])
    other = Path("docs/results/other")
    Path("docs/results/cpu-mirror").rename(other)
    dest = publish(also=[str(other)])
    text = re.sub(r" +", " ", Path("README.md").read_text())
    assert text.count(cheap) == 1 and "12 s against 120 s" in text and "1 s against 100 s" not in text
    assert "| basis layers on every layer speed up the inference" not in text  # no row of another machine's timing
    unborrowed = ("Not borrowed: 1 speed claim that another run decides by its own timings ('basis layers on every "
                  "layer speed up the inference', run `cpu+mirror`), since a speed verdict belongs to the machine and "
                  "the models that were timed; this run does not decide it itself.")
    assert unborrowed in text  # named, not left out unsaid
    assert ("| the switch schedule matches training basis layers from scratch (within 1 point) | selected@switch - "
            "selected@scratch (run `cpu+mirror`, fp32: [report](docs/results/other/README.md)) | +0.10 points | "
            "supported |") in text
    assert ("Of the 3 rows testing the paper's claims (1 of them from the published run `cpu+mirror`, which trains "
            "what this profile does not), 2 hold here, 0 do not hold here and 1 is not decided at this scale.") in text
    kept = pd.read_csv(dest / "tables/claims.csv")  # its own verdicts only, with the run's profile and precision
    assert cheap in set(kept.claim) and scratch not in set(kept.claim) and set(kept.run) == {"cpu+mirror"}
    assert {"precision", "sentence", "verdict", "timed"} <= set(kept.columns)
    page = (dest / "README.md").read_text()
    assert "### Claims this profile does not train, from another published run (its verdicts, not this run's)" in page
    assert "[report](../other/README.md)" in page and "- In run `cpu+mirror`: The paper claims" in page
    assert page.count(unborrowed) == 1
    assert "- In run `cpu+mirror`: The paper claims that the switch schedule matches training basis layers from scratch" in page
    assert "proxy ranks layers" not in text  # the package's own assumption: every run measures its own proxies


def test_reading_line_counts_the_package_assumptions_apart_from_the_paper_claims():
    """Known answer: a table of 3 paper claims (one borrowed) and 1 package assumption; the assumption is not one of
    the paper's claims, so it is not counted among them."""
    from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED
    from basisconv.pipeline.publish import reading_line
    t = pd.DataFrame({"claim": ["a", "b", "c", "d"], "source": ["paper", "paper", "paper", "package"],
                      "verdict": [SUPPORTED, CONTRADICTED, UNDECIDED, SUPPORTED],
                      "borrowed": [False, False, True, False]})
    assert reading_line(t, "`cpu`") == (
        "Of the 3 rows testing the paper's claims (1 of them from the published run `cpu`, which trains what this "
        "profile does not), 1 holds here, 1 does not hold here and 1 is not decided at this scale. The package's own 1 "
        "assumption (rows marked (package), not claims of the paper): 1 holds here, 0 do not hold here, 0 are not "
        "decided.")
    assert reading_line(t.iloc[:2]) == ("Of the 2 rows testing the paper's claims, 1 holds here, 1 does not hold "
                                        "here and 0 are not decided at this scale.")
    # comparisons the package adds are counted apart from the paper's claims too
    implied = pd.concat([t, pd.DataFrame({"claim": ["e", "f"], "source": ["implied"] * 2,
                                          "verdict": [SUPPORTED, UNDECIDED], "borrowed": [False] * 2})])
    assert reading_line(implied, "`cpu`") == (
        "Of the 3 rows testing the paper's claims (1 of them from the published run `cpu`, which trains what this "
        "profile does not), 1 holds here, 1 does not hold here and 1 is not decided at this scale. Of the 2 "
        "comparisons this package adds to test what the paper's search implies (rows marked (implied)), 1 holds "
        "here, 0 do not hold here and 1 is not decided. The package's own 1 assumption (rows marked (package), not "
        "claims of the paper): 1 holds here, 0 do not hold here, 0 are not decided.")
    # a borrowed comparison is named as borrowed in its own count, not in the paper's
    implied.loc[implied.claim == "e", "borrowed"] = True
    assert "(rows marked (implied)) (1 of them from the published run `cpu`, which trains what this profile does " \
           "not), 1 holds" in reading_line(implied, "`cpu`")
    assert reading_line(implied, "`cpu`").count("1 of them from the published run") == 2


@pytest.mark.timeout(60)
def test_caveats_name_the_fixes_a_page_predates(tmp_path, monkeypatch):
    """Known answer on a two-commit repository: a page of the first commit predates a fix made in the second."""
    import subprocess
    from basisconv.pipeline.publish import caveats, page_commit
    monkeypatch.chdir(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], check=True)
    commits = []
    for i in range(2):
        Path("f").write_text(str(i))
        subprocess.run(git + ["add", "f"], check=True)
        subprocess.run(git + ["commit", "-q", "-m", str(i)], check=True)
        commits.append(subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                      check=True).stdout.strip())
    fixes = [(commits[1], "the fix")]
    assert caveats(commits[0], fixes) == ["the fix"] and caveats(commits[1], fixes) == []
    assert caveats("0123456789ab", fixes) == [] and caveats(None, fixes) == []  # unknown code: nothing claimed
    page = f"# t\n\n> **Provenance.** Profile `x`, from the code at commit `{commits[0]}` and published.\n"
    assert page_commit(page) == commits[0] and page_commit("# t\n") is None


def test_basis_stage_seconds_counts_a_switch_run_from_its_snapshot():
    """A switch run's train_time includes its baseline snapshot's epochs, which the basis stage did not train."""
    runs = pd.DataFrame({"variant": ["baseline", "all_layers@switch", "all_layers@scratch", "baseline"],
                         "train_time": [1000.0, 1010.0, 900.0, 1100.0], "basis_epoch_time": [40.0, 35.0, 36.0, 44.0]})
    # scratch 900 + second baseline 1100 (the first is the baseline stage's) + switch 2 own epochs x 35 s
    assert basis_stage_seconds(runs, epochs=25, switch_epoch=23) == 900 + 1100 + 70


def test_reborrow_refreshes_only_the_borrowed_rows(tmp_path, monkeypatch):
    """After the borrowed-from run is republished, ``reborrow`` puts its new rows into the borrowing run's page and
    README block; the run's own rows, provenance and hardware lines stay; twice is the same as once; which claims are
    borrowed stays as published (a claim reworded there is refused), and another run's block is not touched."""
    from basisconv.pipeline.claims import sentence
    from basisconv.pipeline.publish import BORROWED_HEADING, no_longer_line, reborrow
    from basisconv.pipeline.stages.report import table_path
    _fake_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("reports/README.md").write_text("# report\n\nverdicts\n\n## Measurements by topic\n\nbody\n")
    Path("README.md").write_text(f"intro\n{START}\nold\n{END}\noutro\n")
    scratch = "the switch schedule matches training basis layers from scratch (within 1 point)"

    def other_run(measured, claim=scratch):
        shutil.rmtree("docs/results/other", ignore_errors=True)
        _other_published_run(Path("docs/results/other"), [{
            "claim": claim, "source": "paper", "comparison": "selected@switch - selected@scratch",
            "measured": measured, "verdict": "supported", "sentence": sentence(claim, measured, "supported"),
            "timed": False, "run": "cpu+other", "precision": "fp32"}])

    other_run("+0.25 points")
    dest = publish(also=["docs/results/other"])
    shutil.copyfile(table_path("runs"), dest / "tables/runs.csv")  # the report stage's table, as a real run has it
    before_readme, before_page = Path("README.md").read_text(), (dest / "README.md").read_text()
    assert "+0.25 points" in before_readme and "+0.25 points" in before_page and "-0.75 points" not in before_page
    other_run("-0.75 points")  # the borrowed-from run, republished
    for _ in range(2):
        assert reborrow(dest, ["docs/results/other"]) == [str(dest / "README.md"), "README.md"]
        readme, page = Path("README.md").read_text(), (dest / "README.md").read_text()
        assert page.count("-0.75 points") == 2 and readme.count("-0.75 points") == 1  # row and sentence; row
        assert "+0.25 points" not in page + readme
        assert page.count(BORROWED_HEADING) == 1 and page.index(BORROWED_HEADING) < page.index("## Measurements")
        assert "[report](../other/README.md)" in page and "[report](docs/results/other/README.md)" in readme
        # the rest of the page, and the block's own lines, as published
        assert page.replace("-0.75 points", "+0.25 points") == before_page
        assert re.sub(r" +", " ", readme.replace("-0.75 points", "+0.25 points")) == re.sub(r" +", " ", before_readme)
    # a README whose block is another run's (its rows may link this folder) is left alone
    Path("README.md").write_text(readme.replace(f"]({dest}/README.md).", "](docs/results/x/README.md)."))
    kept = Path("README.md").read_text()
    assert reborrow(dest, ["docs/results/other"]) == [str(dest / "README.md")] and Path("README.md").read_text() == kept
    other_run("-0.75 points", claim="the switch schedule matches scratch training")  # reworded there: found by
    reborrow(dest, ["docs/results/other"])  # its comparison, and shown in the new words
    page = (dest / "README.md").read_text()
    assert "the switch schedule matches scratch training" in page and scratch not in page
    # a claim that run no longer decides is refused; one it now decides by timing is that machine's: dropped, and
    # page and block say so, at this reborrow and every later one
    shutil.rmtree("docs/results/other")
    _other_published_run(Path("docs/results/other"), [{
        "claim": "x", "source": "paper", "comparison": "a - b", "measured": "+1.00 points", "verdict": "supported",
        "sentence": sentence("x", "+1.00 points", "supported"), "timed": False, "run": "cpu+other", "precision": "fp32"}])
    with pytest.raises(ValueError, match="1 borrowed claims on its page, 0 of them found in docs/results/other"):
        reborrow(dest, ["docs/results/other"])
    assert (dest / "README.md").read_text() == page
    timed = "the switch schedule matches scratch training"
    shutil.rmtree("docs/results/other")
    _other_published_run(Path("docs/results/other"), [{
        "claim": timed, "source": "paper", "comparison": "a / b by training-step time", "measured": "1.10x",
        "verdict": "supported", "sentence": sentence(timed, "1.10x", "supported"), "timed": True, "run": "cpu+other",
        "precision": "fp32"}])
    Path("README.md").write_text(before_readme)
    for _ in range(2):
        reborrow(dest, ["docs/results/other"])
        page, readme = (dest / "README.md").read_text(), Path("README.md").read_text()
        gone = no_longer_line(timed)
        assert page.count(gone) == 1 and readme.count(gone) == 1 and "1.10x" not in page + readme
        assert "\n\n\n" not in readme
        assert "- In run `cpu+other`" not in page
    page = (dest / "README.md").read_text()
    with pytest.raises(ValueError, match=r"--reborrow docs/results/none: no README.md there; valid choices: "
                                         r"docs/results/cpu-mirror, docs/results/other"):
        reborrow("docs/results/none", ["docs/results/other"])
    with pytest.raises(ValueError, match="that is the folder whose claims are borrowed into"):
        reborrow(dest, [str(dest)])
    with pytest.raises(ValueError, match="--reborrow needs --also"):
        reborrow(dest, [])
    assert (dest / "README.md").read_text() == page  # every refusal before anything is written


def _reworded_fixture(root: Path, old_word: str = "at equal parameter saving"):
    """A published run whose page and claims.csv word a comparison claim as older code did (``old_word``), with a
    borrowed row, an old figure caption and a README block; returns (folder, published claims)."""
    from basisconv.pipeline import claims
    from basisconv.pipeline.publish import CLAIMS_HEADING, MEASUREMENTS, borrowed_section, report_link
    folder = root / "docs/results/run"
    (folder / "tables").mkdir(parents=True)
    runs = pd.DataFrame({"variant": ["baseline", "selected@switch", "random0@switch"] * 3,
                         "seed": [0] * 3 + [1] * 3 + [2] * 3,
                         "test_acc": [0.880, 0.870, 0.800, 0.884, 0.871, 0.810, 0.882, 0.875, 0.805],
                         "params": [100, 60, 58] * 3, "macs": [1e6, 6e5, 5e5] * 3})
    runs.to_csv(folder / "tables/runs.csv", index=False)
    own = pd.DataFrame([d.row() for d in claims.accuracy_claims(runs)]).assign(run="cpu-full+mirror",
                                                                                precision="bf16 autocast")
    now = "random layers saving about as many parameters"
    assert own.claim.str.contains(now).sum() == 1
    # as older code published it: in other words, the comparison as the paper's, and a claim decided from epoch
    # times of trainings run apart (withdrawn since: the machine's drift entered it)
    old = own.assign(claim=own.claim.str.replace(now, f"random layers {old_word}", regex=False), source="paper")
    epoch = next(iter(claims.WITHDRAWN))
    old = pd.concat([old, old.iloc[:1].assign(claim="the sensitivity search is cheap next to training (at most 10 % "
                                              "of one baseline training)", comparison=claims.SEARCH_COMPARISON,
                                              measured="307 s against 1,730 s, 17.8 %", verdict="contradicted"),
                     old.iloc[:1].assign(claim=epoch, comparison="baseline - selected@switch",
                                              measured="+6.74 s, 95 % CI [+3.53, +9.96] over 3 seeds",
                                              verdict="supported", timed=False)], ignore_index=True)
    old = old.assign(sentence=[claims.sentence(c, m, v, s) for c, m, v, s in
                               zip(old.claim, old.measured, old.verdict, old.source)]).drop(columns="timed")
    # (no 'timed' column: as a page published before rows were marked timed has it)
    old.to_csv(folder / "tables/claims.csv", index=False)
    other = root / "docs/results/other"
    scratch = "the switch schedule matches training basis layers from scratch (within 1 point)"
    _other_published_run(other, [{"claim": scratch, "source": "paper", "comparison": "selected@switch - "
                                  "selected@scratch", "measured": "+0.25 points", "verdict": "supported",
                                  "sentence": claims.sentence(scratch, "+0.25 points", "supported"), "timed": False,
                                  "run": "cpu+other", "precision": "fp32"}])
    section = borrowed_section(pd.read_csv(other / "tables/claims.csv", keep_default_na=False)
                               .assign(comparison=lambda t: t.comparison + " (run `cpu+other`, fp32: [report](x))"),
                               [], folder)
    (folder / "README.md").write_text(
        "# Title\n\n> **Provenance.** Profile `cpu-full+mirror`, from the code at commit `abc`.\n\n"
        "## Main table\n\nTest accuracy in %, mean and std over seeds; differences in points; the per-run rows: "
        "[tables/runs.csv](tables/runs.csv).\n\n| table |\n\nRun names: `<variant>@switch` continues. Epoch (s) and "
        "training (s) of a switch run include the 24 dense epochs before the switch, the baseline's; of the verdict "
        "table's time claims, time per epoch compares the epochs from the switch on only, and switch against scratch "
        "compares whole trainings, those dense epochs included.\n\n"
        f"{CLAIMS_HEADING}\n\n{claims.verdict_markdown({'tables': {'runs': runs}}, table=old)}\n\n"
        + "\n".join(f"- {x}" for x in old.sentence) + f"\n\n{section}{MEASUREMENTS}\n\ntopic prose: random subsets at equal savings 78.01 %; basis 1.95x (91 % of "
        "its theory; faster than dense on 14/14)\n\n## Figures\n\n"
        "**Figure 1: `basis_curves`.** An older caption.\n\n![basis_curves](figures/basis_curves.png)\n")
    (root / "README.md").write_text(f"intro\n{START}\nProfile line.\nHardware line.\n\n| old table |\n\nreading\n\n"
                                    f"{report_link(Path('docs/results/run'))}\n{END}\noutro\n")
    return Path("docs/results/run"), old


def test_reword_renders_the_claims_and_captions_in_the_current_words_and_keeps_every_number(tmp_path, monkeypatch):
    """Known answer: a page published with older wording ('at equal parameter saving') gets the current claim words
    in its claims.csv, verdict table, sentences and README block, and the current figure captions; measured values
    and verdicts stay as published, the prose between them stays, page and block say they were re-worded; twice is
    the same as once."""
    from basisconv.pipeline.figures import caption
    from basisconv.pipeline.publish import REWORDED, reborrow
    from basisconv.pipeline.report import MAIN_TABLE_NOTE, time_columns_text
    from basisconv.pipeline import publish as publish_module
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(publish_module, "caveats", lambda commit, fixes=None: ["the code predates a fix."])
    folder, old = _reworded_fixture(tmp_path)
    for _ in range(2):
        written = reborrow(folder, ["docs/results/other"], reword=True)
        assert written == [str(folder / "README.md"), str(folder / "tables/claims.csv"), "README.md"]
        new = pd.read_csv(folder / "tables/claims.csv", keep_default_na=False)
        page, readme = (folder / "README.md").read_text(), Path("README.md").read_text()
        kept = old.iloc[:-1]  # the withdrawn row dropped, every other number and verdict as published
        assert new.drop(columns=["claim", "sentence", "source"]).equals(kept.drop(columns=["claim", "sentence", "source"]))
        assert (new.claim != kept.claim).sum() == 2 and "equal parameter saving" not in page + readme + "".join(new.claim)
        from basisconv.pipeline.claims import SEARCH_CLAIM  # the search row: its claim's current words
        assert new.claim.iloc[-1] == SEARCH_CLAIM and "(at most 10 %" not in page + readme
        assert list(new.source) == ["implied" if "random0" in c else "paper" for c in new.comparison]
        epoch = old.claim.iloc[-1]
        assert epoch not in set(new.claim) and "+6.74 s" not in page.split("Withdrawn")[0].split(REWORDED)[1]
        said = f"Withdrawn: the row '{epoch}' (published: +6.74 s, 95 % CI [+3.53, +9.96] over 3 seeds, supported)"
        assert page.count(said) == 1 and readme.count(said) == 1 and "machine's drift" in page
        worded = "the selection beats random layers saving about as many parameters (`random0@switch`)"
        assert worded in set(new.claim) and page.count(worded) == 2 and readme.count(worded) == 1  # row, sentence
        assert f"The paper's search implies that {worded}." in page
        assert f"**Figure 1: `basis_curves`.** {caption('basis_curves')}" in page and "older caption" not in page
        # the main table's note and the time columns' sentence in the current words
        assert f"## Main table\n\n{MAIN_TABLE_NOTE}\n\n| table |\n\nRun names: `<variant>@switch` continues. " \
               f"{time_columns_text(24)}\n\n" in page and "time per epoch compares" not in page
        assert page.count(REWORDED) == 1 and readme.count(REWORDED) == 1
        assert re.search(r"^> \*\*Provenance\.\*\* .* at commit `abc`\. " + REWORDED + " .*every number and verdict "
                         r"still shown is the run's as published\. Withdrawn: [^\n]*machine's drift[^\n]*\.$", page,
                         re.M)
        # the topic prose's phrases older code worded stronger than its evidence, in today's words
        assert "random layer subsets saving about as many parameters (one draw each) 78.01 %" in page
        assert "faster than dense by median time on 14/14, no interval)" in page and "equal savings" not in page
        assert "topic prose" in page and "- In run `cpu+other`:" in page and "Profile line.\nHardware line." in readme
        assert "| old table |" not in readme and readme.startswith("intro\n") and readme.endswith("outro\n")
        assert "\n\n\n" not in readme  # the notes replaced, not stacked
        assert page.count("Caveat: the code predates a fix.") == 1 and readme.count("Caveat: the code predates") == 1
    # a plain reborrow afterwards keeps the block's re-wording note, with its withdrawals and caveats
    reborrow(folder, ["docs/results/other"])
    assert Path("README.md").read_text() == readme and (folder / "README.md").read_text() == page


def test_reword_refuses_a_changed_number_and_a_page_that_is_not_its_table(tmp_path, monkeypatch):
    """Only words may change: a per-run table that now gives another measurement, or a page whose sentences are not
    its claims.csv's, is refused before anything is written; --reword alone is refused by the command line."""
    from basisconv.pipeline.publish import main, reborrow
    monkeypatch.chdir(tmp_path)
    folder, _ = _reworded_fixture(tmp_path)
    runs = pd.read_csv(folder / "tables/runs.csv")
    files = {p: p.read_bytes() for p in [folder / "README.md", folder / "tables/claims.csv", Path("README.md")]}
    runs.assign(test_acc=runs.test_acc.where(runs.variant != "random0@switch", 0.7)).to_csv(
        folder / "tables/runs.csv", index=False)
    with pytest.raises(ValueError, match=r"--reword docs/results/run: `selected@switch - random0@switch .*` now "
                                         r"measures .* only words may change"):
        reborrow(folder, ["docs/results/other"], reword=True)
    runs.to_csv(folder / "tables/runs.csv", index=False)
    page = files[folder / "README.md"].decode()
    (folder / "README.md").write_text(page.replace("- The paper claims that the sensitivity", "- The paper says the sensitivity"))
    with pytest.raises(ValueError, match="--reword docs/results/run: the page's verdict sentences are not those of "
                                         "its tables/claims.csv"):
        reborrow(folder, ["docs/results/other"], reword=True)
    (folder / "README.md").write_text(page.replace("the 24 dense epochs before the switch, the baseline's;",
                                                   "its first 24 dense epochs, the baseline's;"))
    with pytest.raises(ValueError, match="--reword docs/results/run: the page's sentence on its time columns is in "
                                         "words --reword does not know"):
        reborrow(folder, ["docs/results/other"], reword=True)
    claims_csv = files[folder / "tables/claims.csv"].decode()
    (folder / "tables/claims.csv").write_text(claims_csv.replace("17.8 %\",contradicted", "17.8 %\",supported"))
    (folder / "README.md").write_bytes(files[folder / "README.md"])
    with pytest.raises(ValueError, match=r"--reword docs/results/run: the search-cost row .* is not decided so under "
                                         r"today's threshold \(10 %\)"):
        reborrow(folder, ["docs/results/other"], reword=True)
    (folder / "tables/claims.csv").write_bytes(files[folder / "tables/claims.csv"])
    (folder / "README.md").write_text(page.replace("`basis_curves`", "`no_such_figure`", 1))
    with pytest.raises(ValueError, match="--reword docs/results/run: no caption for figure 'no_such_figure'"):
        reborrow(folder, ["docs/results/other"], reword=True)
    (folder / "README.md").write_bytes(files[folder / "README.md"])
    assert all(p.read_bytes() == b for p, b in files.items())
    with pytest.raises(SystemExit):
        main(["--reword"])


def test_withdrawn_rows_are_the_untimed_rows_of_withdrawn_claims():
    from basisconv.pipeline import claims
    from basisconv.pipeline.publish import withdrawn_rows
    claim = next(iter(claims.WITHDRAWN))
    t = pd.DataFrame({"claim": [claim, claim, "kept"], "measured": ["+1 s", "1.1x", "+1 points"],
                      "timed": [False, True, False]})
    gone = withdrawn_rows(t)
    assert list(gone.index) == [0] and gone.why.iloc[0] == claims.WITHDRAWN[claim]  # a timed row of it stays
    assert list(withdrawn_rows(t.drop(columns="timed")).index) == [0, 1]  # published before rows were marked


def test_reading_line_does_not_count_a_row_with_the_same_models_twice():
    """Known answer: of 3 comparisons the package adds, one repeats another with the same model under another run
    name (its ``repeats`` cell says why; a CSV read back gives NaN for the others): it is named, not counted."""
    from basisconv.core.evidence import CONTRADICTED, SUPPORTED
    from basisconv.pipeline.publish import reading_line
    t = pd.DataFrame({"claim": ["a", "e", "f", "g"], "source": ["paper", "implied", "implied", "implied"],
                      "verdict": [SUPPORTED, SUPPORTED, CONTRADICTED, SUPPORTED],
                      "repeats": [float("nan"), "", float("nan"), "`x` is the same model as `y` here"]})
    assert reading_line(t) == (
        "Of the 1 row testing the paper's claims, 1 holds here, 0 do not hold here and 0 are not decided at this "
        "scale. Of the 3 comparisons this package adds to test what the paper's search implies (rows marked "
        "(implied)), 1 holds here, 1 does not hold here and 0 are not decided; 1 row of these repeats another "
        "row's comparison with the same model under another run name, so it is not counted (not separate "
        "evidence).")
    assert "repeats" not in reading_line(t.drop(columns="repeats"))
    two = pd.concat([t, t.tail(1)], ignore_index=True)
    assert "; 2 rows of these repeat another row's comparison with the same model under another run name, so they " \
           "are not counted (not separate evidence)." in reading_line(two)


def test_reword_keeps_the_note_that_a_row_is_not_separate_evidence():
    """The per-run table cannot know which runs train one model, so a re-worded row keeps its published note."""
    from basisconv.pipeline import claims
    from basisconv.pipeline.publish import reworded_claims
    rows = []
    for s, shift in ((0, 0.0), (1, 1.0), (2, -1.0)):
        for v, acc in (("baseline", 90.0), ("all_layers@switch", 85.0), ("selected@switch", 89.5),
                       ("spectral@switch", 85.0)):
            rows.append({"variant": v, "seed": s, "test_acc": (acc + shift) / 100, "params": 10, "macs": 100})
    runs = pd.DataFrame(rows)
    same = {"spectral@switch": "all_layers@switch"}
    own = pd.DataFrame([d.row() for d in claims.accuracy_claims(runs, same=same)], columns=claims.COLUMNS)
    out = reworded_claims("docs/results/x", own, runs)
    row = out[out.comparison.str.startswith("selected@switch - spectral@switch")].iloc[0]
    assert row.sentence.endswith("so this row repeats the row `selected@switch - all_layers@switch`.")
    assert list(out.sentence) == list(own.sentence)
