"""The published notebook pages and the executed notebooks' outputs (basisconv.pipeline.notebook).

A page is standalone HTML (doctype, charset, title, a compact stylesheet, MathJax for the markdown's equations);
the stored outputs hold neither start-up noise nor progress bars, while real output and real warnings stay; bars go
to the process's real stderr (the console), and a stage kernel started with ``KERNEL_ARGS`` keeps them out of the
notebook (one test starts a kernel for that).
"""
import io
import logging
import sys
from pathlib import Path

import nbformat
import pytest

from basisconv.core import progress as progress_mod
from basisconv.pipeline import notebook as nbrun
from basisconv.pipeline.notebook_env import STARTUP_NOISE, quiet_startup

ROOT = Path(__file__).resolve().parents[1]

CUDA_LINE = ("W1203 13:37:24.424000 5554 torch/utils/cpp_extension.py:183] No CUDA runtime is found, "
             "using CUDA_HOME='/usr/local'\n")
TQDM_WARNING = ("/x/.venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please "
                "update jupyter and ipywidgets.\n  from .autonotebook import tqdm as notebook_tqdm\n")


def _small_notebook(path: Path, stderr_pieces=()) -> Path:
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("print('hello')")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello 42\n")]
    code.outputs += [nbformat.v4.new_output("stream", name="stderr", text=t) for t in stderr_pieces]
    nb.cells = [nbformat.v4.new_markdown_cell("# Stage 9 — a `small` test\n\nInline $x_1$ and\n\n$$a = b$$\n"), code]
    nbformat.write(nb, str(path))
    return path


@pytest.mark.timeout(120)
def test_page_is_standalone_with_title_css_and_mathjax(tmp_path):
    page = nbrun.render_html(_small_notebook(tmp_path / "09_small.ipynb"), tmp_path / "09_small.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html>")
    head = page.split("</head>")[0]
    assert '<meta charset="utf-8"' in head
    assert "<title>Stage 9 — a small test</title>" in head  # the first heading, markdown marks removed
    assert f'<script src="{nbrun.MATHJAX_URL}">' in head.replace("&amp;", "&")
    assert "MathJax.Hub.Config" in head and "inlineMath" in head  # $...$ typeset too, not only $$...$$
    assert "<style>" in head and ".input_area" in head and ".highlight" in head  # ours and pygments' code colours
    assert "$$a = b$$" in page and "$x_1$" in page  # the TeX reaches the page for MathJax
    assert "hello 42" in page
    assert page.rstrip().endswith("</html>")
    # nbconvert's notebook stylesheet (about 250 kB) and its script tags stay out
    assert len(page.encode()) < 30_000, len(page.encode())
    assert "require.js" not in page and "jquery" not in page.lower()


@pytest.mark.timeout(120)
def test_mathjax_url_can_point_to_a_local_copy(tmp_path):
    url = "file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS_CHTML"
    page = nbrun.render_html(_small_notebook(tmp_path / "n.ipynb"), tmp_path / "n.html", mathjax_url=url).read_text()
    assert f'<script src="{url}">' in page.replace("&amp;", "&")
    assert nbrun.MATHJAX_URL not in page.replace("&amp;", "&")


@pytest.mark.timeout(30)
def test_clean_stream_drops_noise_and_bars_and_keeps_the_rest():
    text = (CUDA_LINE + TQDM_WARNING
            + "\repoch 1/2:   0%|          | 0/10 [00:00<?, ?it/s]"
              "\repoch 1/2:  50%|█████     | 5/10 [00:03<00:03,  1.6it/s]\r                                   \r"
            + "real result line\n"
            + "\rsensitivity: 100%|██████████| 16/16 [01:13<00:00,  4.61s/it]\n"
            + "\rcopy x.tar.gz: 170MB [00:01, 120MB/s]\n"
            + "/x/train.py:3: UserWarning: the learning rate is negative\n  warnings.warn(msg)\n"
            + "\rstatus 1\rstatus 2\n")
    out = nbrun.clean_stream(text)
    assert out == ("real result line\n"
                   "/x/train.py:3: UserWarning: the learning rate is negative\n  warnings.warn(msg)\n"
                   "status 2\n")
    assert nbrun.clean_stream("plain\nlines\n") == "plain\nlines\n"


