import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {_name(r) for r in project["dependencies"]} | {_name(r) for reqs in extras.values() for r in reqs
                                                             if _name(r) != "basisconv"}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_name(p) for p in pip if not p.startswith("-e")}
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    assert "-e .[dev]" in pip
    assert "pip" in env["dependencies"]


def test_extras_nest_so_dev_installs_everything():
    """``.[dev]`` (what make test and make repro install) pulls every other extra, through ``repro``."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "basisconv[repro]" in extras["dev"]
    assert "basisconv[experiment,peers,onnx]" in extras["repro"]
    assert set(extras) == {"experiment", "peers", "onnx", "repro", "dev"}
