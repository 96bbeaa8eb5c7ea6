"""Command line: listings, one-line errors with exit code 2, and one real end-to-end fit."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale import datasets as ds
from bayescale.cli import main
from bayescale.laws import chinchilla

REPO = Path(__file__).resolve().parents[1]


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_laws_lists_every_law_with_equation(capsys):
    rc, out, err = run_main(capsys, "laws")
    assert rc == 0 and err == ""
    laws = bs.list_laws()
    assert {"chinchilla", "kaplan", "power_law"} <= {law.name for law in laws}
    lines = out.splitlines()
    for law in laws:
        assert law.name in lines, law.name
        i = lines.index(law.name)
        assert law.equation and law.equation in lines[i + 1], law.name
        assert ", ".join(law.params) in lines[i + 2]


def test_datasets_lists_registry(capsys):
    rc, out, err = run_main(capsys, "datasets", "--full")
    assert rc == 0 and err == ""
    for name, entry in ds.REGISTRY.items():
        assert f"{name}  (" in out
        assert entry["licence"] in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "nope"], "Unknown law 'nope'"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--y", "val_loss"],
         "Response column 'val_loss' is missing"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--x", "N=params"],
         "Column 'params'"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--x", "N:params"],
         "--x: 'N:params' is not of the form name=value"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--x", "Q=params"],
         "not inputs of law 'chinchilla'"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchila"],
         "Unknown law 'chinchila'. Did you mean 'chinchilla'?"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--x", "n=N"],
         "Did you mean 'N'?"),
        (["fit", "--dataset", "synthetic-chinchilla", "--law", "chinchilla"],
         "Did you mean 'synthetic_chinchilla'?"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla,power_law"],
         "laws to average must share their inputs"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "kaplan,kaplan"],
         "a law is named twice"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla,kaplan",
          "--average", "mean"], "--average must be lfo or stacking"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--predict",
          "N=7e10"], "missing D in 'N=7e10'"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--predict",
          "N=big,D=1e12"], "must be a number"),
        # an empty value (an unset shell variable) gave no forecast, unsaid
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--predict", ""],
         "--predict: no rows given"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla",
          "--compute-optimal", ""], "--compute-optimal"),
        (["fit", "--dataset", "nope", "--law", "chinchilla"], "Unknown dataset 'nope'"),
        (["fit", "missing.csv", "--law", "chinchilla"], "Data file 'missing.csv' not found"),
        (["fit", "/", "--law", "chinchilla"],  # a folder: it said "not found"
         "Data file '/' is a folder; give the data file in it"),
        # `--data runs.csv` is argparse's abbreviation of --dataset: say where a file goes
        (["fit", "--data", "runs.csv", "--law", "chinchilla"],
         "'runs.csv' looks like a file: give a CSV file as the first argument"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--draws", "0"],
         "draws must be an integer >= 1"),
        (["fit", "--dataset", "synthetic_chinchilla"], "required: --law"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--prob", "1.5"],
         "--prob must be between 0 and 1"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--prob", "90"],
         "For a 90% interval pass --prob 0.9"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--pooled",
          "family"], "(named in --pooled) is missing."),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "power_law", "--x", "x=N",
          "--compute-optimal", "1e21"], "--compute-optimal needs a law of N and D"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla",
          "--compute-optimal", "1e21,big"], "'big' is not one"),
        # an infinite budget was refused only after the whole fit (and its calibration)
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla",
          "--compute-optimal", "1e21,inf"], "'inf' is not one"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla",
          "--compute-optimal", "1e400"], "'1e400' is not one"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--fix", "E=low"],
         "--fix: E='low' must be a number"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--fix", "Q=1"],
         "Unknown prior name(s) ['Q'] for law 'chinchilla'"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--drift-by",
          "task"], "--drift-by task: name a column of --pooled or --run"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--run", "N",
          "--drift-by", "N", "--extrapolation", "off"], "drop one of them"),
        # --predict's rows are checked before the fit (were: after sampling, or ignored)
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--predict",
          "N=-1,D=1e12"], "--predict (rows from 0, in the order given): Column 'N' (input 'N'"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--predict",
          "N=7e10,D=1.4e12,X=3"], "--predict: X is not read by this fit"),
        (["fit", "--dataset", "synthetic_chinchilla_families", "--law", "chinchilla",
          "--pooled", "family", "--predict", "N=7e10,D=1.4e12,family=fam_a;N=7e10,D=1.4e12"],
         "(rows from 0, in the order given): Group column 'family' has missing labels at row 1"),
        (["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--predict",
          "7e10,1.4e12"], "(e.g. --predict N=7e10,D=1.4e12)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    rc, out, err = run_main(capsys, *argv)
    assert rc == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bayescale: error: ")
    assert needle in lines[0]


def test_an_out_folder_where_a_file_stands_is_one_line_and_exit_2(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    for out_dir in (afile, afile / "sub"):
        rc, out, err = run_main(capsys, "fit", "--dataset", "synthetic_chinchilla", "--law",
                                "chinchilla", "--out", str(out_dir))
        assert rc == 2 and out == "" and len(err.splitlines()) == 1, err
        assert f"{afile} is a file, not a folder" in err
    # and a fit saved to a folder says to name a file (was h5py's IsADirectoryError)
    fake = bs.Fit.__new__(bs.Fit)
    with pytest.raises(bs.BayescaleError, match="it is a folder; give a file name"):
        fake.save(tmp_path)


def test_bad_column_in_a_csv(capsys, tmp_path):
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"params": [1e8, 1e9], "tokens": [1e9, 1e10], "val": [3.0, "x"]}).to_csv(
        csv, index=False
    )
    rc, _, err = run_main(capsys, "fit", str(csv), "--law", "chinchilla", "--x",
                          "N=params,D=tokens", "--y", "val")
    assert rc == 2 and len(err.splitlines()) == 1
    assert "Column 'val' (response) must be numeric" in err and "row 1: 'x'" in err


def test_sizes_written_with_suffixes_are_read_as_counts(capsys, tmp_path):
    # a model table's '70M' / '1.4B' in the law's columns: the command line cannot call
    # bs.parse_counts, so it reads them (and says so); other columns keep their text
    csv = tmp_path / "runs.csv"
    sizes = ["70M", "160M", "410M", "1B", "1.4B", "2.8B"]
    pd.DataFrame({"model": sizes, "params": sizes,
                  "tokens": ["1.4B", "3.2B", "8.2B", "20B", "28B", "56B"],
                  "loss": [3.9, 3.5, 3.2, 2.95, 2.85, 2.7]}).to_csv(csv, index=False)
    rc, _, err = run_main(capsys, "fit", str(csv), "--law", "chinchilla", "--x",
                          "N=params,D=tokens", "--where", "model=1.4B", "--where", "model=2.8B")
    assert rc == 2, err
    # the filter matched the text labels, and the fit got numbers: too few rows is its error
    assert "Only 2 rows for law 'chinchilla'" in err, err
    assert "read column 'params' as counts with K/M/B/T suffixes ('1.4B' = 1.4e+09)" in err
    assert "read column 'tokens'" in err and "read column 'model'" not in err
    # a column that is not all counts is left for the column check to name
    pd.DataFrame({"params": ["70M", "big"], "tokens": [1e9, 1e10],
                  "loss": [3.0, 2.8]}).to_csv(csv, index=False)
    rc, _, err = run_main(capsys, "fit", str(csv), "--law", "chinchilla", "--x",
                          "N=params,D=tokens")
    assert rc == 2 and len(err.splitlines()) == 1 and "row 1: 'big'" in err, err


def test_a_table_with_common_column_names_gets_the_whole_mapping(capsys, tmp_path):
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"Params": [1e8, 1e9], "tokens": [1e9, 1e10], "val_loss": [3.0, 2.8]}).to_csv(
        csv, index=False
    )
    rc, _, err = run_main(capsys, "fit", str(csv), "--law", "chinchilla")
    assert rc == 2 and len(err.splitlines()) == 1
    assert "map them with --x N=Params,D=tokens, --y val_loss." in err, err
    # only what is missing is suggested
    rc, _, err = run_main(capsys, "fit", str(csv), "--law", "chinchilla", "--x",
                          "N=Params,D=tokens")
    assert rc == 2 and "Response column 'loss' is missing. The table seems to name them " \
        "otherwise: map them with --y val_loss." in err, err


def test_a_run_without_a_seed_chooses_one_says_it_and_agrees_with_itself(capsys, tmp_path):
    import re

    args = ["fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla", "--predict",
            "N=1e9,D=2e10", "--draws", "200", "--tune", "200", "--chains", "2"]
    rc, out, err = run_main(capsys, *args, "--out", str(tmp_path / "a"))
    assert rc == 0, err
    seed = int(re.search(r"random seed (\d+) \(chosen for this run; --seed \1 repeats it\)",
                         out).group(1))
    pred = pd.read_csv(tmp_path / "a" / "predictions.csv")
    # the report's forecast is the printed one (it drew its own numbers without a seed)
    md = (tmp_path / "a" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 0 | 1e+09 | 2e+10 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3:6] == [f"{pred[c].iloc[0]:.4g}" for c in ("median", "lower", "upper")], row
    assert f"| random_seed | {seed} |" in md
    # and the printed seed repeats the run
    rc, out2, err = run_main(capsys, *args, "--seed", str(seed), "--out", str(tmp_path / "b"))
    assert rc == 0, err
    assert "random seed" not in out2
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b" / "predictions.csv"), pred)


def test_real_process_error_has_no_traceback():
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "bayescale", "fit", "--dataset", "synthetic_chinchilla",
         "--law", "chinchila"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("bayescale: error: Unknown law 'chinchila'")


def test_pytensor_missing_blas_warning_is_not_shown():
    """PyTensor's C backend warns that a pip install has no BLAS, which bayescale's samplers
    (numba, JAX) do not use: importing bayescale hides that one warning, not others."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = (
        "import warnings, bayescale\n"
        "warnings.warn('PyTensor could not link to a BLAS installation. Operations that "
        "might benefit from BLAS will be severely degraded.', UserWarning)\n"
        "warnings.warn('another warning', UserWarning)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "BLAS" not in proc.stderr
    assert "another warning" in proc.stderr


