"""Paths declared once (basisconv.pipeline.layout, figures in basisconv.pipeline.display) and complete DVC dependencies
(the import closure of each stage), generated into dvc.yaml by basisconv.pipeline.dvcfile."""
import json
import re
from pathlib import Path

import pytest
import yaml

from basisconv.pipeline import dvcfile, keys, layout
from basisconv.pipeline.display import STAGES

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_committed_dvc_yaml_is_generated_from_the_layout():
    assert (ROOT / "dvc.yaml").read_text() == dvcfile.render(), \
        "dvc.yaml differs from the layout: run `python -m basisconv.pipeline.dvcfile`"


def _paths(entries):
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


@pytest.mark.parametrize("name", list(STAGES))
def test_every_dvc_path_is_declared_in_the_layout(name):
    st, dvc = STAGES[name], DVC[name]
    declared_outs = set(st.outputs())
    assert _paths(dvc["outs"]) | _paths(dvc.get("metrics", [])) | _paths(dvc.get("plots", [])) == declared_outs
    code = {str(p.relative_to(ROOT)) for p in keys.closure_files(st.module)}
    for m in keys.notebook_imports(ROOT / st.notebook):  # the notebook's own imports (figures, discussion)
        code |= {str(p.relative_to(ROOT)) for p in keys.closure_files(m)}
    assert set(dvc["deps"]) == {st.notebook, *st.deps.values(), *code}
    assert "src/basisconv/pipeline/figures.py" in dvc["deps"]  # editing a figure redraws it
    assert dvc["params"] == list(st.params)
    assert dvc["cmd"] == f"python -m basisconv.pipeline.notebook {name}"


def _import_graph_by_hand(module: str) -> set[str]:
    """An independent reading of the import graph: every `from basisconv.x import` / `from .x import` /
    `import basisconv.x` line, by regular expression, followed transitively with the parent packages."""
    src = ROOT / "src"
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        parts = m.split(".")
        for i in range(1, len(parts) + 1):
            p = ".".join(parts[:i])
            if p in seen:
                continue
            seen.add(p)
            f = keys.module_file(p)
            pkg = p if f.name == "__init__.py" else p.rpartition(".")[0]
            for dots, mod, names in re.findall(r"^[ \t]*from (\.*)((?<=\.)[\w.]*|basisconv[\w.]*) import "
                                               r"(\([^)]*\)|[\w ,]+)", f.read_text(), re.M):
                names = names.strip("()")
                if dots:
                    base = pkg.split(".")[:len(pkg.split(".")) - (len(dots) - 1)]
                    target = ".".join(base + ([mod] if mod else []))
                else:  # absolute: from basisconv.x.y import ...
                    target = mod
                todo.append(target)
                for n in re.split(r"[,\s]+", names.strip()):
                    if n and keys.module_file(f"{target}.{n}").is_file():
                        todo.append(f"{target}.{n}")
            todo += re.findall(r"^[ \t]*import (basisconv(?:\.\w+)+)", f.read_text(), re.M)
    return {m for m in seen if keys.module_file(m).is_file()}


@pytest.mark.parametrize("name", list(STAGES))
def test_closure_matches_an_independent_reading_of_the_imports(name):
    assert set(keys.module_closure(STAGES[name].module)) == _import_graph_by_hand(STAGES[name].module)


def test_closures_contain_what_the_stages_use_and_nothing_of_the_others():
    clos = {n: set(keys.module_closure(s.module)) for n, s in STAGES.items()}
    b = "basisconv."
    # the modules the old hand-written deps missed
    assert {b + m for m in ("perf.bench", "experiment.train", "experiment.loader", "core.counting",
                            "core.sensitivity", "core.surgery")} <= clos["sensitivity"]
    assert {b + m for m in ("core.surgery", "experiment.models", "experiment.train", "perf.bench")} <= clos["benchmark"]
    assert b + "pipeline.narrative" in clos["report"] and b + "pipeline.runs" in clos["basis"]
    assert b + "experiment.faithfulness" in clos["faithfulness"]
    assert b + "pipeline.stages.basis" not in clos["report"] and b + "perf.bench" not in clos["baseline"]
    assert b + "pipeline.publish" not in set().union(*clos.values())  # not a stage: editing it re-runs nothing
    # drawing, words and the analysis of kept timings: in no computing stage's closure, so in no key
    shown = {b + m for m in ("pipeline.claims", "pipeline.narrative", "pipeline.figures",
                             "pipeline.tables", "pipeline.render", "pipeline.display", "perf.analysis")}
    for name in ("data", "baseline", "sensitivity", "faithfulness", "basis", "benchmark"):
        assert not shown & clos[name], (name, sorted(shown & clos[name]))


def test_function_local_imports_count(tmp_path):
    pkg = tmp_path / "basisconv"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n    return g\n")
    (pkg / "b.py").write_text("import basisconv.sub.c\n")
    (pkg / "sub" / "__init__.py").write_text("from .. import d\n")
    (pkg / "sub" / "c.py").write_text("")
    (pkg / "d.py").write_text("")
    (pkg / "e.py").write_text("")
    assert keys.module_closure("basisconv.a", pkg) == (
        "basisconv", "basisconv.a", "basisconv.b", "basisconv.d", "basisconv.sub", "basisconv.sub.c")


def test_stage_paths_by_role():
    assert STAGES["baseline"]["model"] == layout.BASELINE_MODEL
    with pytest.raises(KeyError, match="stage 'baseline' has no path 'modle'; roles: prepared, model"):
        STAGES["baseline"]["modle"]


def test_notebooks_hard_code_no_result_paths():
    """Notebooks take every path from basisconv.pipeline.layout (STAGES[...][role]), none written out."""
    for st in STAGES.values():
        src = "".join("".join(c["source"]) for c in json.loads((ROOT / st.notebook).read_text())["cells"]
                      if c["cell_type"] == "code")
        assert not re.search(r"[\"'](results|models|reports|data)/", src), st.notebook
