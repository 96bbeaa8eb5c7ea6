"""Every bad input raises a bayescale error naming the column, rows and values."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.data import validate
from bayescale.errors import BayescaleError, DataError, LawError
from bayescale.laws import chinchilla, power_law


@pytest.fixture
def df():
    return pd.DataFrame(
        {
            "N": [1e8, 2e8, 5e8, 1e9, 2e9, 5e9, 1e10],
            "D": [2e9, 4e9, 1e10, 2e10, 4e10, 1e11, 2e11],
            "loss": [3.2, 3.0, 2.8, 2.6, 2.5, 2.4, 2.3],
        }
    )


def test_valid_frame(df):
    out = validate(df, chinchilla, y="loss")
    assert list(out.columns) == ["N", "D", "y"]
    np.testing.assert_allclose(out["y"], df["loss"])


def test_c_computed_as_6nd_when_needed(df):
    @bs.law(priors=dict(power_law.priors), terms={"A": ("alpha", "C")}, register=False)
    def c_law(C, *, E, A, alpha):
        return E + A * C ** (-alpha)

    out = validate(df, c_law, y="loss")
    np.testing.assert_allclose(out["C"], 6 * df["N"] * df["D"])


def test_missing_column(df):
    with pytest.raises(DataError, match=r"Column 'D' .*missing.*x=\{'D': 'your_column'\}"):
        validate(df.drop(columns="D"), chinchilla, y="loss")


def test_missing_response(df):
    with pytest.raises(DataError, match="Response column 'val_loss' is missing"):
        validate(df, chinchilla, y="val_loss")


def test_non_numeric(df):
    df["N"] = df["N"].astype(object)
    df.loc[3, "N"] = "1B"
    with pytest.raises(DataError, match=r"'N'.*numeric.*row 3: '1B'"):
        validate(df, chinchilla, y="loss")
    # a European file read with decimal points: said how to read it
    df["N"] = 1e9
    df["loss"] = df["loss"].map(lambda v: f"{v:.2f}".replace(".", ","))
    with pytest.raises(DataError, match=r"'loss'.*numeric.*has a decimal comma: read the file "
                       r"with pd\.read_csv\(path, sep=';', decimal=','\)"):
        validate(df, chinchilla, y="loss")


def test_a_true_false_column_is_not_taken_for_numbers(df):
    # pandas would turn True/False into 1.0/0.0: a constant loss of 1 fitted quietly
    with pytest.raises(DataError, match=r"'loss' \(response\) holds True/False.*astype\(float\)"):
        validate(df.assign(loss=True), chinchilla, y="loss")
    with pytest.raises(DataError, match=r"'D' \(input 'D'.*True/False"):
        validate(df.assign(D=df["D"] > 1e10), chinchilla, y="loss")


def test_a_column_that_appears_twice_is_named(df):
    # after pd.concat(axis=1) or a merge: pandas gave a TypeError from deep inside
    twice = pd.concat([df, df[["N"]]], axis=1)
    with pytest.raises(DataError, match=r"\['N'\] appear more than once.*duplicated"):
        validate(twice, chinchilla, y="loss")
    with pytest.raises(DataError, match=r"\['loss'\] appear more than once"):
        validate(pd.concat([df, df[["loss"]]], axis=1), chinchilla, y=None)
    # a repeated column the fit does not use is left alone
    extra = pd.concat([df, pd.DataFrame({"note": ["a"] * 7, "x": 1})], axis=1)
    extra.columns = ["N", "D", "loss", "note", "note"]
    assert list(validate(extra, chinchilla, y="loss").columns) == ["N", "D", "y"]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf(df, bad):
    df.loc[2, "loss"] = bad
    with pytest.raises(DataError, match=r"'loss'.*NaN or infinite.*row 2"):
        validate(df, chinchilla, y="loss")


def test_non_positive_input_and_loss(df):
    df.loc[1, "D"] = 0.0
    with pytest.raises(DataError, match=r"'D'.*positive.*row 1: 0.0"):
        validate(df, chinchilla, y="loss")
    df.loc[1, "D"] = 4e9
    df.loc[5, "loss"] = -1.0
    with pytest.raises(DataError, match=r"'loss' must be positive.*row 5: -1.0"):
        validate(df, chinchilla, y="loss")


def test_compute_that_overflows_is_named(df):
    """N = 1e300 is finite, but 6 N D is not: the fit went on with an infinite compute
    (a RuntimeWarning from numpy, NaN distances)."""
    df = df.astype({"N": float})
    df.loc[3, "N"] = 1e300
    with pytest.raises(DataError, match=r"6 N D overflows .*row 3: 1e\+300.*units of N and D"):
        validate(df, chinchilla, y="loss")


def test_misspelt_names_get_the_close_name_in_the_error(df):
    """Case, a letter too few or swapped, '-' for '_': the error names the likely fix."""
    cases = [
        (lambda: validate(df.rename(columns={"loss": "Loss"}), chinchilla, y="loss"), DataError,
         "Response column 'loss' is missing. Did you mean 'Loss'?"),
        (lambda: validate(df.rename(columns={"N": "n"}), chinchilla, y="loss"), DataError,
         "is missing. Did you mean 'n'? Available columns"),
        (lambda: validate(df.assign(family="a"), power_law, y="loss", x={"x": "N"},
                          groups=["Family"]), DataError, "Did you mean 'family'?"),
        (lambda: bs.fit(df, "chinchila"), LawError, "Did you mean 'chinchilla'?"),
        (lambda: bs.fit(df, "saturating_power_lw"), LawError,
         "Did you mean 'saturating_power_law' or 'broken_power_law'?"),
        (lambda: bs.fit(df, "chinchilla", likelihood="student_t"), LawError,
         "Did you mean 'studentt'?"),
        (lambda: bs.fit(df, "chinchilla", priors={"alpah": 0.3, "bta": 0.3}), LawError,
         "For 'alpah', did you mean 'alpha'? For 'bta', did you mean 'beta'?"),
        (lambda: chinchilla.with_priors(Alpha=0.3), LawError, "Did you mean 'alpha'?"),
        (lambda: validate(df, chinchilla, y="loss", x={"n": "N"}), DataError,
         "Did you mean 'N'?"),
        (lambda: bs.datasets.load("synthetic-chinchilla"), bs.errors.DatasetError,
         "Did you mean 'synthetic_chinchilla'?"),
    ]
    for call, error, needle in cases:
        with pytest.raises(error, match=re.escape(needle)):
            call()
    # the names tables often use: every missing input and the response, in one hint
    runs = df.rename(columns={"N": "n_params", "D": "Tokens", "loss": "eval_loss"})
    with pytest.raises(DataError, match=re.escape(
            "map them with x={'N': 'n_params', 'D': 'Tokens'}, y='eval_loss'.")):
        validate(runs, chinchilla, y=None)
    # nothing close: no hint
    with pytest.raises(LawError) as info:
        bs.fit(df, "quadratic")
    assert "Did you mean" not in str(info.value)


def test_a_column_kept_in_the_index_is_named_as_such(df):
    """After ``set_index`` or ``groupby(...).mean()`` a column sits in the index."""
    df = df.assign(family=["a", "b"] * 3 + ["a"])
    fix = "is the DataFrame's index, not a column: pass df.reset_index()."
    with pytest.raises(DataError, match=re.escape(f"Group column 'family' (named in pooled=) "
                                                  f"is missing. 'family' {fix}")):
        validate(df.set_index("family"), chinchilla, y="loss", groups=["family"])
    with pytest.raises(DataError, match=re.escape("'N' is a level of the DataFrame's index")):
        validate(df.set_index(["family", "N"]), chinchilla, y="loss")
    with pytest.raises(DataError,
                       match=re.escape(f"Response column 'loss' is missing. 'loss' {fix}")):
        validate(df.set_index("loss"), chinchilla, y="loss")
    # an unnamed index says nothing of it
    with pytest.raises(DataError) as info:
        validate(df.drop(columns="D"), chinchilla, y="loss")
    assert "index" not in str(info.value)


def test_fewer_points_than_parameters(df):
    with pytest.raises(DataError, match="Only 4 rows .* 7 free parameters"):
        bs.fit(df.iloc[:4], "chinchilla")


def test_unknown_law_lists_known(df):
    with pytest.raises(LawError, match="Known laws: .*chinchilla"):
        bs.fit(df, "chinchila")


def test_unknown_prior_name(df):
    with pytest.raises(LawError, match=r"Unknown prior name\(s\) \['gamma'\].*known names"):
        bs.fit(df, "chinchilla", priors={"gamma": ("Normal", {"mu": 0, "sigma": 1})})


def test_bad_prior_distribution_name():
    with pytest.raises(LawError, match="Unknown prior distribution 'Normall'"):
        bs.Prior("Normall", mu=0, sigma=1)


def test_x_mapping_unknown_input(df):
    with pytest.raises(DataError, match="not inputs of law 'power_law'"):
        validate(df, power_law, y="loss", x={"N": "N"})


def test_group_errors(df):
    with pytest.raises(DataError, match="Group column 'family' .*is missing"):
        validate(df, power_law, y="loss", x={"x": "N"}, groups=["family"])
    df["family"] = ["a", "a", None, "b", "b", "b", "b"]
    with pytest.raises(DataError, match="'family' has missing labels at row 2"):
        validate(df, power_law, y="loss", x={"x": "N"}, groups=["family"])


def test_pooling_over_the_response_is_a_clear_error(df):
    # pooled="loss" made every loss value a level of its own, with only a pooling warning
    with pytest.raises(DataError, match=r"Column 'loss' is named in pooled= but it is the "
                       r"response the law fits: each value would be a level of its own"):
        validate(df, chinchilla, y="loss", groups=["loss"])
    with pytest.raises(DataError, match=r"named in run= but it is the response"):
        bs.fit(df, "chinchilla", y="loss", run="loss")


def test_run_column_that_is_also_an_input_is_a_clear_error(df):
    # run="N" (one run per model size) would turn the numeric input into labels
    with pytest.raises(DataError, match=r"Column 'N' is named in run= but 'N' is also the "
                                        r"law's input 'N'.*df\['model'\] = df\['N'\]"):
        validate(df, chinchilla, y="loss", run="N")
    with pytest.raises(DataError, match="also the law's input 'N'"):
        bs.fit(df, "chinchilla", y="loss", run="N")
    # under its own name it is a run column like any other
    out = validate(df.assign(model=df["N"]), chinchilla, y="loss", run="model")
    assert out["N"].dtype == float and out["model"].iloc[0] == "100000000"


def test_whole_number_labels_are_one_level_however_pandas_stored_them(df):
    """Families 1, 2 as integers in training and as floats in the forecast's rows (one NaN
    elsewhere, or a float row joined) are the same levels, not new ones."""
    from bayescale.model import group_index

    df["family"] = [1, 1, 2, 2, 2, 3, 3]
    train = validate(df, power_law, y="loss", x={"x": "N"}, groups=["family"])
    assert train["family"].tolist() == ["1", "1", "2", "2", "2", "3", "3"]
    spec = type("Spec", (), {"levels": {"family": tuple(sorted(train["family"].unique()))}})
    new = pd.DataFrame({"N": [1e9, 1e9, 1e9, 1e9], "family": [1.0, 2, np.int64(3), 2.5]})
    rows = validate(new, power_law, y=None, x={"x": "N"}, groups=["family"], require_y=False)
    assert rows["family"].tolist() == ["1", "2", "3", "2.5"]
    np.testing.assert_array_equal(group_index(spec, "family", rows), [0, 1, 2, -1])


def test_pooled_unknown_parameter(df):
    with pytest.raises(LawError, match="pooled= names 'gamma'"):
        bs.fit(df, "power_law", x={"x": "N"}, pooled={"gamma": "family"})


def test_errors_are_value_errors():
    assert issubclass(BayescaleError, ValueError)
    assert issubclass(DataError, BayescaleError)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(draws=0), r"draws must be an integer >= 1, got 0"),
        (dict(draws=500.0), r"draws must be an integer >= 1, got 500.0"),
        (dict(tune=-1), r"tune must be an integer >= 0, got -1"),
        (dict(chains=0), r"chains must be an integer >= 1, got 0"),
        (dict(target_accept=1.2), r"target_accept must be a number strictly between 0 and 1 "
                                  r"\(0.8-0.99 is usual\)( or \"auto\")?, got 1.2"),
        (dict(random_seed=-1), r"random_seed must be None or a non-negative integer, got -1"),
        (dict(random_seed="a"), r"random_seed must be None or a non-negative integer, got 'a'"),
        (dict(random_seed=2**64), r"random_seed must be below 2\*\*64"),  # nutpie: overflow
    ],
)
def test_bad_sampler_settings_fail_before_any_work(df, kw, match):
    # raised up front, by fit, fit_batch and fit_joint alike, not from inside PyMC or NumPyro
    with pytest.raises(BayescaleError, match=match):
        bs.fit(df, "chinchilla", **kw)
    with pytest.raises(BayescaleError, match=match):
        bs.fit_batch([df, df], "chinchilla", **kw)
    with pytest.raises(BayescaleError, match=match):
        bs.fit_joint(df, "power_law", "sigmoid_of_loss", loss_x={"x": "N"}, **kw)


@pytest.mark.parametrize("kw, match", [
    (dict(warn="no"), r"warn must be True or False, got 'no'"),  # "no" was truthy
    (dict(progressbar="no"), r"progressbar must be True or False \(or None\), got 'no'"),
])
def test_switches_of_fit_are_true_or_false(df, kw, match):
    with pytest.raises(BayescaleError, match=match):
        bs.fit(df, "chinchilla", **kw)


def test_one_chain_is_reported_as_unchecked_without_numpy_warnings():
    import arviz as az

    from bayescale.sampling import diagnose

    rng = np.random.default_rng(0)
    post = {"E": rng.normal(size=(1, 400))}
    idata = az.from_dict(posterior=post, sample_stats={"diverging": np.zeros((1, 400), bool)})
    diag = diagnose(idata, ["E"])  # filterwarnings=error: an all-NaN r_hat must not warn
    assert np.isnan(diag["max_rhat"]) and diag["chains"] == 1
    assert any("only one chain" in p and "chains=4" in p for p in diag["problems"])
    assert 200 < diag["min_ess_bulk"] < 600  # independent draws: ESS near 400
    # two chains of the same draws: no such problem
    two = az.from_dict(posterior={"E": rng.normal(size=(2, 400))},
                       sample_stats={"diverging": np.zeros((2, 400), bool)})
    assert not diagnose(two, ["E"])["problems"]


def test_beta_likelihood_checks_a_trials_column_it_uses():
    # the Beta likelihood bounds scores by half a trial when an `n` column is present
    acc = pd.DataFrame({"C": np.logspace(18, 22, 8), "accuracy": np.linspace(0.2, 0.9, 8),
                        "chance": 0.25, "n": 0})
    with pytest.raises(DataError, match=r"'n' \(number of trials\) must hold positive integers"):
        bs.fit(acc, "sigmoid_compute", likelihood="beta", draws=10, tune=10)


def test_load_fit_names_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(BayescaleError, match="No saved fit at"):
        bs.load_fit(tmp_path / "none.nc")
    (tmp_path / "notes.nc").write_text("not netCDF")
    with pytest.raises(BayescaleError, match=r"'.*notes.nc' is not a saved fit"):
        bs.load_fit(tmp_path / "notes.nc")


def test_a_term_whose_input_never_varies_is_refused(df):
    # every run saw the same tokens: chinchilla's B * D^-beta is a constant beside E
    same_d = df.assign(tokens=2e10).drop(columns="D")
    with pytest.raises(DataError, match=r"Column 'tokens' \(input 'D' of law 'chinchilla'\) "
                       r"has the same value \(2e\+10\) in every row.*x=\{'x': 'N'\}"):
        bs.fit(same_d, "chinchilla", x={"D": "tokens"})
    # fixing the term is the user's way to keep the law: then nothing is refused here
    from bayescale.data import check_identifiable

    frame = validate(same_d, chinchilla, y="loss", x={"D": "tokens"})
    check_identifiable(frame, chinchilla, {"D": "tokens"}, priors={"beta": 0.3, "B": 400.0})
    check_identifiable(validate(df, chinchilla, y="loss"), chinchilla, {})
    # neither input varies: no hint to fit the other one instead
    same_both = df.assign(N=1e9, D=2e10)
    with pytest.raises(DataError, match=r"same value \(1e\+09\) in every row") as err:
        bs.fit(same_both, "chinchilla")
    assert "x={'x'" not in str(err.value)


def test_a_missing_compute_column_names_the_columns_it_could_come_from(df):
    runs = df.rename(columns={"N": "params", "D": "tokens"})
    with pytest.raises(DataError, match=r"Column 'C' .* is missing\. C is computed as 6\*N\*D "
                                        r"from columns named N and D: df\.rename\(columns="
                                        r"\{'params': 'N', 'tokens': 'D'\}\)"):
        validate(runs, power_law, y="loss", x={"x": "C"})


def test_numbers_in_other_forms_are_read_or_named_with_the_right_advice(df):
    """0-d arrays (losses gathered in a training loop), numpy constants and prior values,
    and thousands separators (once told to read them as decimal commas: 1000x too small)."""
    ref = validate(df, chinchilla, y="loss")
    cells = df.assign(loss=[np.asarray(v) for v in df["loss"]])
    pd.testing.assert_frame_equal(validate(cells, chinchilla, y="loss"), ref)
    got = validate(df.drop(columns="D"), chinchilla, y="loss", x={"D": np.int64(2e10)})
    assert (got["D"] == 2e10).all()
    from bayescale.priors import as_prior

    assert as_prior(np.int64(2), "E") == bs.Prior("Fixed", value=2.0)
    counted = df.assign(N=[f"{int(v):,}" for v in df["N"]])  # '100,000,000'
    with pytest.raises(DataError, match=r"'100,000,000' has thousands separators: read the "
                                        r"file with pd\.read_csv\(path, thousands=','\)"):
        validate(counted, chinchilla, y="loss")
    short = df.assign(N=["5,000", "10,000", "20,000", "40,000", "80,000", "160,000",
                         "320,000"])  # also a decimal comma: both readings named
    with pytest.raises(DataError, match=r"'5,000' reads as 5000 with thousands separators.*"
                                        r"or as 5\.000 with a decimal comma"):
        validate(short, chinchilla, y="loss")


def test_run_offsets_without_repeated_rows_are_refused(df):
    one_each = df.assign(model=[f"m{i}" for i in range(len(df))])
    with pytest.raises(DataError, match=r"run='model' .* every value of 'model' has a single "
                       r"row.*Drop run="):
        bs.fit(one_each, "chinchilla", run="model")
    # two checkpoints in one run are enough to tell run offsets from noise
    from bayescale.data import check_identifiable

    two = one_each.assign(model=["m0", "m0"] + [f"m{i}" for i in range(2, len(df))])
    check_identifiable(validate(two, chinchilla, y="loss", run="model"), chinchilla, {},
                       run="model")


def test_sample_stepping_down_retries_only_while_divergent():
    # the mechanism of fit(target_accept="auto") and fit_joint: a try with divergent
    # transitions is sampled again at the next rate; a number is used once, as given
    import arviz as az

    from bayescale.sampling import TARGET_ACCEPT_STEPS, sample_stepping_down

    rng = np.random.default_rng(0)
    calls = []
    divergent = {0.9: 3, 0.95: 1, 0.99: 0}

    def draw(accept):
        calls.append(accept)
        div = np.zeros((4, 250), dtype=bool)
        div[0, : divergent[accept]] = True
        return az.from_dict(posterior={"a": rng.normal(size=(4, 250))},
                            sample_stats={"diverging": div})

    kw = dict(model=None, names=["a"], what="law 'x'", link="log")
    idata, diag, record = sample_stepping_down(draw, "auto", **kw)
    assert calls == list(TARGET_ACCEPT_STEPS) and diag["divergences"] == 0
    assert record == {"target_accept_used": 0.99, "target_accept_steps":
                      "0.9 (3 divergent) -> 0.95 (1 divergent) -> 0.99 (0 divergent)"}
    calls.clear()
    _, diag, record = sample_stepping_down(draw, 0.9, **kw)
    assert calls == [0.9] and diag["divergences"] == 3
    assert record == {"target_accept_used": 0.9}


def test_a_fits_timing_covers_every_try_of_target_accept_auto(monkeypatch):
    """A first fit whose first try compiled and then diverged said compiled=False: the
    timing was that of the last try only."""
    import sys

    import arviz as az

    fitmod = sys.modules["bayescale.fit"]  # (bs.fit is the function)
    rng = np.random.default_rng(0)
    x = np.geomspace(1e6, 1e9, 8)
    df = pd.DataFrame({"x": x, "loss": 1.5 + 30 * x ** -0.3})

    def sample_compiled(spec, model, frame, *, target_accept, **kw):
        div = np.zeros((2, 50), dtype=bool)
        div[0, 0] = target_accept < 0.99  # clean at the last rate only
        post = {p: rng.normal(1.0, 0.01, size=(2, 50)) for p in ("E", "A", "alpha", "sigma",
                                                                 "nu")}
        idata = az.from_dict(posterior=post, sample_stats={"diverging": div})
        return idata, {"sample_s": 1.0, "compiled": target_accept == 0.9, "loaded": False}

    monkeypatch.setattr(fitmod, "sample_compiled", sample_compiled)
    f = bs.fit(df, "power_law", sampler="nutpie", likelihood="studentt", random_seed=0,
               draws=50, chains=2, warn=False)
    assert f.settings["target_accept_used"] == 0.99
    assert f.settings["timing"]["sample_s"] == pytest.approx(3.0)  # three tries
    assert f.settings["timing"]["compiled"] is True and f.settings["timing"]["loaded"] is False


def test_an_asymptote_fixed_beyond_the_data_is_warned_about():
    # E fixed above the smallest loss (say a perplexity-scale value for a loss column):
    # the law's mean never goes below E, so those rows could only be noise
    import warnings

    from bayescale.fit import prepare_spec

    df = pd.DataFrame({"x": [1e6, 1e7, 1e8, 1e9, 1e10, 1e11],
                       "loss": [3.2, 3.0, 2.7, 2.4, 2.2, 2.3]})
    with pytest.warns(bs.PriorWarning, match=r"E of law 'power_law' is fixed at 2.5, above the "
                      r"smallest 'loss' in the data \(2.2; 3 row\(s\) at or below it, e.g. row "
                      r"3\)\. The law's mean is never below E"):
        prepare_spec(df, "power_law", y=None, x=None, priors={"E": 2.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # below the data, or fitted: nothing to say
        prepare_spec(df, "power_law", y=None, x=None, priors={"E": 2.0})
        prepare_spec(df, "power_law", y=None, x=None, priors={"E": 0.0})
        prepare_spec(df, "power_law", y=None, x=None, priors=None)
    # a ceiling (AboveMax) fixed below the largest response
    with pytest.warns(bs.PriorWarning, match=r"e_0 of law 'm4' is fixed at 3, below the largest "
                      r"'loss' in the data \(3.2; 2 row\(s\) at or above it, e.g. row 0\)"):
        prepare_spec(df, "m4", y=None, x=None, priors={"e_0": 3.0})


class _Table:
    """A table of another library: only ``to_pandas()`` (as polars and pyarrow have)."""

    def __init__(self, frame=None, error=None):
        self.frame, self.error = frame, error

    def to_pandas(self):
        if self.error is not None:
            raise self.error
        return self.frame


def test_other_tables_are_converted_and_other_objects_named(df):
    pa = pytest.importorskip("pyarrow")  # a dependency of nutpie, so always there
    want = validate(df, chinchilla, y="loss")
    pd.testing.assert_frame_equal(validate(pa.table(df), chinchilla, y="loss"), want)
    pd.testing.assert_frame_equal(validate(_Table(df), chinchilla, y="loss"), want)
    with pytest.raises(DataError, match=r"got list\. .*pd\.DataFrame\(rows, columns"):
        validate([[1e8, 2e9, 3.2]], chinchilla, y="loss")
    with pytest.raises(DataError, match=r"to_pandas\(\) failed \(ImportError: no pyarrow\)"):
        validate(_Table(error=ImportError("no pyarrow")), chinchilla, y="loss")
    # a to_pandas() that does not give a DataFrame (a Series' or an array's own) is refused
    with pytest.raises(DataError, match="got _Table"):
        validate(_Table(df["loss"]), chinchilla, y="loss")
    with pytest.raises(DataError, match="got Series"):
        bs.filter_checkpoints(df["N"], run="model", min_fraction=0.5)


@pytest.mark.slow
def test_a_pyarrow_table_fits_and_predicts_as_its_pandas_frame(df):
    pa = pytest.importorskip("pyarrow")
    kw = dict(y="loss", likelihood="studentt", sampler="nutpie", draws=100, tune=100,
              chains=2, random_seed=3, progressbar=False)
    with warnings.catch_warnings():  # 7 rows, 100 draws: the draws matter, not their quality
        warnings.simplefilter("ignore", bs.SamplingWarning)
        warnings.simplefilter("ignore", bs.DataWarning)  # (nor the design: D = 20 N)
        f_pd = bs.fit(df, "chinchilla", **kw)
        f_pa = bs.fit(pa.table(df), "chinchilla", **kw)
    for name in ("E", "alpha", "beta"):
        np.testing.assert_array_equal(f_pa.posterior[name].values, f_pd.posterior[name].values)
    new = pd.DataFrame({"N": [7e10], "D": [1.4e12]})
    p_pd = f_pd.predict(new, extrapolation=False, random_seed=0)
    p_pa = f_pd.predict(pa.table(new), extrapolation=False, random_seed=0)
    pd.testing.assert_frame_equal(p_pa, p_pd)


def test_counts_with_a_suffix_are_named_and_parsed(df):
    sized = df.assign(N=["100M", "200M", "500M", "1B", "2B", "5B", "10b"])
    with pytest.raises(DataError, match=r"'100M' = 1e\+08\): convert them with "
                                        r"df\['N'\] = bs.parse_counts\(df\['N'\]\)"):
        validate(sized, chinchilla, y="loss")
    pd.testing.assert_frame_equal(
        validate(sized.assign(N=bs.parse_counts(sized["N"])), chinchilla, y="loss"),
        validate(df, chinchilla, y="loss"))
    # numbers pass through, NaN stays NaN; a decimal comma or a word is refused, not guessed
    got = bs.parse_counts(pd.Series(["1.4B", 7e10, None, "3e2K", "2.5 T"]))
    np.testing.assert_array_equal(got.to_numpy(), [1.4e9, 7e10, np.nan, 3e5, 2.5e12])
    with pytest.raises(DataError, match=r"row 0: '1,4B', row 1: 'big'"):
        bs.parse_counts(pd.Series(["1,4B", "big", "1M"]))
    # a column that is not counts keeps the plain advice
    with pytest.raises(DataError, match="Convert or drop those rows"):
        validate(df.assign(N=["a"] * 7), chinchilla, y="loss")


def test_rows_repeated_exactly_are_warned_before_sampling():
    from bayescale.fit import warn_repeated_rows

    df = bs.datasets.load("synthetic_chinchilla")[["N", "D", "loss"]]
    twice = pd.concat([df, df.iloc[:7]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.DataWarning)  # raised before any sampling
        with pytest.raises(bs.DataWarning, match=r"7 of the 67 rows repeat an earlier row "
                           r"exactly in \['N', 'D', 'loss'\] \(rows \[0, 1, 2, 3, 4\] \.\.\.\)"):
            bs.fit(twice, "chinchilla")
        # the user's names, the groups and the run count; replicates that differ do not warn
        named = df.rename(columns={"N": "params", "D": "tokens", "loss": "val"})
        named["family"] = ["a", "b"] * 30
        again = pd.concat([named, named.assign(family="c")])
        warn_repeated_rows(again, "chinchilla", y="val", x={"N": "params", "D": "tokens"},
                           pooled="family", run=None)
        replicate = pd.concat([df, df.assign(loss=df["loss"] * 1.01)])
        warn_repeated_rows(replicate, "chinchilla", y=None, x=None, pooled=None, run=None)
        with pytest.raises(bs.DataWarning, match=r"in \['params', 'tokens', 'val'\]"):
            warn_repeated_rows(pd.concat([named, named]), "chinchilla", y="val",
                               x={"N": "params", "D": "tokens"}, pooled=None, run=None)


def test_trial_counts_are_not_taken_from_a_size_column():
    from bayescale.data import check_trials, prepare_counts

    df = pd.DataFrame({"N": [1e7, 2e8], "C": [1e20, 1e21], "accuracy": [0.3, 0.5]})
    # no "did you mean 'N'" for the missing count column n (N is a parameter count)
    with pytest.raises(bs.DataError, match=r"column 'n' is missing\. Available columns") as err:
        prepare_counts(df, y=None, trials=None, response="accuracy")
    assert "Did you mean" not in str(err.value)
    # and N given as the counts is refused with why (was: a non-finite log density later)
    with pytest.raises(bs.DataError, match=r"Column 'N' \(number of trials: .*row 1: "
                       r"200000000\.0, more than 1e\+08: is it a model size"):
        check_trials(df, "N")
    assert check_trials(pd.DataFrame({"n": [1000, 10042]}), "n").tolist() == [1000.0, 10042.0]


@pytest.mark.parametrize(
    "values, said",
    [
        (pd.date_range("2024-01-01", periods=7), "datetime64"),
        (pd.to_timedelta(np.arange(1, 8), unit="D"), "timedelta64"),
        (np.array([1e8, 2e8, 5e8, 1e9, 2e9, 5e9, 1e10]) + 5j, "complex128"),
    ],
)
def test_dates_durations_complex_are_not_numbers(df, values, said):
    df["N"] = values
    with pytest.raises(DataError, match=f"Column 'N'.*holds {said}"):
        validate(df, chinchilla, y="loss")


def test_object_column_with_bools_or_dates_names_rows(df):
    df["loss"] = pd.Series([3.2, True, 2.8, 2.6, 2.5, 2.4, 2.3], dtype=object)
    with pytest.raises(DataError, match=r"Column 'loss'.*at row 1: True\."):
        validate(df, chinchilla, y="loss")
    df["loss"] = [3.2, 3.0, 2.8, 2.6, 2.5, 2.4, 2.3]
    df["D"] = pd.Series([2e9, 4e9, pd.Timestamp("2024-01-01"), 2e10, 4e10, 1e11, 2e11],
                        dtype=object)
    with pytest.raises(DataError, match=r"Column 'D'.*at row 2: Timestamp"):
        validate(df, chinchilla, y="loss")


def test_repeated_index_labels_name_one_value_each(df):
    df.index = [0] * len(df)
    df.loc[:, "N"] = [1e8, 2e8, -5e8, 1e9, 2e9, 5e9, 1e10]
    with pytest.raises(DataError) as err:
        validate(df, chinchilla, y="loss")
    assert str(err.value).endswith("non-positive values at row #2 (label 0): -500000000.0.")


def test_two_level_columns_refused_with_the_flattening(df):
    agg = df.groupby("N").agg(["mean"])
    with pytest.raises(DataError, match=r"two-level column names.*'_'\.join"):
        validate(agg, chinchilla, y="loss")
    with pytest.raises(DataError, match="two-level"):
        bs.data.as_rows(agg)


def test_computed_compute_names_the_bad_n_or_d(df):
    df["N"] = [1e8, 2e8, np.nan, 1e9, 2e9, 5e9, 1e10]
    df["chance"] = 0.25
    df["accuracy"] = np.linspace(0.3, 0.6, 7)
    law = bs.get_law("sigmoid_compute")
    with pytest.raises(DataError, match=r"Column 'N' \(parameters, for compute C = 6\*N\*D.*row 2"):
        validate(df, law, y="accuracy")
    df["N"] = 1e9
    df.loc[3, "D"] = -1.0
    with pytest.raises(DataError, match=r"Column 'D' .*must be positive.*row 3: -1\.0"):
        validate(df, law, y="accuracy")


def test_new_rows_of_different_lengths():
    with pytest.raises(DataError, match=r"different lengths \(\{'N': 2, 'D': 3\}\)"):
        bs.data.as_rows({"N": [1, 2], "D": [1, 2, 3]})
    # a 2-D column (a grid of sizes) is named with its shape (pandas' "Per-column arrays
    # must each be 1-dimensional" named neither)
    with pytest.raises(DataError, match=r"'N' has shape \(2, 2\).*Flatten"):
        bs.data.as_rows({"N": np.ones((2, 2)), "D": [1.0, 2.0]})
    with pytest.raises(DataError, match=r"'N' has shape \(2, 2\)"):
        bs.data.as_rows({"N": [[1.0, 2.0], [3.0, 4.0]], "D": 1.0})
    with pytest.raises(DataError, match=r"'N' holds lists"):
        bs.data.as_rows({"N": [[1.0, 2.0], [3.0]], "D": 1.0})
    assert bs.data.as_rows({"N": 7e10, "D": [1.0, 2.0]})["N"].tolist() == [7e10, 7e10]
    # a list keeps its values: a missing label stays missing (it became the text 'nan', a
    # new group forecast from the population) and 1.0 stays a number (it became '1.0')
    from bayescale.data import group_labels

    rows = bs.data.as_rows({"N": [1e8, 1e8], "family": ["a", np.nan]})
    assert rows["family"].isna().tolist() == [False, True]
    with pytest.raises(DataError, match="'family' has missing labels at row 1"):
        validate(rows, power_law, y=None, x={"x": "N"}, groups=["family"], require_y=False)
    mixed = bs.data.as_rows({"N": [1e8, 1e8], "family": [1.0, "b"]})
    assert group_labels(mixed["family"]).tolist() == group_labels(pd.Series([1, "b"])).tolist()
    assert bs.data.as_rows({"N": [1e8, 2e8]})["N"].dtype == float


def test_argument_forms_are_checked_before_anything_runs(df):
    # a list for a column name, a string for x=, a set or numbers for pooled=, a bad
    # group_scale: each once gave a raw TypeError/ValueError or, for group_scale=-0.5,
    # a NaN log density and a misleading "not finite at the initial point" after compiling
    from bayescale.fit import prepare_spec

    df["family"] = ["a", "a", "a", "b", "b", "b", "b"]
    kw = dict(y=None, x=None, priors=None)
    for bad, said in [
        (dict(y=["loss"]), r"y= takes one column name.*Pass y='loss'"),
        (dict(y="loss", run=["family"]), r"run= takes one column name.*Pass run='family'"),
        (dict(y="loss", x="N"), r"x= takes a dict from the law's inputs"),
        (dict(y="loss", x={"N": [1e10]}), r"x= maps input 'N' to \[10000000000\.0\]"),
        (dict(y="loss", trials=3), r"trials= takes one column name"),
    ]:
        with pytest.raises(DataError, match=said):
            prepare_spec(df, "chinchilla", **{**kw, **bad})
        with pytest.raises(DataError, match=said):
            bs.fit(df, "chinchilla", **{**kw, **bad})
    for pooled, said in [({"E": 3}, r"'E' is given 3"), (5, "got a int"),
                         (["family", 2], r"got \['family', 2\]")]:
        with pytest.raises(LawError, match=f"pooled= takes a column name.*{said}"):
            prepare_spec(df, "chinchilla", pooled=pooled, **{**kw, "y": "loss"})
    with pytest.warns(bs.PoolingWarning):  # 3-4 rows per family: the point is the set
        spec, _ = prepare_spec(df, "chinchilla", pooled={"family"}, **{**kw, "y": "loss"})
    assert set(spec.pooled) == {"E", "A", "alpha", "B", "beta"}
    for gs, said in [({"E": -0.5}, "gives 'E' the value -0.5"), ({"E": np.nan}, "value nan"),
                     ({"E": "big"}, "value 'big'"),
                     ({"alpha": 1.0}, "'alpha', which is not pooled")]:
        with pytest.raises(LawError, match=f"group_scale= .*{said}"):
            prepare_spec(df, "chinchilla", pooled={"E": "family"}, group_scale=gs,
                         **{**kw, "y": "loss"})


def test_group_columns_that_clash_are_named_for_what_they_are(df):
    df["family"] = ["a", "a", "a", "b", "b", "b", "b"]
    with pytest.raises(DataError, match="named in both run= and pooled="):
        validate(df, chinchilla, y="loss", groups=["family"], run="family")
    df["y"] = df["family"]
    with pytest.raises(DataError, match=r"'y' is also the name bayescale gives the response "
                                        r"\('loss'\) inside the model"):
        validate(df, chinchilla, y="loss", groups=["y"])


def test_filter_checkpoints_checks_its_arguments():
    from bayescale.data import filter_checkpoints

    df = pd.DataFrame({"model": ["a"] * 4, "D": [1e9, 5e9, 1e10, 2e10], "planned": 0.0})
    with pytest.raises(DataError, match=r"min_tokens= must be a finite number, got '1B'\. "
                                        r"Write '1B' as 1e\+09\."):
        filter_checkpoints(df, run="model", min_tokens="1B")
    with pytest.raises(DataError, match=r"run= takes one column name \(a string\), got "
                                        r"\[.model.\]"):
        filter_checkpoints(df, run=["model"], min_tokens=1e9)
    # zero planned totals once kept every row silently
    with pytest.raises(DataError, match=r"Column 'planned' .* must be positive; .*row 0: 0\.0"):
        filter_checkpoints(df, run="model", min_fraction=0.5, total="planned")


def test_a_missing_trials_column_never_suggests_a_size_column(df):
    from bayescale.fit import prepare_spec

    with pytest.raises(DataError, match=r"^Column 'n' \(named in trials=.*missing\. "
                                        r"Available") as err:
        prepare_spec(df, "chinchilla", y="loss", x=None, priors=None, trials="n")
    assert "'N'" not in str(err.value).split("Available")[0]


def test_an_input_mapped_to_the_response_is_refused():
    """x={"N": "loss"}: the law of loss against itself fitted, with a units warning at most."""
    x = np.geomspace(1e7, 1e9, 10)
    df = pd.DataFrame({"N": x, "loss": power_law(x, E=1.7, A=30.0, alpha=0.3)})
    with pytest.raises(bs.DataError, match=r"maps input 'x' of law 'power_law' to 'loss', the "
                       "response column"):
        bs.fit(df, "power_law", x={"x": "loss"})


def test_a_prior_parameter_must_be_one_number():
    """sigma="1" passed the numeric check and failed inside PyTensor; sigma=[0.1, 0.2]
    broadcast against the rows and surfaced as "sampling could not start"."""
    for bad in ("1", [0.1, 0.2], True):
        with pytest.raises(LawError, match="sigma of Normal must be one number"):
            bs.fit(pd.DataFrame({"N": [1e7, 1e8, 1e9], "loss": [4.0, 3.0, 2.5]}), "power_law",
                   x={"x": "N"}, priors={"alpha": bs.Prior("Normal", mu=0.3, sigma=bad)})


def test_priors_must_be_a_dict():
    """A Prior, a name or a list raised TypeError/ValueError from deep inside fit, or (a
    list under likelihood="auto") was taken silently."""
    df = pd.DataFrame({"N": [1e7, 1e8, 1e9], "loss": [4.0, 3.0, 2.5]})
    for bad in (bs.Prior("Normal", mu=0.3, sigma=1.0), "alpha", [("alpha", 0.3)]):
        for lik in ("auto", "studentt"):
            with pytest.raises(DataError, match="priors= takes a dict from parameter names"):
                bs.fit(df, "power_law", x={"x": "N"}, priors=bad, likelihood=lik)


def test_a_noise_scale_fixed_at_zero_or_below_is_named():
    """priors={"sigma": 0.0} read as 'sampling could not start ... the law gives NaN'."""
    df = pd.DataFrame({"N": [1e7, 1e8, 1e9], "loss": [4.0, 3.0, 2.5]})
    for fixed in ({"sigma": 0.0}, {"nu": -3.0}):
        with pytest.raises(LawError, match=rf"'{next(iter(fixed))}' is fixed at .* must be "
                           "positive"):
            bs.fit(df, "power_law", x={"x": "N"}, priors=fixed, likelihood="studentt")


def test_correlated_needs_two_parameters_pooled_over_one_column():
    """correlated=True without them modelled no correlation, unsaid (and took the slower
    uncached path); "yes" was taken as True."""
    df = pd.DataFrame({"N": np.geomspace(1e7, 1e9, 6), "loss": [4.0, 3.6, 3.2, 3.0, 2.8, 2.6],
                       "fam": list("aabbcc")})
    for kw in ({}, {"pooled": {"E": "fam"}}, {"pooled": {"E": "fam", "alpha": "model"}}):
        with pytest.raises(LawError, match="correlated=True correlates the offsets of two"):
            bs.fit(df.assign(model=list("xyxyxy")), "power_law", x={"x": "N"},
                   correlated=True, **kw)
    with pytest.raises(LawError, match="correlated= takes True or False, got 'yes'"):
        bs.fit(df, "power_law", x={"x": "N"}, correlated="yes", pooled={"E": "fam"})


def test_misused_objects_are_named():
    """Prior(None), chain(fit, "x"), load_fit(None): TypeError/AttributeError from inside."""
    with pytest.raises(LawError, match="Prior takes a distribution's name first"):
        bs.Prior(None)
    with pytest.raises(BayescaleError, match="load_fit takes a file path"):
        bs.load_fit(None)
    with pytest.raises(BayescaleError, match="chain takes two fits .* loss_fit is a str"):
        bs.chain("loss", "accuracy")


def test_batch_settings_and_empty_series_are_named():
    """fit_batch(max_tree_depth=0) raised an IndexError inside JAX, 1.5 ran (r_hat 2.1);
    fit_many([]) returned [] (fit_batch([]) already refused)."""
    df = pd.DataFrame({"N": [1e7, 1e8, 1e9], "loss": [4.0, 3.0, 2.5]})
    for depth in (0, 1.5, True):
        with pytest.raises(BayescaleError, match="max_tree_depth must be an integer >= 1"):
            bs.fit_batch([df], "power_law", x={"x": "N"}, max_tree_depth=depth)
    for empty in ([], {}):
        with pytest.raises(BayescaleError, match="fit_many needs at least one data frame"):
            bs.fit_many(empty, "power_law")


def test_messy_inputs_get_clear_errors_not_deep_tracebacks():
    """From a review feeding the API messy frames: 0-d array cells crashed the repeated-rows
    check (unhashable); a repeated trials, 'correct' or N column (the 6 N D of compute) gave
    pandas' AttributeError from deep inside; by= a number gave a TypeError."""
    import warnings

    from bayescale.fit import prepare_spec, warn_repeated_rows

    N = np.geomspace(1e8, 1e10, 6)
    loss = pd.DataFrame({"N": np.r_[N, N], "D": np.r_[20 * N, 5 * N]})
    loss["loss"] = 2.0 + 400 * loss["N"] ** -0.3 + 1e3 * loss["D"] ** -0.3
    cells = loss.assign(loss=[np.asarray(v) for v in loss["loss"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_repeated_rows(cells, "chinchilla", y=None, x=None, pooled=None, run=None)
    spec, frame = prepare_spec(cells, "chinchilla", y=None, x=None, priors=None)
    np.testing.assert_allclose(frame["y"], loss["loss"])
    acc = pd.DataFrame({"N": N, "D": 20 * N, "chance": 0.25, "n": 500,
                        "correct": [130, 150, 200, 250, 300, 350]})
    for twice in ("n", "correct", "N"):
        with pytest.raises(DataError, match=rf"\['{twice}'\] appear more than once"):
            prepare_spec(pd.concat([acc, acc[[twice]]], axis=1), "sigmoid_compute", y=None,
                         x=None, priors=None)
    with pytest.raises(DataError, match=r"by= names the column .* got 0"):
        bs.data.series_frames(acc, "fit_many", by=0)
    with pytest.raises(DataError, match=r"\['N'\] appear more than once"):
        bs.data.series_frames(pd.concat([acc, acc[["N"]]], axis=1), "fit_many", by="N")


@pytest.mark.parametrize("n, match", [(500.5, "positive integers"), (True, "True/False"),
                                      (1e12, "more than")])
def test_new_rows_trials_are_checked_as_the_training_rows(n, match):
    """n=500.5 was rounded, n=True read as one trial (interval [0, 1]), n=1e12 taken."""
    from conftest import fixed_fit

    C = np.geomspace(1e19, 1e23, 8)
    df = pd.DataFrame({"C": C, "chance": 0.25, "n": 500, "accuracy": np.linspace(0.3, 0.7, 8)})
    f = fixed_fit(df, "sigmoid_compute", {"ceiling": 0.9, "k": 1.0, "x0": 21.0})
    with pytest.raises(DataError, match=rf"New rows: Column 'n' .*{match}.*training rows"):
        f.predict({"C": [1e22], "chance": 0.25, "n": [n]}, extrapolation=False)
    assert f.predict({"C": [1e22], "chance": 0.25, "n": [400]}, extrapolation=False)[
        "median"].iloc[0] > 0.25


def test_a_number_that_is_also_a_column_name_is_ambiguous():
    """Integer column names: x={"x": 0} read 0 as a constant (non-positive values at every
    row) though column 0 held the sizes; x={"chance": 0} silently fitted chance 0."""
    N = np.geomspace(1e8, 1e10, 6)
    df = pd.DataFrame({0: N, "loss": 2 + 400 * N**-0.3})
    with pytest.raises(DataError, match=r"maps input 'x' .* to 0, which is both a number .* "
                                        r"and the name of a column"):
        validate(df, bs.get_law("power_law"), y="loss", x={"x": 0})
    ok = validate(df.rename(columns={0: "N"}).assign(c=1.0), bs.get_law("power_law"),
                  y="loss", x={"x": "N"})
    np.testing.assert_allclose(ok["x"], N)



def test_the_days_new_checks_leave_valid_input_alone():
    """A review of the day's changes: a loss law on a frame with counts was fitted to their
    fraction; a list of 0-d arrays as new rows was refused; by= an Index was refused; a user
    law named like a built-in raised a KeyError; an unlisted prior with a 0-d array
    parameter raised 'unhashable'."""
    from bayescale.fit import prepare_spec

    C = np.geomspace(1e19, 1e22, 6)
    counts = pd.DataFrame({"C": C, "correct": [100, 120, 150, 200, 250, 300], "n": 500})
    with pytest.raises(DataError, match="Response column 'loss' is missing"):
        prepare_spec(counts, "power_law", y=None, x={"x": "C"}, priors=None)
    rows = bs.data.as_rows({"C": [np.asarray(1e21), np.asarray(3e21)]})
    assert rows["C"].tolist() == [1e21, 3e21]
    df = pd.DataFrame({"curve": ["a", "a", "b"], "x": [1.0, 2.0, 1.0]})
    for by in (pd.Index(["curve"]), np.array(["curve"]), ("curve",)):
        assert bs.data.series_frames(df, "fit_many", by=by)[0] == ["a", "b"]
    pl = bs.get_law("power_law").priors

    def power_law(x, *, E, B, beta):  # a user's law named like the built-in
        return E + B * x**-beta

    with pytest.raises(bs.LawError, match="Prior of 'B': LogNormal"):
        bs.law(priors={"E": pl["E"], "B": bs.Prior("LogNormal", mu=0.0, sigma=1.0),
                       "beta": pl["alpha"]}, terms={"B": ("beta", "x")},
               register=False)(power_law)
    assert bs.Prior("SkewNormal", mu=0.0, sigma=1.0, alpha=np.asarray(2.0)).support == "real"



def test_percent_text_gets_its_hint():
    """Accuracies written '30.0%' were only 'must be numeric'."""
    df = pd.DataFrame({"C": np.geomspace(1e19, 1e22, 4), "chance": 0.25, "n": 100,
                       "accuracy": ["30.0%", "35%", "41.5 %", "50%"]})
    with pytest.raises(DataError, match=r"'30\.0%' is a percentage: give fractions.*"
                                        r"rstrip\('%'\).* / 100"):
        validate(df, bs.get_law("sigmoid_compute"), y="accuracy", extra=["n"])



def test_an_int_too_large_for_a_float_is_named():
    """A Python int of 10**400 in a column raised OverflowError from pandas."""
    df = pd.DataFrame({"x": [10**8, 10**9, 10**10, 10**400], "loss": [3.0, 2.8, 2.6, 2.5]})
    with pytest.raises(DataError, match=r"Column 'x' .* infinite values at row 3: inf"):
        validate(df, bs.get_law("power_law"), y="loss")


def test_accuracy_and_trials_as_zero_d_arrays_are_read():
    """0-d arrays (scores gathered with np.asarray in a training loop) were read in a loss
    column, but an accuracy law's count check and its trials column hit pandas'
    "len() of unsized object" TypeError."""
    from bayescale.fit import prepare_spec

    C = np.geomspace(1e18, 1e23, 20)
    acc = np.round(0.25 + 0.6 / (1 + np.exp(-2 * (np.log10(C) - 21))), 2)
    plain = pd.DataFrame({"C": C, "accuracy": acc, "n": 100, "chance": 0.25})
    _, want = prepare_spec(plain, "sigmoid_compute", y=None, x=None, priors=None)
    for df in (plain.assign(accuracy=pd.Series([np.asarray(a) for a in acc], dtype=object)),
               plain.assign(n=pd.Series([np.asarray(100)] * 20, dtype=object))):
        _, got = prepare_spec(df, "sigmoid_compute", y=None, x=None, priors=None)
        np.testing.assert_array_equal(got["y"].to_numpy(float), want["y"].to_numpy(float))
        np.testing.assert_array_equal(got["n"].to_numpy(float), np.full(20, 100.0))


def test_counts_under_another_name_are_not_told_to_divide_by_100():
    """Counts of correct answers in a column not named 'correct' (3 of 500) were refused
    with 'If it is in percent, divide by 100': doing so gave scores 5x too high (0.03 for
    0.006) that every later check accepted."""
    from bayescale.fit import prepare_spec

    C = np.geomspace(1e18, 1e23, 12)
    k = np.array([3, 4, 5, 7, 10, 16, 25, 38, 52, 66, 78, 85])
    d = pd.DataFrame({"C": C, "k": k, "questions": 500, "chance": 0.0})
    with pytest.raises(DataError, match=r"whole numbers of at most the 'questions' trials "
                                        r"\(3 of 500 at row 0\).*name the column 'correct'"):
        prepare_spec(d, "sigmoid_compute", y="k", x=None, priors=None, trials="questions")
    _, frame = prepare_spec(d.rename(columns={"k": "correct"}), "sigmoid_compute",
                            y="correct", x=None, priors=None, trials="questions")
    np.testing.assert_allclose(frame["y"], k / 500)