@pytest.mark.slow
def test_fit_end_to_end_on_synthetic(capsys, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="bayescale")
    out_dir = tmp_path / "results"
    rc, out, err = run_main(
        capsys, "fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla",
        "--predict", "N=7e10,D=1.4e12;N=1e9,D=2e10", "--out", str(out_dir),
        "--draws", "200", "--tune", "200", "--chains", "2", "--seed", "3",
        "--compute-optimal", "1e21,5.76e23",
    )
    assert rc == 0, err
    assert "Posterior (90% HDI)" in out and "Predictions" in out
    # the forecast 30x beyond the data needs the drift's calibration: said before it runs
    assert "calibrating the extrapolation drift of chinchilla" in err, err
    assert "--extrapolation off skips it" in err
    assert "Calibrating" not in caplog.text  # the library's own line, said once already
    # i.i.d. simulated noise: the default likelihood="auto" keeps Student-t and says why
    assert "likelihood: auto -> studentt: lag-1 residual autocorrelation" in out
    # why each interval is as wide as it is
    assert "Shares of the predictive variance" in out and "extrapolation_share" in out
    for f in ("summary.csv", "predictions.csv", "fit.nc", "fit.png", "compute_optimal.csv",
              "report.md"):
        assert (out_dir / f).stat().st_size > 0, f
    assert ("Compute-optimal allocation (C = 6 N D; 90% central interval; loss: the law's "
            "mean curve there, without observation noise)") in out
    # the paper-ready report: the forecast beyond the data and the drift that widened it
    md = (out_dir / "report.md").read_text()
    for section in ("## Parameters", "## Forecast", "## Calibration", "extrapolation_share"):
        assert section in md, section
    # the same tables for a paper: one booktabs float each, with the forecast's numbers
    tex = (out_dir / "report.tex").read_text()
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == md.count("\n## ") - (
        "## Notes" in md)
    fc = pd.read_csv(out_dir / "predictions.csv")
    assert r"\label{tab:forecast}" in tex and f"{fc['median'].iloc[0]:.4g}" in tex
    assert "extrapolation\\_share" in tex and "lower_90" not in tex  # escaped

    truth = dict(ds.REGISTRY["synthetic_chinchilla"]["truth"])
    truth.pop("noise_sd_log")
    summary = pd.read_csv(out_dir / "summary.csv", index_col=0)
    assert {"E", "A", "alpha", "B", "beta"} <= set(summary.index)
    assert abs(summary.loc["E", "mean"] - truth["E"]) < 0.1
    assert abs(summary.loc["alpha", "mean"] - truth["alpha"]) < 0.06
    assert abs(summary.loc["beta", "mean"] - truth["beta"]) < 0.06

    pred = pd.read_csv(out_dir / "predictions.csv")
    assert list(pred.columns[:2]) == ["N", "D"] and len(pred) == 2
    true_loss = chinchilla(pred["N"].to_numpy(), pred["D"].to_numpy(), **truth)
    # 1.9834 at Chinchilla-70B scale, 30x beyond the largest fitted compute
    assert np.all(pred["lower"] < true_loss) and np.all(true_loss < pred["upper"])
    np.testing.assert_allclose(pred["median"], true_loss, rtol=0.03)
    assert (pred["upper"] - pred["lower"] < 0.25 * true_loss).all()
    assert pred["extrapolation"].iloc[0] > 10

    from bayescale.derived import chinchilla_optimum

    opt = pd.read_csv(out_dir / "compute_optimal.csv")
    n_true, _ = chinchilla_optimum(opt["C"].to_numpy(), **{k: truth[k] for k in
                                                           ("A", "alpha", "B", "beta")})
    assert ((opt["N_opt_lower"] < n_true) & (n_true < opt["N_opt_upper"])).all(), (opt, n_true)

    fit = bs.load_fit(out_dir / "fit.nc")
    assert fit.law.name == "chinchilla" and len(fit.data) == 60
    # --sampler auto: the JAX path on CPU (its programs are stored for the next call)
    from bayescale.sampling import jax_platform

    assert fit.settings["sampler"] == ("jax" if jax_platform() == "cpu" else "nutpie")
    again = fit.predict(pred[["N", "D"]], random_seed=3)
    np.testing.assert_allclose(again["median"], pred["median"], rtol=0.02)


