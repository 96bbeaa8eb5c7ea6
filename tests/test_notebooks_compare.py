"""Execute notebooks/05_compare_and_forecast.ipynb in fast mode."""

from __future__ import annotations

import os

import pytest
from conftest import REPO, shared_datasets


@pytest.mark.slow
def test_notebook_05_compare_and_forecast_runs(monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    data = shared_datasets()
    assert data is not None, "shared datasets not found: set BAYESCALE_DATA"
    monkeypatch.setenv("BAYESCALE_FAST", "1")
    monkeypatch.setenv("BAYESCALE_DATA", str(data))
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    path = REPO / "notebooks" / "05_compare_and_forecast.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "Forecast loss at N=7e10" in text
    assert "## Parameters" in text