@pytest.mark.timeout(60)
def test_clean_outputs_merges_pieces_and_drops_empty_streams(tmp_path):
    # a bar and the noise as the kernel sends them: in flush-sized pieces, a line spanning several outputs
    pieces = [CUDA_LINE, "\repoch 1/2:   0%|          | 0/10 [00:00<?, ?it/s]", "\r                 ", "\r",
              "\repoch 2/2: 100%|██████████| 10/10 [00:30<00:00,  3.10s/it]", "\n"]
    nb = nbformat.read(str(_small_notebook(tmp_path / "n.ipynb", pieces)), as_version=4)
    assert nbrun.clean_outputs(nb) == len(pieces)
    outs = nb.cells[1].outputs
    assert [(o.name, o.text) for o in outs] == [("stdout", "hello 42\n")]
    nb2 = nbformat.read(str(_small_notebook(tmp_path / "m.ipynb", ["a ", "real warning\n"])), as_version=4)
    nbrun.clean_outputs(nb2)
    assert [(o.name, o.text) for o in nb2.cells[1].outputs] == [("stdout", "hello 42\n"),
                                                                 ("stderr", "a real warning\n")]


@pytest.mark.timeout(60)
def test_finish_cleans_the_notebook_and_renders_it(tmp_path):
    ipynb = _small_notebook(tmp_path / "n.ipynb", [CUDA_LINE, TQDM_WARNING])
    html = nbrun.finish(ipynb, tmp_path / "n.html")
    stored = nbformat.read(str(ipynb), as_version=4)
    assert [o.name for o in stored.cells[1].outputs] == ["stdout"]
    page = html.read_text()
    assert "CUDA_HOME" not in page and "IProgress" not in page and "hello 42" in page


@pytest.mark.timeout(30)
def test_console_stream_filters_noise_only():
    sink = io.StringIO()
    q = nbrun._Quiet(sink)
    q.write(CUDA_LINE + "kept line\n")
    q.write(TQDM_WARNING)
    q.write("RuntimeWarning: overflow\n")
    assert sink.getvalue() == "kept line\nRuntimeWarning: overflow\n"


@pytest.mark.timeout(30)
def test_bar_draws_on_the_real_stderr_not_on_sys_stderr(monkeypatch):
    real, cell = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", real)
    monkeypatch.setattr(sys, "stderr", cell)  # in a kernel: the cell's captured output
    assert list(progress_mod.bar(range(5), progress={"mininterval": 0}, desc="jobs")) == list(range(5))
    assert "jobs: 100%" in real.getvalue() and "5/5" in real.getvalue()
    assert cell.getvalue() == ""
    with progress_mod.bar(total=10, progress=True, desc="copy") as b:
        b.update(10)
    assert "copy: 100%" in real.getvalue()


@pytest.mark.timeout(30)
def test_bar_off_or_disabled_is_silent_and_bad_progress_fails(monkeypatch):
    real = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", real)
    assert list(progress_mod.bar([1, 2], progress=False)) == [1, 2]
    assert list(progress_mod.bar([1, 2], progress=True, disable=True)) == [1, 2]
    with progress_mod.bar(total=3, progress=False) as b:
        b.update(3)
    assert real.getvalue() == ""
    with pytest.raises(TypeError, match="True, False or a dict"):
        progress_mod.bar([1], progress="yes")


@pytest.mark.timeout(30)
def test_quiet_startup_drops_only_the_cuda_home_record():
    name, prefix = STARTUP_NOISE[0]
    logger = logging.getLogger(name)
    before = list(logger.filters)
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    h = Keep()
    logger.addHandler(h)
    try:
        quiet_startup()
        quiet_startup()  # idempotent: one filter
        assert len(logger.filters) == len(before) + 1
        logger.warning("%s, using CUDA_HOME='%s'", prefix, "/usr/local")
        logger.warning("Error checking compiler version for c++")
        assert records == ["Error checking compiler version for c++"]
    finally:
        logger.removeHandler(h)
        logger.filters[:] = before


@pytest.mark.timeout(240)
def test_stage_kernel_keeps_bars_out_of_the_notebook(tmp_path, capfd, monkeypatch):
    """A real kernel started like a stage's: the bar reaches the inherited stderr, the notebook stores no trace."""
    papermill = pytest.importorskip("papermill")
    # ipykernel never captures fds under pytest (it looks for this variable); the stage kernels run outside pytest
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'src')!r})\n"
        "from basisconv.core.progress import bar\n"
        "for _ in bar(range(3), progress={'mininterval': 0}, desc='kernel-bar'):\n    pass\n"
        "print('cell output')")]
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, str(src))
    papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False, log_output=False,
                               extra_arguments=list(nbrun.KERNEL_ARGS))
    outputs = nbformat.read(str(out), as_version=4).cells[0].outputs
    assert [(o.output_type, o.get("name"), o.get("text")) for o in outputs] == [("stream", "stdout", "cell output\n")]
    assert "kernel-bar: 100%" in capfd.readouterr().err