@pytest.mark.slow
def test_extrapolation_off_forecasts_without_the_drift(capsys, tmp_path):
    """--extrapolation off: no calibration runs, the drift's share is 0, and the forecast
    is the fit's predict(extrapolation=False); the report says what was left out. An
    earlier run's results in --out (its compute-optimal table, another law's fit) were left
    beside the new ones, unsaid; now removed and said, other files kept."""
    out_dir = tmp_path / "off"
    out_dir.mkdir()
    for name in ("compute_optimal.csv", "fit_kaplan.nc", "notes.txt"):
        (out_dir / name).write_text("an earlier run's")
    rc, out, err = run_main(
        capsys, "fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla",
        "--predict", "N=7e10,D=1.4e12", "--out", str(out_dir), "--extrapolation", "off",
        "--draws", "200", "--tune", "200", "--chains", "2", "--seed", "3",
    )
    assert rc == 0, err
    assert "calibrating" not in err, err
    shares = out.split("Shares of the predictive variance")[1].split("\n")
    assert "distance beyond the data" in shares[0]
    assert shares[1].split() == ["distance", "parameter_share", "noise_share",
                                 "extrapolation_share"]
    assert float(shares[2].split()[3]) == 0.0, shares
    assert float(shares[2].split()[0]) > 0  # 70B is beyond the data, drift or not
    fit = bs.load_fit(out_dir / "fit.nc")
    assert "calibration" not in fit.extras
    pred = pd.read_csv(out_dir / "predictions.csv")
    own = fit.predict(pred[["N", "D"]], extrapolation=False)
    np.testing.assert_allclose(pred["upper"], own["upper"], rtol=1e-9)
    assert "calibration" not in fit.__dict__  # predict(extrapolation=False) did not need it
    md = (out_dir / "report.md").read_text()
    assert "forecast without the extrapolation drift" in md and "## Calibration" not in md
    assert "Removed compute_optimal.csv, fit_kaplan.nc, left there by an earlier run" in out
    assert sorted(f.name for f in out_dir.iterdir()) == [
        "fit.nc", "fit.png", "notes.txt", "predictions.csv", "report.md", "report.tex",
        "summary.csv"]


