"""Execute the downstream-accuracy and onset notebooks in fast mode."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import REPO, shared_datasets

NOTEBOOKS = ["03_downstream_accuracy.ipynb", "04_emergence_onsets.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, shared_data, monkeypatch):
    import nbclient
    import nbformat

    monkeypatch.setenv("BAYESCALE_FAST", "1")
    monkeypatch.setenv("BAYESCALE_DATA", str(shared_data))
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    path = REPO / "notebooks" / name
    nb = nbformat.read(path, as_version=4)
    start = time.time()
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    assert time.time() - start < 600
    assert shared_datasets() is not None
    assert Path(path).exists()
