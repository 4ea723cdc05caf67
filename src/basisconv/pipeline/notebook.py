"""Run one pipeline stage's notebook with papermill, quietly: the command of every stage in ``dvc.yaml``.

    python -m basisconv.pipeline.notebook <stage>        # e.g. baseline

Only the params sections the stage reads (``basisconv.pipeline.layout``) are injected, so papermill has nothing to warn
about. What the stage prints (its plan, results) streams to the console as it runs; its progress bars (with ETA) go
to the console only: the kernel is started with ipykernel's fd capture off, so the process's real stderr, where
``basisconv.core.progress`` draws, is the console the kernel inherited and not the cell's output. The executed copy
goes to ``reports/notebooks/``, cleaned of start-up noise (``NOISE``) and of any progress bar a library drew into a
cell anyway (``clean_outputs``), and is rendered to a standalone HTML page beside it (``render_html``: doctype,
charset, title, a compact stylesheet and MathJax for the ``$...$`` and ``$$...$$`` of the markdown cells).
A stage that fails prints one line, ``stage <name> failed: <error>``, and where the executed notebook with the full
traceback is, instead of a screen of traceback; the exit status is 1.
"""
from __future__ import annotations

import argparse
import html as html_
import re
import sys
from pathlib import Path

import yaml

from basisconv.pipeline.layout import PARAMS_FILE, STAGES

# MathJax 2 (the version whose configuration nbconvert's ``mathjax`` macro writes), pinned, from the CDN nbconvert
# uses by default: the reader's browser fetches it when the published page is opened. ``render_html(mathjax_url=)``
# points a page elsewhere (a local copy for an offline check).
MATHJAX_URL = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js?config=TeX-AMS_CHTML-full,Safe"


def parameters(stage: str, params_file: str = PARAMS_FILE) -> dict:
    """The sections of ``params_file`` that ``stage`` reads (missing ones are left to the schema's defaults)."""
    given = yaml.safe_load(Path(params_file).read_text()) or {}
    return {k: given[k] for k in STAGES[stage].params if k in given}


# Lines of a cell's stderr that say nothing about the stage, each with whether the line after it belongs to it
# (a Python warning is two lines: "file:line: XWarning: message", then the indented source line that warned).
# Silenced at the source where possible (basisconv.pipeline.notebook_env.quiet_startup, basisconv.core.progress);
# these catch them in notebooks that do not call the setup. Real warnings are kept: they are part of the record.
NOISE = (
    # torch.utils.cpp_extension on import where nvcc is on PATH but no GPU is visible (glog-style torch log line)
    (re.compile(r"\] No CUDA runtime is found, using CUDA_HOME="), False),
    # tqdm.auto in a kernel without ipywidgets
    (re.compile(r"TqdmWarning: IProgress not found"), True),
)

# A tqdm text bar as a terminal shows it after its last "\r": "desc: 62%|██▎ | 10/16 [00:31<00:19, 3.19s/it]" (known
# total) or "desc: 123it [00:01, 50.0it/s]" (unknown total); with or without a desc.
PROGRESS_LINE = re.compile(r"^(?:.*: )?(?:\s*\d+%\|.*\|\s*\S+/\S+|\s*[\d.]+[kMGT]?\w* )\s*\[[\d:?]+(?:<[\d:?]+)?,")


def _lines(text: str) -> list[str]:
    """``text`` split after each "\\n" only (``str.splitlines`` would also split at the "\\r" of a bar)."""
    return re.findall(r"[^\n]*\n|[^\n]+", text)


def _drop_noise(lines: list[str]) -> list[str]:
    """``lines`` without the ``NOISE`` lines (and the source line of a noise warning)."""
    keep, skip_next = [], False
    for line in lines:
        if skip_next and line[:1].isspace():
            skip_next = False
            continue
        skip_next = False
        hit = next((cont for pat, cont in NOISE if pat.search(line)), None)
        if hit is None:
            keep.append(line)
        else:
            skip_next = hit
    return keep


def clean_stream(text: str) -> str:
    """A cell's stream text as a reader should see it: no ``NOISE`` lines and no progress bars.

    A line rewritten with ``\\r`` (a live display) is reduced to what a terminal shows after its last ``\\r``; it is
    dropped when that is blank (a bar that erased itself) or a progress bar, and kept otherwise (the output printed
    after a bar that erased itself lands on the bar's line).
    """
    out = []
    for line in _drop_noise(_lines(text.replace("\r\n", "\n"))):
        if "\r" in line:
            end = "\n" if line.endswith("\n") else ""
            shown = line.rstrip("\n").rsplit("\r", 1)[-1]
            if not shown.strip() or PROGRESS_LINE.search(shown):
                continue
            line = shown + end
        out.append(line)
    return "".join(out)


def clean_outputs(nb) -> int:
    """Clean the stream outputs of every code cell of the notebook ``nb`` (an nbformat node, in place): consecutive
    outputs of one stream are merged (the kernel sends a stream in flush-sized pieces, so a line can span several),
    cleaned with ``clean_stream``, and dropped when nothing is left. Returns how many outputs were removed."""
    removed = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.get("outputs"):
            continue
        merged = []
        for o in cell.outputs:
            if o.output_type == "stream" and merged and merged[-1].output_type == "stream" \
                    and merged[-1].name == o.name:
                merged[-1].text += o.text
                removed += 1
            else:
                merged.append(o)
        kept = []
        for o in merged:
            if o.output_type == "stream":
                o.text = clean_stream(o.text)
                if not o.text:
                    removed += 1
                    continue
            kept.append(o)
        cell.outputs = kept
    return removed