def test_kind_mean_reaches_the_report_and_the_plot(capsys, tmp_path):
    """--kind mean: predictions.csv, report.md and fit.png show the same mean-curve forecast
    (the report and plot showed the predictive one)."""
    out_dir = tmp_path / "mean"
    rc, out, err = run_main(
        capsys, "fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla",
        "--predict", "N=7e10,D=1.4e12", "--out", str(out_dir), "--extrapolation", "off",
        "--kind", "mean", "--prob", "0.975",
        "--draws", "100", "--tune", "200", "--chains", "2", "--seed", "3",
    )
    assert rc == 0, err
    pred = pd.read_csv(out_dir / "predictions.csv")
    md = (out_dir / "report.md").read_text()
    row = next(line for line in md.split("## Forecast")[1].splitlines()
               if line.startswith("| 0 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = next(line for line in md.split("## Forecast")[1].splitlines()
                  if "upper_97.5" in line)
    names = [c.strip() for c in header.strip("|").split("|")]
    got = dict(zip(names, cells))
    for col, name in (("median", "median"), ("lower", "lower_97.5"), ("upper", "upper_97.5")):
        assert float(got[name]) == pytest.approx(pred[col].iloc[0], rel=1e-3), (got, pred)
    assert "kind='mean'" in md and "noise_share" not in md
    assert "97.5% central interval" in out


@pytest.mark.slow
def test_fit_two_laws_forecasts_with_their_lfo_average(capsys, tmp_path):
    """--law chinchilla,kaplan: both fitted, weights from leave-future-out stacking (the data
    come from a Chinchilla law, so it should win), the average's forecast and its variance
    shares (law form included), one summary table with a law column, a fit file per law."""
    out_dir = tmp_path / "avg"
    rc, out, err = run_main(
        capsys, "fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla,kaplan",
        "--predict", "N=7e10,D=1.4e12", "--out", str(out_dir),
        "--draws", "200", "--tune", "200", "--chains", "2", "--seed", "3",
    )
    assert rc == 0, err
    assert "weighing the laws by leave-future-out" in err, err
    assert "calibrating the extrapolation drift of chinchilla, kaplan" in err, err
    assert "Posterior of chinchilla" in out and "Posterior of kaplan" in out
    assert "Average of the laws (leave-future-out stacking weights)" in out
    assert "law_form_share" in out
    weights = pd.read_csv(out_dir / "weights.csv", index_col="law")["weight"]
    assert weights.sum() == pytest.approx(1.0)
    assert weights["chinchilla"] > 0.8, weights
    summary = pd.read_csv(out_dir / "summary.csv", index_col=["law", "parameter"])
    assert {"chinchilla", "kaplan"} == set(summary.index.get_level_values("law"))
    assert ("kaplan", "alpha_N") in summary.index
    truth = dict(ds.REGISTRY["synthetic_chinchilla"]["truth"])
    truth.pop("noise_sd_log")
    pred = pd.read_csv(out_dir / "predictions.csv")
    true_loss = chinchilla(pred["N"].to_numpy(), pred["D"].to_numpy(), **truth)
    assert np.all(pred["lower"] < true_loss) and np.all(true_loss < pred["upper"])
    for f in ("fit_chinchilla.nc", "fit_kaplan.nc", "fit.png"):
        assert (out_dir / f).stat().st_size > 0, f


@pytest.mark.slow
def test_priors_moved_for_units_are_said_once_on_stderr(capsys, tmp_path):
    # parameters in millions and tokens in billions: each column's PriorWarning is one
    # "bayescale: warning:" line, not a Python warning with a file and line number
    df = ds.load("synthetic_chinchilla")
    path = tmp_path / "runs_in_millions.csv"
    df.assign(N=df["N"] / 1e6, D=df["D"] / 1e9)[["N", "D", "loss"]].to_csv(path, index=False)
    rc, out, err = run_main(
        capsys, "fit", str(path), "--law", "chinchilla", "--predict", "N=7e4,D=1.4e3",
        "--draws", "200", "--tune", "200", "--chains", "2", "--seed", "3",
        "--sampler", "nutpie",
    )
    assert rc == 0, err
    lines = [ln for ln in err.splitlines() if "decades below" in ln]
    assert len(lines) == 2, err
    assert lines[0].startswith("bayescale: warning: Column 'N' (input 'N' of law 'chinchilla')")
    assert lines[1].startswith("bayescale: warning: Column 'D' (input 'D' of law 'chinchilla')")
    assert "PriorWarning" not in err


def _accuracy_csv(tmp_path) -> tuple[Path, float]:
    """A 4-way multiple-choice task: accuracy of 300 questions over 4 decades of FLOPs,
    in columns named flops, acc and questions; no chance column. Returns the file and the
    true accuracy at 1e24 FLOPs."""
    rng = np.random.default_rng(1)
    C = np.logspace(19, 23, 12)

    def truth(c):
        return 0.25 + 0.75 * 0.8 / (1 + np.exp(-2.5 * (np.log10(c) - 22)))

    path = tmp_path / "acc.csv"
    pd.DataFrame({"flops": C, "acc": rng.binomial(300, truth(C)) / 300, "questions": 300}
                 ).to_csv(path, index=False)
    return path, float(truth(1e24))


def test_accuracy_errors_say_the_command_line_fix(capsys, tmp_path):
    # the library's messages name fit()'s arguments; the command line says its options
    csv, _ = _accuracy_csv(tmp_path)
    base = ["fit", str(csv), "--law", "sigmoid_compute", "--y", "acc"]
    cases = [
        (base + ["--x", "C=flops,chance=0.25"], "pass --trials your_column, or use "
         "--likelihood beta"),
        (base + ["--x", "C=flops", "--trials", "questions"],
         "pass a constant with --x chance=0.25"),
        (base[:-2] + ["--x", "C=flops,chance=0.25", "--trials", "questions"],
         "Pass --y your_column"),
        (base + ["--x", "chance=0.25", "--trials", "questions"],
         "map it with --x C=your_column"),
        (base + ["--x", "C=flops,chance=0.25", "--trials", "questions", "--predict",
                 "C=1e24,chance=0.25"], "chance is the constant 0.25 (--x chance=0.25); "
         "leave it out of --predict"),
    ]
    for argv, needle in cases:
        rc, out, err = run_main(capsys, *argv)
        assert rc == 2 and out == "" and len(err.splitlines()) == 1, err
        assert needle in err, (argv, err)


def test_parse_x_takes_numbers_as_constants():
    from bayescale.cli import parse_predict, parse_x

    law = bs.get_law("sigmoid_compute")
    x = parse_x("C=flops,chance=0.25")
    assert x == {"C": "flops", "chance": 0.25}
    rows = parse_predict("C=1e24;flops=1e25", law, x)
    assert rows.to_dict("list") == {"flops": [1e24, 1e25]}
    with pytest.raises(bs.BayescaleError, match=re.escape("every row needs C (or flops) ")):
        parse_predict("chance_typo=1", law, x)
    # a mapped input is named both ways, in the law's order
    x = parse_x("N=params,D=tokens")
    with pytest.raises(bs.BayescaleError, match=re.escape(
            "every row needs N (or params), D (or tokens) for law 'chinchilla'; "
            "missing D (or tokens) in 'N=7e10'.")):
        parse_predict("N=7e10", bs.get_law("chinchilla"), x)


def test_predict_takes_sizes_as_model_tables_write_them():
    # --predict "N=70B,D=1.4T" said "N='70B' must be a number", while the data's own
    # columns already read such counts (read_counts)
    from bayescale.cli import parse_predict, parse_x

    law = bs.get_law("chinchilla")
    rows = parse_predict("N=70B,D=1.4T;N=400m,D=8e12", law, parse_x("N=params,D=tokens"))
    assert rows.to_dict("list") == {"params": [7e10, 4e8], "tokens": [1.4e12, 8e12]}
    with pytest.raises(bs.BayescaleError, match=r"N='70X' must be a number or a count with"
                       r" a K/M/B/T suffix \(e.g. N=7e10 or N=70B\)"):
        parse_predict("N=70X,D=1e12", law, {})


def test_predict_refuses_two_names_of_one_input():
    # with --x N=params, "N=7e10,...,params=1e9" forecast at N = 1e9: the last one won
    from bayescale.cli import parse_predict, parse_x

    with pytest.raises(bs.BayescaleError, match=r"--predict: params and N name the same input "
                       r"\(--x maps one to the other\) in 'N=7e10,D=1.4e12,params=1e9'"):
        parse_predict("N=1e9,D=1e12;N=7e10,D=1.4e12,params=1e9", bs.get_law("chinchilla"),
                      parse_x("N=params"))


def test_errors_after_where_name_the_files_own_row(capsys, tmp_path):
    # --where renumbered the rows it kept: a NaN in the file's row 23 was "row 3"
    df = bs.datasets.load("synthetic_chinchilla_families")[["N", "D", "loss", "family"]]
    at = df.index[df["family"] == "fam_b"][3]
    df.loc[at, "loss"] = np.nan
    df.to_csv(tmp_path / "runs.csv", index=False)
    rc, out, err = run_main(capsys, "fit", str(tmp_path / "runs.csv"), "--law", "chinchilla",
                            "--where", "family=fam_b")
    assert rc == 2 and f"NaN or infinite values at row {at}: nan" in err, err


def test_a_result_that_cannot_be_written_is_one_line(capsys, monkeypatch):
    # a folder where summary.csv goes: a traceback from pandas after the whole fit
    import bayescale.cli as cli

    def fit_then_write(args, out):
        raise IsADirectoryError(21, "Is a directory", "res/summary.csv")

    monkeypatch.setattr(cli, "_cmd_fit", fit_then_write)
    rc, out, err = run_main(capsys, "fit", "--dataset", "synthetic_chinchilla", "--law",
                            "chinchilla")
    assert rc == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("bayescale: error: cannot use 'res/summary.csv': Is a directory. "
                          "For a result in --out: give --out a folder"), err


def test_predict_rows_by_a_column_the_law_does_not_read_suggest_the_mapping():
    from bayescale.cli import parse_predict

    law = bs.get_law("power_law")
    with pytest.raises(bs.BayescaleError, match=r"needs x for law 'power_law'.*--x x=N"
                       r" \(your data's"):
        parse_predict("N=2e10;N=1e11", law, {})
    assert parse_predict("N=2e10", law, {"x": "N"}).to_dict("list") == {"N": [2e10]}


@pytest.mark.slow
def test_fix_holds_a_parameter(capsys, tmp_path):
    out_dir = tmp_path / "fixed"
    rc, out, err = run_main(
        capsys, "fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla",
        "--fix", "E=1.8,beta=0.36", "--out", str(out_dir), "--draws", "200", "--tune", "200",
        "--chains", "2", "--seed", "1", "--sampler", "nutpie",
    )
    assert rc == 0, err
    fit = bs.load_fit(out_dir / "fit.nc")
    assert str(fit.spec.priors["E"]) == "Fixed(value=1.8)"
    assert str(fit.spec.priors["beta"]) == "Fixed(value=0.36)"
    if "E" in fit.posterior:  # kept as a constant, if at all
        assert np.all(fit.posterior["E"].values == 1.8)
    summary = pd.read_csv(out_dir / "summary.csv", index_col=0)
    assert abs(summary.loc["alpha", "mean"] - 0.34) < 0.05


def _fit_sigmoid(capsys, csv, out_dir, draws: int, *options: str) -> str:
    """``bayescale fit csv --law sigmoid_compute *options`` (2 chains, seed 0) into
    ``out_dir``; checks it succeeded and returns what it printed."""
    rc, out, err = run_main(
        capsys, "fit", str(csv), "--law", "sigmoid_compute", *options, "--out", str(out_dir),
        "--draws", str(draws), "--tune", "300", "--chains", "2", "--seed", "0",
    )
    assert rc == 0, err
    return out


@pytest.mark.slow
def test_accuracy_fit_with_a_constant_chance_and_a_trials_column(capsys, tmp_path):
    csv, true_acc = _accuracy_csv(tmp_path)
    out_dir = tmp_path / "acc"
    out = _fit_sigmoid(capsys, csv, out_dir, 300, "--y", "acc", "--x", "C=flops,chance=0.25",
                       "--trials", "questions", "--predict", "C=1e24")
    summary = pd.read_csv(out_dir / "summary.csv", index_col=0)
    assert abs(summary.loc["x0", "mean"] - 22.0) < 0.3
    assert abs(summary.loc["ceiling", "mean"] - 0.8) < 0.12
    pred = pd.read_csv(out_dir / "predictions.csv")
    assert pred["lower"].iloc[0] < true_acc < pred["upper"].iloc[0], (pred, true_acc)
    # a decade beyond the data: the accuracy's calibrated drift, on the logit scale
    assert pred["extrapolation"].iloc[0] == pytest.approx(10.0)
    assert "Shares of the predictive variance (logit scale)" in out
    fit = bs.load_fit(out_dir / "fit.nc")
    assert fit.calibration.scale == "logit" and fit.calibration.n_points > 0
    assert fit.spec.x["chance"] == 0.25 and fit.spec.likelihood == "binomial"
    assert (fit.data["n"] == 300).all()  # the trials came from the questions column


@pytest.mark.slow
def test_drift_by_task_learns_a_drift_per_task(capsys, tmp_path):
    """--drift-by: the forecasts' extrapolation drift per level of a pooled column, saved
    with the fit (calibrate(by=...) from the shell)."""
    rng = np.random.default_rng(2)
    C = np.logspace(19, 22, 12)
    rows = []
    for task, x0 in (("t1", 21.0), ("t2", 21.6)):
        p = 0.25 + 0.75 * 0.8 / (1 + np.exp(-2.0 * (np.log10(C) - x0)))
        rows.append(pd.DataFrame({"C": C, "task": task, "n": 300,
                                  "correct": rng.binomial(300, p)}))
    csv = tmp_path / "tasks.csv"
    pd.concat(rows).to_csv(csv, index=False)
    out_dir = tmp_path / "by_task"
    out = _fit_sigmoid(capsys, csv, out_dir, 200, "--x", "chance=0.25", "--pooled", "task",
                       "--drift-by", "task", "--predict", "C=1e23,task=t1;C=1e23,task=t2")
    fit = bs.load_fit(out_dir / "fit.nc")
    levels = fit.calibration.level_summary()
    assert fit.calibration.by == "task" and list(levels["task"]) == ["t1", "t2", "(new level)"]
    assert (levels["inner_points"][:2] > 0).all()
    pred = pd.read_csv(out_dir / "predictions.csv")
    assert list(pred["task"]) == ["t1", "t2"] and (pred["extrapolation"] == 10.0).all()
    assert "Shares of the predictive variance (logit scale)" in out


def test_data_files_are_read_by_their_ending(tmp_path):
    from bayescale.cli import read_table

    df = pd.DataFrame({"params": [1e8, 1e9, 1e10], "tokens": [2e9, 2e10, 2e11],
                       "loss": [3.1, 2.6, 2.3]})
    writers = {
        "comma.csv": lambda p: df.to_csv(p, index=False),
        "semicolon.csv": lambda p: df.to_csv(p, sep=";", index=False),  # many locales' CSV
        "tabs.txt": lambda p: df.to_csv(p, sep="\t", index=False),
        "pipes.csv": lambda p: df.to_csv(p, sep="|", index=False),
        # a spreadsheet in many locales: ';' and decimal commas ("Expected 3 fields in line
        # 3, saw 4" before: read as commas first), with a byte-order mark
        "european.csv": lambda p: p.write_text(
            "\ufeffparams;tokens;loss\n1e+08;2e+09;3,1\n1e+09;2,0e+10;2,6\n1e+10;2e+11;2,3\n"),
        "runs.tsv": lambda p: df.to_csv(p, sep="\t", index=False),
        "runs.csv.gz": lambda p: df.to_csv(p, index=False),
        "runs.parquet": lambda p: df.to_parquet(p),
        "runs.feather": lambda p: df.to_feather(p),
        "runs.json": lambda p: df.to_json(p, orient="records"),
        "runs.jsonl": lambda p: df.to_json(p, orient="records", lines=True),
    }
    for name, write in writers.items():
        write(tmp_path / name)
        # JSON keeps no dtypes: 1e8 comes back as an integer (fits take either)
        pd.testing.assert_frame_equal(read_table(tmp_path / name), df, obj=name,
                                      check_dtype="json" not in name)
    # a Parquet file named .csv is not taken for text: the error names the file and format
    (tmp_path / "wrong.csv").write_bytes((tmp_path / "runs.parquet").read_bytes())
    with pytest.raises(bs.DataError, match=r"Cannot read '.*wrong\.csv' as CSV .*'\.csv'"):
        read_table(tmp_path / "wrong.csv")
    # Excel needs openpyxl (not a dependency): missing, the error says to install it or
    # save a CSV; present, it names the file it cannot read. Never a reader's traceback.
    (tmp_path / "runs.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(bs.DataError, match=r"'.*runs\.xlsx' as Excel"):
        read_table(tmp_path / "runs.xlsx")
    # a compressed CSV is not sniffed as text: gzip bytes holding ';' and no comma made
    # one column of a comma file (11 of 40 files in a review); a ';' one is read again
    import gzip

    rng = np.random.default_rng(0)
    for _ in range(400):
        frame = pd.DataFrame({"N": rng.uniform(1e8, 1e10, 5).round(), "loss": 3.0})
        # mtime=0: gzip's header holds the clock, so the search depended on the time of day
        raw = gzip.compress(frame.to_csv(index=False).encode(), mtime=0)
        first = raw.split(b"\n")[0]
        if b"," not in first and any(c in first for c in (b";", b"\t", b"|")):
            break
    else:
        raise AssertionError("no gzip header that looked like a separator")
    (tmp_path / "tricky.csv.gz").write_bytes(raw)
    pd.testing.assert_frame_equal(read_table(tmp_path / "tricky.csv.gz"), frame)
    (tmp_path / "semi.csv.gz").write_bytes(gzip.compress(b"N;loss\n1e8;3,1\n1e9;2,6\n"))
    assert read_table(tmp_path / "semi.csv.gz")["loss"].tolist() == [3.1, 2.6]
    # '1,300' in a ';' file may be 1.3 or 1300: left as text for the column checks to ask
    (tmp_path / "thousands.csv").write_text("N;loss\n1,300;3,1\n2,600;2,6\n")
    got = read_table(tmp_path / "thousands.csv")
    assert got["N"].tolist() == ["1,300", "2,600"] and got["loss"].tolist() == [3.1, 2.6]
    (tmp_path / "header.csv").write_text("params,tokens,loss\n")
    with pytest.raises(bs.DataError, match="has a header but no rows"):
        read_table(tmp_path / "header.csv")


def test_a_semicolon_csv_reaches_the_column_checks(capsys, tmp_path):
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"params": [1e8, 1e9], "tokens": [1e9, 1e10], "val": [3.0, "x"]}).to_csv(
        csv, sep=";", index=False
    )
    rc, _, err = run_main(capsys, "fit", str(csv), "--law", "chinchilla", "--x",
                          "N=params,D=tokens", "--y", "val")
    assert rc == 2 and "Column 'val' (response) must be numeric" in err
    rc, _, err = run_main(capsys, "fit", str(tmp_path / "none.parquet"), "--law", "chinchilla")
    assert rc == 2 and "Data file" in err and "none.parquet' not found" in err


