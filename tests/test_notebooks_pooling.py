"""Execute notebooks/02_pooling_across_families.ipynb in fast mode."""

from __future__ import annotations

import os

import nbformat
import pytest
from conftest import REPO, shared_datasets
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "02_pooling_across_families.ipynb"


@pytest.mark.slow
def test_pooling_notebook_runs(shared_data, monkeypatch):
    monkeypatch.setenv("BAYESCALE_FAST", "1")
    monkeypatch.setenv("BAYESCALE_DATA", str(shared_datasets()))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    # the side-by-side table and the unseen-family forecast were produced
    assert "partial" in outputs and "none" in outputs and "complete" in outputs
    assert "new family" in outputs
    assert "notebook ran in" in outputs
