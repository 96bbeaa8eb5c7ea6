"""Execute the notebooks with small settings so they cannot rot."""

import os
from pathlib import Path

import nbformat
import pytest
from conftest import shared_datasets
from nbclient import NotebookClient

NB = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, timeout: int = 600) -> nbformat.NotebookNode:
    nb = nbformat.read(NB / name, as_version=4)
    env = {"BAYESCALE_FAST": "1", "BAYESCALE_NO_PROGRESS": "1"}
    data = shared_datasets()
    if data is not None:
        env["BAYESCALE_DATA"] = str(data)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={
            "metadata": {"path": str(NB)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


@pytest.mark.slow
def test_01_chinchilla_runs_and_forecasts():
    nb = run_notebook("01_chinchilla.ipynb")
    text = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "posterior median" in text
    # the tokens-per-parameter posterior median is printed: a plausible number, not NaN
    line = [ln for ln in text.splitlines() if "posterior median" in ln][0]
    med = float(line.split("median")[1].split(",")[0])
    assert 5 < med < 60


@pytest.mark.slow
def test_06_calibrated_forecasts_cover_more():
    nb = run_notebook("06_calibrated_forecasts.ipynb")
    text = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    plain = float(text.split("plain 90% coverage:")[1].split()[0])
    calib = float(text.split("calibrated 90% coverage:")[1].split()[0])
    assert calib > plain  # the calibrated intervals cover more of the larger runs
    # structural uncertainty: the leave-future-out average of two law forms covers at least
    # as much of the larger models as the Chinchilla law alone, more once Kaplan's form has
    # a weight that can move an interval (full mode, 2026-12-08: weight 0.07, 0.92 against
    # 0.84). Its weight comes from 2 x 300 draws here and varies with the machine (numba
    # compiles for the host CPU): 0.014 on this session's machine, where the two covered
    # alike, larger where the suite ran before
    one = float(text.split("one law 90% coverage")[1].split()[0])
    avg = float(text.split("average 90% coverage")[1].split()[0])
    kaplan = float(text.split("kaplan=")[1].split(">")[0])
    assert avg >= one
    if kaplan >= 0.05:
        assert avg > one, (kaplan, avg, one)
    assert "law_form_share" in "".join(
        str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    # the learning curve: the i.i.d. fit's residuals are autocorrelated, the AR(1) fit's
    # intervals cover more of the held-out part of the curve
    rows = {ln.split()[0]: ln for ln in text.splitlines() if "residual lag-1 r" in ln}
    r_iid = float(rows["studentt"].split("lag-1 r")[1].split()[0])
    cov = {k: float(v.split("90% coverage")[1].split()[0]) for k, v in rows.items()}
    assert r_iid > 0.5
    assert cov["ar1"] > cov["studentt"]
    # the default likelihood="auto" makes the same call from the training rows alone
    assert "auto -> ar1: lag-1 residual autocorrelation" in text