def test_where_keeps_any_value_of_a_column_given_again_and_all_columns(tmp_path):
    """--where family=a --where family=b keeps both families (the second replaced the first);
    another column narrows the rows further; a registered dataset filters the same way."""
    from argparse import Namespace

    from bayescale.cli import _read_data

    df = pd.DataFrame({"family": list("aabbcc"), "size": [1, 2, 1, 2, 1, 2],
                       "loss": np.arange(6.0)})
    df.to_csv(tmp_path / "runs.csv", index=False)

    def rows(*where, data=str(tmp_path / "runs.csv"), dataset=None):
        return _read_data(Namespace(where=list(where), data=data, dataset=dataset))

    assert rows("family=a", "family=b")["family"].tolist() == list("aabb")
    assert rows("family=a", "family=c", "size=2")["loss"].tolist() == [1.0, 5.0]
    assert rows("family=b,size=1")["loss"].tolist() == [2.0]
    # values are read as their column holds them: text that looks like a number, or holds
    # a comma (the revisiting benchmark's model names), could not be selected
    odd = pd.DataFrame({"model": ["1.68e+07", "6 Enc, 6 Dec", "1.68e+07"], "size": [1, 2, 3],
                        "loss": [1.0, 2.0, 3.0]})
    odd.to_csv(tmp_path / "odd.csv", index=False)
    assert rows("model=1.68e+07", data=str(tmp_path / "odd.csv"))["loss"].tolist() == [1.0, 3.0]
    assert rows("model=6 Enc, 6 Dec,size=2",
                data=str(tmp_path / "odd.csv"))["loss"].tolist() == [2.0]
    # a misspelt value is named, not dropped from the values kept
    with pytest.raises(bs.DataError, match=r"'bb' is not a value of 'family'"):
        rows("family=a", "family=bb")
    with pytest.raises(bs.DataError, match=r"loss=0.0 leaves no rows .*kept have 'loss' '2.0'"):
        rows("family=b", "size=1", "loss=0")
    syn = ds.load("synthetic_chinchilla")
    runs = sorted(syn["run"].unique())[:2]
    got = rows(*(f"run={r}" for r in runs), data=None, dataset="synthetic_chinchilla")
    assert len(got) == syn["run"].isin(runs).sum() > 0 and set(got["run"]) == set(runs)


