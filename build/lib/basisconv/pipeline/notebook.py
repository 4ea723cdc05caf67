"""Run one pipeline stage's notebook with papermill, quietly: the command of every stage in ``dvc.yaml``.

    python -m basisconv.pipeline.notebook <stage>        # e.g. baseline

Only the params sections the stage reads (``basisconv.pipeline.layout``) are injected, so papermill has nothing to warn
about; the kernel's own start-up warnings are silenced; what the stage prints (its plan, progress bars with ETA,
results) streams to the console as it runs, and the executed copy goes to ``reports/notebooks/``. A stage that fails
prints one line, ``stage <name> failed: <error>``, and where the executed notebook with the full traceback is,
instead of a screen of traceback; the exit status is 1.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from basisconv.pipeline.layout import PARAMS_FILE, STAGES


def parameters(stage: str, params_file: str = PARAMS_FILE) -> dict:
    """The sections of ``params_file`` that ``stage`` reads (missing ones are left to the schema's defaults)."""
    given = yaml.safe_load(Path(params_file).read_text()) or {}
    return {k: given[k] for k in STAGES[stage].params if k in given}


# stderr lines of the kernel that say nothing about the stage (library start-up chatter on a machine without GPU)
NOISE = (re.compile(r"^W\d{4} .*\] No CUDA runtime is found"), re.compile(r"^\s*warnings\.warn\("),
         re.compile(r"\w+Warning: "), re.compile(r"^\s+from \.autonotebook import"))


class _Quiet:
    """A stream that drops ``NOISE`` lines and passes everything else through."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        keep = [line for line in text.splitlines(keepends=True) if not any(n.search(line) for n in NOISE)]
        self.stream.write("".join(keep))

    def flush(self) -> None:
        self.stream.flush()


def run(stage: str, params_file: str = PARAMS_FILE, progress: bool = False) -> Path:
    import logging
    import warnings

    import papermill as pm
    warnings.filterwarnings("ignore")  # papermill/nbclient deprecation noise, not the stage's
    logging.getLogger("papermill").setLevel(logging.WARNING)
    st = STAGES[stage]
    Path(st.executed).parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(st.notebook, st.executed, parameters=parameters(stage, params_file), kernel_name="python3",
                            progress_bar=progress, log_output=False, stdout_file=sys.stdout,
                            stderr_file=_Quiet(sys.stderr),
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])  # no "running over TCP" warning
    finally:
        if Path(st.executed).is_file():
            render_html(st.executed, st.html)  # readable without Jupyter, the failed cell included
    return Path(st.executed)


def render_html(executed, html) -> Path:
    """The executed notebook as a standalone HTML page (``reports/notebooks/<name>.html``)."""
    from nbconvert import HTMLExporter

    from basisconv.experiment.io import atomic_write_text
    # the "basic" template: the notebook's content without nbconvert's embedded stylesheet (thousands of identical
    # lines in every page), so the published pages stay small and readable
    body, _ = HTMLExporter(template_name="basic").from_filename(str(executed))
    return atomic_write_text(html, body)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=list(STAGES))
    ap.add_argument("--params", default=PARAMS_FILE)
    ap.add_argument("--progress", action="store_true", help="papermill's per-cell progress bar")
    args = ap.parse_args(argv)
    from papermill.exceptions import PapermillExecutionError
    try:
        out = run(args.stage, args.params, args.progress)
    except PapermillExecutionError as e:
        msg = str(e.evalue).strip().splitlines()
        print(f"stage {args.stage} failed: {e.ename}: {msg[0] if msg else ''}"
              + "".join(f"\n  {line}" for line in msg[1:8])
              + f"\n  (full traceback in {STAGES[args.stage].executed})", file=sys.stderr)
        raise SystemExit(1)
    print(f"stage {args.stage}: executed {out}")


if __name__ == "__main__":
    main()