class _Quiet:
    """The console stream of the cells' stderr: drops ``NOISE`` lines and passes everything else through."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        self.stream.write("".join(_drop_noise(_lines(text))))

    def flush(self) -> None:
        self.stream.flush()


# ipykernel options of the stage kernels: no "running over TCP" warning, and fd capture off, so what is written to
# the process's stderr (the progress bars) reaches the inherited console instead of the cell's stored output
KERNEL_ARGS = ("--IPKernelApp.log_level=ERROR", "--IPKernelApp.capture_fd_output=False")


def run(stage: str, params_file: str = PARAMS_FILE, progress: bool = False) -> Path:
    """Execute ``stage``'s notebook into ``reports/notebooks/``, clean its outputs and render its HTML page (the
    failed cell included when it fails). ``progress``: papermill's per-cell bar."""
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
                            stderr_file=_Quiet(sys.stderr), extra_arguments=list(KERNEL_ARGS))
    finally:
        if Path(st.executed).is_file():
            finish(st.executed, st.html)
    return Path(st.executed)


def finish(executed, html) -> Path:
    """Clean the executed notebook's outputs in place (``clean_outputs``), then render it to ``html``."""
    import nbformat

    from basisconv.experiment.io import atomic_write_text
    nb = nbformat.read(str(executed), as_version=4)
    if clean_outputs(nb):
        atomic_write_text(executed, nbformat.writes(nb) + "\n")
    return render_html(executed, html)


# The page's stylesheet: enough for code cells, outputs, tables and figures to read well, instead of nbconvert's
# notebook CSS (about 250 kB per page). The markup is that of nbconvert's "classic" templates.
CSS = """
body { margin: 0; background: #fff; color: #1f2328; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5em 2em 4em; }
.prompt { display: none; }
.cell { margin: 0.9em 0; }
.rendered_html h1, .rendered_html h2, .rendered_html h3 { line-height: 1.25; margin: 1.3em 0 0.5em; }
.rendered_html h1 { font-size: 1.8em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; }
.rendered_html h2 { font-size: 1.4em; border-bottom: 1px solid #eaeef2; padding-bottom: 0.15em; }
.anchor-link { visibility: hidden; margin-left: 0.3em; text-decoration: none; }
h1:hover .anchor-link, h2:hover .anchor-link, h3:hover .anchor-link { visibility: visible; }
pre, code { font: 13px/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
.rendered_html code { background: #f3f4f6; padding: 0.1em 0.3em; border-radius: 4px; }
.input_area { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; }
.input_area pre { margin: 0; padding: 0.6em 0.8em; overflow-x: auto; }
.output_area pre { margin: 0.3em 0; padding: 0.2em 0.8em; white-space: pre-wrap; word-break: break-word; }
.output_stderr pre { background: #fff5f5; border-left: 3px solid #e5534b; }
.output_error pre { background: #fff0f0; border-left: 3px solid #cf222e; }
.output_subarea { overflow-x: auto; }
img, svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: right; }
th { background: #f6f8fa; }
tbody tr:nth-child(even) { background: #fafbfc; }
.rendered_html td, .rendered_html th { text-align: left; }
.MathJax_Display { overflow-x: auto; overflow-y: hidden; }
"""

# An nbconvert template (found through a jinja DictLoader): the "classic" markup of the cells with a small head.
TEMPLATE_NAME = "basisconv_page.html.j2"
TEMPLATE = """{%- extends 'classic/base.html.j2' -%}
{% from 'mathjax.html.j2' import mathjax %}
{%- block header -%}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ resources.page_title | e }}</title>
<style>
{{ resources.page_css }}
{% for css in resources.inlining.css -%}
{{ css }}
{% endfor -%}
</style>
{{ mathjax(resources.mathjax_url) }}
</head>
{%- endblock header -%}
{% block body_header %}
<body>
<main>
{% endblock body_header %}
{% block body_footer %}
</main>
</body>
{% endblock body_footer %}
{% block footer %}
{{ super() }}
</html>
{% endblock footer %}
"""


def page_title(nb, fallback: str) -> str:
    """The text of the notebook's first markdown heading (e.g. "Stage 2 — baseline"), else ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if m := re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line):
                    return html_.unescape(re.sub(r"[`*_]", "", m.group(1)))
    return fallback


def render_html(executed, html, mathjax_url: str = MATHJAX_URL) -> Path:
    """The executed notebook as a standalone HTML page (``reports/notebooks/<name>.html``): doctype, charset, the
    notebook's first heading as title, ``CSS`` and pygments' code colours inline, and MathJax from ``mathjax_url``
    typesetting ``$...$`` and ``$$...$$`` (nbconvert's MathJax 2 configuration)."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    from basisconv.experiment.io import atomic_write_text
    nb = nbformat.read(str(executed), as_version=4)
    # template_name "classic" for its configuration (pygments' CSS for the code cells, in resources.inlining.css);
    # the page itself is TEMPLATE, which skips classic's 250 kB stylesheet and its jQuery/require.js/mermaid scripts
    exporter = HTMLExporter(template_name="classic", template_file=TEMPLATE_NAME, mathjax_url=mathjax_url,
                            extra_loaders=[jinja2.DictLoader({TEMPLATE_NAME: TEMPLATE})])
    resources = {"page_title": page_title(nb, Path(executed).stem), "page_css": CSS.strip(),
                 "metadata": {"name": Path(executed).stem}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
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