def test_a_new_family_is_warned_once_as_a_bayescale_line(capsys, tmp_path):
    """The forecast of a family the fit never saw: one `bayescale: warning:` line, not that
    line and then two raw Python warnings from the report and the plot."""
    rc, out, err = run_main(
        capsys, "fit", "--dataset", "synthetic_chinchilla_families", "--law", "chinchilla",
        "--pooled", "family", "--predict", "N=7e10,D=1.4e12,family=fam_new",
        "--extrapolation", "off", "--out", str(tmp_path / "fam"),
        "--draws", "100", "--tune", "150", "--chains", "2", "--seed", "3",
    )
    assert rc == 0, err
    assert err.count("'fam_new' was not among the fitted levels") == 1, err
    assert "PoolingWarning: " not in err  # a raw warning line
    # the posterior table is the population's; each family's parameters are beside it
    assert "90% HDI, population level: each group's in group_effects" in out
    effects = pd.read_csv(tmp_path / "fam" / "group_effects.csv")
    assert {"fam_a", "fam_b", "fam_c"} <= set(effects["level"])
    fit = bs.load_fit(tmp_path / "fam" / "fit.nc")
    mine = fit.group_effects()
    np.testing.assert_allclose(effects["median"], mine["median"], rtol=1e-6)


def test_calibration_draws_reach_the_average_of_several_laws(capsys, monkeypatch, tmp_path):
    """With two laws the average was built before --calibration-draws recalibrated the fits:
    its forecast, report and plot ran a second calibration with the default draws."""
    import bayescale.calibration as calmod

    asked = []

    def calibrated(fit, **kwargs):
        asked.append((fit.law.name, kwargs))
        return calmod.Calibration(tau=calmod.TAU_GRID, weights=calmod.posterior_tau([]),
                                  prior_scale=0.005)

    monkeypatch.setattr(calmod, "calibrate", calibrated)
    rc, out, err = run_main(
        capsys, "fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla,kaplan",
        "--average", "stacking", "--predict", "N=7e10,D=1.4e12", "--draws", "40", "--tune",
        "150", "--chains", "2", "--seed", "3", "--calibration-draws", "700",
        "--out", str(tmp_path / "o"),
    )
    assert rc == 0, err
    assert sorted(asked, key=lambda a: a[0]) == [("chinchilla", {"draws": 700}),
                                                 ("kaplan", {"draws": 700})], asked
    rc, out, err = run_main(capsys, "fit", "--dataset", "synthetic_chinchilla", "--law",
                            "chinchilla", "--calibration-draws", "0")
    assert rc == 2 and "--calibration-draws must be a positive integer" in err, err
    assert len(asked) == 2  # refused before any fit
    # n (trials) is read by count likelihoods only: for a loss law it was kept and ignored
    rc, out, err = run_main(capsys, "fit", "--dataset", "synthetic_chinchilla", "--law",
                            "chinchilla", "--predict", "N=7e10,D=1.4e12,n=5")
    assert rc == 2 and "--predict: n is not read by this fit" in err, err


