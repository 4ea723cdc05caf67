"""The package's layers import only downwards, and the core needs torch and numpy only.

core (0) <- experiment (1) <- perf (2) <- pipeline (3): a module may import its own layer and the ones below it,
never one above (function-local imports included, read from the source with ``ast``). The core's third-party
imports are torch and numpy (an import inside ``try: ... except ImportError`` is optional and allowed). A
subprocess runs the public API end to end and checks that no other third-party package was loaded.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "basisconv"
LAYERS = ("core", "experiment", "perf", "pipeline")
CORE_THIRD_PARTY = {"torch", "numpy"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _optional_imports(tree: ast.AST) -> set[int]:
    """ids of import nodes inside a ``try`` whose handlers catch ImportError (or ModuleNotFoundError)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return out


def _imports(path: Path):
    """(imported module, optional) for every import of ``path``, relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    optional = _optional_imports(tree)
    module = _module(path)
    here = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, id(node) in optional
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                yield ".".join(base + ([node.module] if node.module else [])), id(node) in optional
            else:
                yield node.module, id(node) in optional


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[0] == "basisconv" and parts[1] in LAYERS else None


FILES = sorted(p for p in PKG.rglob("*.py"))


def test_every_module_lives_in_a_layer():
    loose = [str(p.relative_to(PKG)) for p in FILES if p != PKG / "__init__.py" and _layer(_module(p)) is None]
    assert not loose, f"modules outside core/experiment/perf/pipeline: {loose}"


@pytest.mark.parametrize("path", [p for p in FILES if p != PKG / "__init__.py"], ids=lambda p: str(p.relative_to(PKG)))
def test_imports_only_downwards(path):
    own = _layer(_module(path))
    bad = []
    for mod, _ in _imports(path):
        if mod == "basisconv":
            bad.append("basisconv (the top-level names: import from the layer that defines them)")
        elif (target := _layer(mod)) is not None and target > own:
            bad.append(f"{mod} ({LAYERS[target]} is above {LAYERS[own]})")
    assert not bad, f"{path.relative_to(PKG)} imports upwards: {bad}"


@pytest.mark.parametrize("path", [p for p in FILES if _layer(_module(p)) == 0 or p == PKG / "__init__.py"],
                         ids=lambda p: str(p.relative_to(PKG)))
def test_core_needs_torch_and_numpy_only(path):
    extra = sorted({mod.split(".")[0] for mod, optional in _imports(path) if not optional}
                   - CORE_THIRD_PARTY - {"basisconv"} - set(sys.stdlib_module_names))
    assert not extra, f"{path.relative_to(PKG)} needs {extra} beyond torch and numpy"


def test_top_level_names_come_from_the_core():
    import importlib

    import basisconv
    for name in basisconv.__all__:
        home = importlib.import_module(f"basisconv.core.{basisconv._API[name]}")
        assert getattr(basisconv, name) is getattr(home, name), name
    with pytest.raises(AttributeError, match="public names: BasisConv2d"):
        basisconv.no_such_name


# not tqdm: torch itself loads it where it is installed
BLOCKED = ["torchvision", "pandas", "yaml", "dvc", "papermill", "matplotlib", "seaborn", "tensorly",
           "tltorch", "onnx", "onnxruntime", "timm", "IPython"]

# the public API end to end on a small model no one here wrote; afterwards none of BLOCKED may have been loaded
CORE_ONLY = f"""
import sys
import torch, torch.nn as nn
import basisconv as bc
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                    nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))
x, y = torch.randn(40, 3, 12, 12), torch.randint(0, 5, (40,))
batches = [(x[i:i + 10], y[i:i + 10]) for i in range(0, 40, 10)]
evaluate = lambda m: m(x).argmax(1) == y
rows = bc.layer_sensitivity(net, ["3"], [0.5], ["zero_shot", "finetune"], batches, evaluate, (1, 3, 12, 12),
                            bc.ProxyConfig(bn_batches=2, finetune_steps=2), progress=False)
sel = bc.select_layers(rows, proxy="zero_shot", max_loss=100.0)
small = bc.convert(net, sel)
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
net, opt = bc.switch(net, opt, ["3"], ratio=0.5)
folded = bc.fold(small)
assert sel.layers == ["3"] and bc.count_params(small) < bc.count_params(net) + 1
assert torch.allclose(folded.eval()(x), small.eval()(x), atol=1e-4)
blocked = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})
print("core ok", len(rows), blocked)
"""


@pytest.mark.timeout(200)
def test_core_runs_with_torch_and_numpy_only():
    res = subprocess.run([sys.executable, "-c", CORE_ONLY], capture_output=True, text=True, timeout=180,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "core ok 2 []" in res.stdout


def test_editing_the_layer_does_not_rerun_data_preparation():
    """The data stage's code closure (its DVC deps) leaves out the basis layer; the training stages include it."""
    from basisconv.pipeline.keys import module_closure
    assert "basisconv.core.basis" not in module_closure("basisconv.pipeline.stages.data")
    assert "basisconv.experiment.train" not in module_closure("basisconv.pipeline.stages.data")
    for stage in ("baseline", "sensitivity", "basis", "benchmark"):
        assert "basisconv.core.basis" in module_closure(f"basisconv.pipeline.stages.{stage}")
