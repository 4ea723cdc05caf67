"""Content-addressed keys: a result follows its inputs (pipeline of the arXiv 2408.06024 replication).

Everything the pipeline reuses (a run's JSON and checkpoint, the sweep's and the faithfulness checks' resume rows)
is stored under a key that hashes

    key = sha256( resolved params the stage reads,
                  content digest of every input file (sha256 of the bytes; folders: of every file in them),
                  computation of every ``basisconv`` module the stage imports, transitively )

so editing a param, retraining the baseline or changing the code gives a new key, and an artefact of another key is
never returned. A module's computation is its syntax tree without docstrings and comments (``computation``): words
never enter a key. Display data (labels, colours, figure paths) lives in modules no computation imports
(``basisconv.pipeline.display``, ``basisconv.pipeline.layout``'s figure table). The module closure is read from the import graph (``ast``, function-local imports included), the
same graph from which ``dvc.yaml``'s code dependencies are generated, so DVC re-runs a stage exactly when its key
can have changed.
"""
from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path

PACKAGE = "basisconv"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/basisconv


def digest(*parts, n: int = 16) -> str:
    """Short sha256 of JSON-serialisable ``parts`` (dict keys sorted, so order of params does not matter)."""
    blob = json.dumps(list(parts), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def _file_sha(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while buf := f.read(chunk):
            h.update(buf)
    return h.hexdigest()


def content_digest(path) -> str:
    """sha256 of a file's bytes; of a folder, of every (relative path, file digest), hidden files skipped.

    Refuses a missing input: a key computed without it would silently mean "any content".
    """
    path = Path(path)
    if path.is_file():
        return _file_sha(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        return digest([(str(p.relative_to(path)), _file_sha(p)) for p in files], n=64)
    raise FileNotFoundError(f"input {path} does not exist; run the stage that writes it first")


def _root(root) -> Path:
    """The package source folder (``PACKAGE_DIR`` unless a test points at a modified copy)."""
    return Path(root) if root is not None else PACKAGE_DIR


def module_file(module: str, root=None) -> Path:
    """Source file of ``basisconv.x.y`` (a package is its ``__init__.py``)."""
    root = _root(root)
    rel = module.split(".")[1:]
    base = root.joinpath(*rel)
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _imports(module: str, root: Path) -> set[str]:
    """``basisconv`` modules that ``module`` imports anywhere in its source (function-local imports included)."""
    path = module_file(module, root)
    is_pkg = path.name == "__init__.py"
    here = module if is_pkg else module.rpartition(".")[0]  # the package relative imports start from
    return _source_imports(path.read_text(), str(path), here, root)


def _source_imports(source: str, filename: str, here: str, root: Path) -> set[str]:
    """``basisconv`` modules that Python ``source`` imports anywhere; ``here``: the package its relative imports
    start from."""
    out = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != PACKAGE:
                continue
            out.add(mod)
            for a in node.names:  # `from . import x` names a submodule when such a file exists
                sub = f"{mod}.{a.name}"
                if module_file(sub, root).is_file():
                    out.add(sub)
    return {m for m in out if module_file(m, root).is_file()}


def _with_parents(module: str) -> set[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def module_closure(module: str, root=None) -> tuple[str, ...]:
    """Every ``basisconv`` module that importing ``module`` (and calling its functions) can load, sorted."""
    return _closure(module, _root(root))


@lru_cache(maxsize=None)
def _closure(module: str, root: Path) -> tuple[str, ...]:
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        for p in _with_parents(m):
            if p not in seen:
                seen.add(p)
                todo += sorted(_imports(p, root))
    return tuple(sorted(seen))


def closure_files(module: str, root=None) -> list[Path]:
    return [module_file(m, root) for m in module_closure(module, root)]


def notebook_imports(notebook, root=None) -> set[str]:
    """``basisconv`` modules a notebook's code cells import (its figures, its discussion): ``dvc repro`` re-runs the
    notebook when one of them changes, though the stage's results are keyed by the stage module's code alone."""
    import json
    root, out = _root(root), set()
    for cell in json.loads(Path(notebook).read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        # IPython magics and shell lines are not Python; a notebook has no package for relative imports
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                         for line in "".join(cell["source"]).splitlines())
        out |= _source_imports(code, str(notebook), PACKAGE, root)
    return out


def stage_code_files(module: str, notebook, root=None) -> list[Path]:
    """What a stage's DVC deps list as code: the closure of its stage module and of every module its notebook
    imports, in the order of the sorted module names."""
    mods = set(module_closure(module, root))
    for m in notebook_imports(notebook, root):
        mods |= set(module_closure(m, root))
    return [module_file(m, root) for m in sorted(mods)]


def computation(source: str, filename: str = "<source>") -> str:
    """What of a module's ``source`` can change a result: its syntax tree without docstrings (module, class and
    function docstrings), comments or layout, as ``ast.dump`` prints it. Rewording a docstring or a comment, or
    rewrapping a line, leaves it (and every key over it) unchanged; any change of code changes it."""
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


# modules in a stage's closure that compute nothing: the layout declares where files live, and a result does not
# depend on where its inputs or outputs are (inputs enter a key by their content), so adding a result path for one
# stage changes no other stage's key
NOT_COMPUTATION = ("basisconv.pipeline.layout",)


def code_digest(module: str, root=None) -> str:
    """sha256 over the computation (``computation``: code without docstrings and comments) of every module in
    ``module``'s closure (its own code and all it uses), ``NOT_COMPUTATION`` left out."""
    return digest([(m, computation(module_file(m, root).read_text(), str(module_file(m, root))))
                   for m in module_closure(module, root) if m not in NOT_COMPUTATION], n=64)


def stage_inputs(P: dict, sections, input_files, module: str, root=None) -> dict:
    """The three parts of a stage's key, kept readable: ``{"params", "inputs", "code"}``."""
    return {"params": {s: P[s] for s in sections if s in P},
            "inputs": {str(f): content_digest(f) for f in input_files},
            "code": code_digest(module, root)}


def key_of(inputs: dict, *extra) -> str:
    """The key of an artefact computed from ``stage_inputs(...)`` (and anything else that determines it)."""
    return digest(inputs, *extra)