def test_the_calibrations_inner_fit_problems_are_said_on_stderr(capsys, monkeypatch):
    """They reached the report's notes only; the fits' own problems are said on stderr."""
    import bayescale.calibration as calmod

    asked = []

    def calibrated(fit, **kwargs):  # a calibration whose inner fits had a problem
        asked.append(kwargs)
        return calmod.Calibration(tau=calmod.TAU_GRID, weights=calmod.posterior_tau([]),
                                  prior_scale=0.005,
                                  problems=(calmod.inner_problem("q=0.5", [
                                      "low effective sample size: draw more samples (about "
                                      "draws=1100 per chain)."]),))

    monkeypatch.setattr(calmod, "calibrate", calibrated)
    rc, out, err = run_main(
        capsys, "fit", "--dataset", "synthetic_chinchilla", "--law", "chinchilla",
        "--predict", "N=7e10,D=1.4e12", "--draws", "40", "--tune", "150", "--chains", "2",
        "--seed", "3", "--calibration-draws", "700",
    )
    assert rc == 0, err
    assert ("bayescale: warning: extrapolation calibration of chinchilla: inner fit at cutoff "
            "q=0.5: low effective sample size") in err, err
    # advice a shell user can follow: the option that sets the inner fits' draws
    assert "For the inner fits: --calibration-draws 1100." in err, err
    assert asked == [{"draws": 700}]
    # the fit's own advice in command-line options (80 draws cannot give an ESS of 100)
    assert "about --draws " in err and "about draws=" not in err, err


