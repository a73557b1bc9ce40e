"""The Colab quickstart runs headless on the built-in sample (the Drive and install steps skip themselves
outside Colab) and shows its figures; it is stored without outputs."""

import re

import nbformat
import pytest
from conftest import REPO

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"

pytestmark = pytest.mark.slow  # a couple of minutes: prepare, two short trainings, evaluate, export


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    assert code[0].source.startswith('AFFECTNET_ROOT = ""')  # the parameters come first; empty: the sample


def test_the_notebook_runs_on_the_sample_and_shows_its_figures(tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises on a failing cell
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    figures = [
        o
        for o in outputs
        if o.get("output_type") == "display_data" and any(kind.startswith("image/") for kind in o.get("data", {}))
    ]
    assert len(figures) == 3  # curves and confusion matrix (PNG), the predicted face (its JPEG)
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "not Colab" in printed and "Images per class and split" in printed and "macro_f1" in printed
    assert "true class:" in printed
    # the shipped preset, before any training: she smiles
    assert re.search(r"1 face\(s\); the first at \(\d+, \d+, \d+, \d+\): Happy", printed), printed
    work = tmp_path / "affect_work"
    assert (work / "run" / "best.keras").is_file()
    assert (work / "run" / "export" / "model.tflite").is_file()
