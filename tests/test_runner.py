"""gfm.core.runner: a stage notebook runs with its parameters, one line per code cell, on an IPC kernel."""
import io
import json

import nbformat

from gfm.core.runner import run_notebook


def test_runs_a_parameterised_notebook_and_reports_each_cell(tmp_path, capfd):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    params = nbformat.v4.new_code_cell('who = "nobody"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_markdown_cell("# text"), nbformat.v4.new_code_cell("print('hello', who)"),
                nbformat.v4.new_code_cell("import json\nfrom ipykernel.connect import get_connection_info\n"
                                          "print(json.loads(get_connection_info())['transport'])")]
    source = tmp_path / "stage.ipynb"
    nbformat.write(nb, source)
    stream = io.StringIO()
    out = run_notebook(source, tmp_path / "out" / "stage.ipynb", {"who": "gfm"}, stream=stream,
                       run_details=tmp_path / "run")
    executed = json.loads(out.read_text())
    printed = ["".join(o.get("text", "")) for c in executed["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert "hello gfm\n" in printed and "ipc\n" in printed
    lines = stream.getvalue().splitlines()
    assert [line.split()[2] for line in lines if " cell " in line] == ["1/4", "2/4", "3/4", "4/4"], lines
    assert lines[-1].startswith("[stage]") and lines[-1].endswith("in all")
    assert "TCP" not in stream.getvalue() + "".join(capfd.readouterr())
    details = json.loads((tmp_path / "run" / "stage.json").read_text())
    assert details["parameters"] == {"who": "gfm"} and details["wall_s"] > 0
    assert {"commit", "cpu", "cpu_flags", "native_bf16", "torch", "python"} <= set(details)


def test_a_failing_notebook_keeps_the_previous_copy(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    source = tmp_path / "bad.ipynb"
    nbformat.write(nb, source)
    output = tmp_path / "out" / "bad.ipynb"
    output.parent.mkdir()
    output.write_text("previous good copy")
    import pytest

    with pytest.raises(Exception, match="boom"):
        run_notebook(source, output, stream=io.StringIO())
    assert output.read_text() == "previous good copy"
    assert "boom" in (tmp_path / "out" / "bad.failed.ipynb").read_text()
    assert [p.name for p in output.parent.iterdir()] and not [p for p in output.parent.iterdir() if p.name.startswith(".")]
