"""Pipeline parameters: profiles composed into ``params.yaml``, and strict checking of what a stage reads.

``profiles/paper.yaml`` is the complete parameter tree of the paper's setting (arXiv 2408.06024 experiments) and
the schema: a key it does not have is an error. ``profiles/<name>.yaml`` are overlays (only the keys that differ).
``compose`` deep-merges them the way DVC's Hydra composition would, and ``python -m basisconv.pipeline.params cpu`` writes
the result to ``params.yaml``, which DVC tracks and papermill injects into every notebook. ``resolve`` is the edge
where a notebook's injected sections become checked params (the only place a stage reads the schema).
"""
from __future__ import annotations

import argparse
import copy
from pathlib import Path

import yaml

from basisconv.experiment.io import atomic_write_text

PROFILE_DIR = Path("profiles")
BASE = "paper"


def available_profiles(profile_dir=PROFILE_DIR) -> list[str]:
    return sorted(p.stem for p in Path(profile_dir).glob("*.yaml"))


def _unknown_keys(overlay: dict, base: dict, prefix: str = "") -> list[str]:
    bad = []
    for k, v in overlay.items():
        if k not in base:
            bad.append(prefix + str(k))
        elif isinstance(v, dict) and isinstance(base[k], dict) and base[k]:
            bad += _unknown_keys(v, base[k], f"{prefix}{k}.")
    return bad


def merge(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) and out[k] else v
    return out


def compose(*profiles: str, profile_dir=PROFILE_DIR) -> dict:
    """``paper.yaml`` with the named overlays applied in order; unknown profile or key -> ``ValueError``."""
    profile_dir = Path(profile_dir)
    valid = available_profiles(profile_dir)
    params = yaml.safe_load((profile_dir / f"{BASE}.yaml").read_text())
    for name in profiles:
        if name not in valid:
            raise ValueError(f"unknown profile {name!r}; valid choices: {', '.join(valid)}")
        if name == BASE:
            continue
        overlay = yaml.safe_load((profile_dir / f"{name}.yaml").read_text()) or {}
        bad = _unknown_keys(overlay, params)
        if bad:
            raise ValueError(f"profile {name!r} sets unknown keys {bad}; see profiles/{BASE}.yaml for valid keys")
        params = merge(params, overlay)
    params["profile"] = "+".join(p for p in profiles if p != BASE) or BASE
    return params


def check_section(name: str, given: dict, schema: dict) -> dict:
    """Refuse keys of section ``name`` that ``schema`` (its paper.yaml section) does not define; fill defaults."""
    if not isinstance(given, dict):
        raise ValueError(f"params section {name!r} must be a mapping, got {given!r}")
    bad = _unknown_keys(given, schema)
    if bad:
        raise ValueError(f"unknown key(s) {', '.join(f'{name}.{b}' for b in bad)} in params; valid keys of "
                         f"{name!r}: {', '.join(sorted(schema))}")
    return merge(schema, given)


def resolve(schema_file=None, **sections) -> dict:
    """``{name: checked section}`` for each ``name=given`` (papermill-injected), before any compute: unknown
    sections and keys are refused, missing keys take the paper's value (``profiles/paper.yaml``, the schema)."""
    schema = yaml.safe_load(Path(schema_file or PROFILE_DIR / f"{BASE}.yaml").read_text())
    out = {}
    for name, given in sections.items():
        if name not in schema:
            raise ValueError(f"unknown params section {name!r}; valid sections: {', '.join(schema)}")
        out[name] = check_section(name, given or {}, schema[name]) if isinstance(schema[name], dict) else given
    from basisconv.pipeline.validate import validate
    return validate(out)


def for_notebook(params_file="params.yaml", **sections) -> dict:
    """``resolve`` for a notebook's parameters cell: a section left at ``None`` (nothing injected, e.g. a notebook
    opened in JupyterLab) is read from ``params_file``, so the notebook runs against the current params."""
    if any(v is None for v in sections.values()):
        given = yaml.safe_load(Path(params_file).read_text()) or {}
        sections = {k: (given.get(k) if v is None else v) for k, v in sections.items()}
    return resolve(**sections)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Compose profiles into params.yaml (paper + overlays); "
                                 "`check` validates params.yaml instead.")
    ap.add_argument("profiles", nargs="*", default=[BASE], help=f"e.g. cpu, smoke, cpu mirror; "
                    f"available: {', '.join(available_profiles())}; or `check`")
    ap.add_argument("--out", default="params.yaml")
    args = ap.parse_args(argv)
    if args.profiles == ["check"]:
        try:
            given = yaml.safe_load(Path(args.out).read_text()) or {}
            resolve(**given)
        except ValueError as e:
            raise SystemExit(f"{args.out}: {e}")
        print(f"{args.out}: valid")
        return
    try:
        params = compose(*args.profiles)
    except ValueError as e:
        ap.error(str(e))
    from basisconv.pipeline.validate import validate
    try:
        validate(params)
    except ValueError as e:
        ap.error(str(e))
    header = (f"# Generated by `python -m basisconv.pipeline.params {' '.join(args.profiles)}` from profiles/*.yaml.\n"
              "# Edit freely for ablations; `make repro PROFILE=...` regenerates it.\n")
    atomic_write_text(Path(args.out), header + yaml.safe_dump(params, sort_keys=False))
    print(f"wrote {args.out} (profile {params['profile']})")


if __name__ == "__main__":
    main()