def test_dropna_drops_the_rows_missing_a_value_the_fit_reads(capsys, tmp_path, monkeypatch):
    # obsscaling_evals has 25 models without C: "Drop or fill those rows" could not be done
    # from the command line (--where keeps only rows equal to a value)
    import bayescale.cli as cli

    df = pd.DataFrame({"model": list("abcdef"), "C": [1e20, np.nan, 1e21, 1e22, np.nan, 1e23],
                       "N": [1e9, 2e9, np.nan, 4e9, 5e9, 6e9], "value": 0.3,
                       "note": [None] * 6})
    df.to_csv(tmp_path / "evals.csv", index=False)
    argv = ["fit", str(tmp_path / "evals.csv"), "--law", "sigmoid_compute", "--y", "value",
            "--x", "chance=0.25", "--likelihood", "beta"]
    rc, out, err = run_main(capsys, *argv)
    assert rc == 2 and "row 1: nan, row 4: nan. Drop or fill those rows (--dropna drops them)" \
        in err, err
    seen = {}

    def fit_one(data, law, *args):
        seen["rows"] = data.index.tolist()
        raise bs.BayescaleError("stop here")

    monkeypatch.setattr(cli, "_fit_one", fit_one)
    rc, out, err = run_main(capsys, *argv, "--dropna")
    # N is not read by a law of C given as a column, nor is the empty 'note'
    assert seen["rows"] == [0, 2, 3, 5], seen
    assert "bayescale: --dropna: dropped 2 of 6 rows with a missing value (C: 2): rows 1, 4" \
        in err, err


def test_the_packages_log_lines_start_with_the_program_name(monkeypatch):
    # "Learning the extrapolation drifts ..." reached stderr without the "bayescale:" of
    # the command's other lines
    import io
    import logging

    import bayescale.cli as cli

    log = logging.getLogger("bayescale")
    own = logging.StreamHandler(io.StringIO())  # as `import bayescale` adds one
    log.addHandler(own)
    try:
        monkeypatch.setattr(cli, "_main", lambda parser, argv, out: log.warning("Learning") or 0)
        assert cli.main(["laws"]) == 0
        assert own.stream.getvalue() == "bayescale: Learning\n"
        assert own.formatter is None  # as it was, after the command
    finally:
        log.removeHandler(own)
