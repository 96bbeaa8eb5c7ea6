"""Validation of the tidy input DataFrame.

One contract: a long DataFrame with one row per training run (or checkpoint),
columns named as the law's inputs (``N`` parameters, ``D`` tokens, ``C`` FLOPs,
...) or mapped to them with ``x={"N": "params"}``, a response column, and
optional group columns. Every problem raises :class:`~bayescale.DataError`
naming the column, the rows and the values, and saying what to do.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, close_names, did_you_mean, hints_for
from .law import RESERVED_NAMES, Law

CANONICAL = {"N": "parameters", "D": "training tokens", "C": "training FLOPs (default 6*N*D)"}

#: Names that tables of training runs often give the canonical inputs and the loss, for a
#: hint when the canonical column is missing (never mapped silently: the user confirms).
COMMON_NAMES = {
    "N": ("params", "parameters", "n_params", "num_params", "nparams", "param_count",
          "model_size", "non_embedding_params"),
    "D": ("tokens", "n_tokens", "num_tokens", "ntokens", "training_tokens", "train_tokens",
          "tokens_seen", "dataset_size"),
    "C": ("flops", "compute", "training_flops", "train_flops", "flops_used"),
    "loss": ("val_loss", "eval_loss", "validation_loss", "valid_loss", "test_loss",
             "train_loss", "training_loss", "final_loss", "lm_loss"),
}


def _alias(name: str, columns: Iterable[Any]) -> Any:
    """The first column named as tables often name ``name`` (:data:`COMMON_NAMES`)."""
    lowered = {str(c).lower(): c for c in columns}
    return next((lowered[a] for a in COMMON_NAMES.get(name, ()) if a in lowered), None)


def mapping_hint(cols: Mapping[str, Any], y: str | None, columns: Iterable[Any]) -> str:
    """A hint mapping every missing canonical input and the response to a common name.

    ``cols`` maps the law's inputs to their columns and ``y`` names the response; each of
    those that is missing from ``columns`` under its own name (``N``, ``D``, ``C``,
    ``loss``) and has a column of a common name for it (``params``, ``tokens``,
    ``val_loss``, ...) is suggested, all at once. Never applied silently.

    Examples
    --------
    >>> hint = mapping_hint({"N": "N", "D": "D"}, "loss", ["params", "tokens", "val_loss"])
    >>> hint.endswith("map them with x={'N': 'params', 'D': 'tokens'}, y='val_loss'.")
    True
    >>> mapping_hint({"N": "N", "D": "D"}, "loss", ["Params", "TOKENS", "Loss"])[-57:]
    "map them with x={'N': 'Params', 'D': 'TOKENS'}, y='Loss'."
    """
    columns = list(columns)
    x = {inp: _alias(inp, columns) for inp, col in cols.items()
         if col == inp and col not in columns}
    x = {k: v for k, v in x.items() if v is not None}
    resp = None
    if y is not None and y not in columns:  # a common name of it; 'Loss' beside other fixes
        same = {str(c).lower(): c for c in columns}.get(y.lower()) if x else None
        resp = same or _alias(y, columns)
    fixes = ["x={" + ", ".join(f"{k!r}: {v!r}" for k, v in x.items()) + "}"] if x else []
    fixes += [f"y={resp!r}"] if resp is not None else []
    if not fixes:
        return ""
    return " The table seems to name them otherwise: map them with " + ", ".join(fixes) + "."


def _compute_hint(col: object, df: pd.DataFrame) -> str:
    """For a missing ``C``: the parameter and token columns it could be computed from.

    Examples
    --------
    >>> _compute_hint("C", pd.DataFrame({"params": [1e9], "tokens": [2e10]}))[-50:]
    "df.rename(columns={'params': 'N', 'tokens': 'D'})."
    """
    if col != "C":
        return ""
    found = {}
    for canon in ("N", "D"):
        names = [canon, *COMMON_NAMES[canon]]
        found[canon] = next((c for c in df.columns if str(c).lower() in names), None)
    if not all(found.values()) or all(found[k] == k for k in found):
        return ""
    renames = {v: k for k, v in found.items() if v != k}
    return (" C is computed as 6*N*D from columns named N and D: "
            f"df.rename(columns={renames}).")


def missing_hint(name: object, df: pd.DataFrame, *, rename: bool = False) -> str:
    """Hint for a column ``name`` missing from ``df``: a close column name, or its index.

    A notebook table often carries a column in its index (after ``set_index`` or a
    ``groupby(...).mean()``), where bayescale does not look. ``rename=True``: ``name`` is
    right and the frame's column is misspelt (new rows for a fit), so the hint says to
    rename that column, not "Did you mean" it.

    Examples
    --------
    >>> df = pd.DataFrame({"loss": [3.0, 2.5]}, index=pd.Index(["a", "b"], name="family"))
    >>> missing_hint("family", df)
    " 'family' is the DataFrame's index, not a column: pass df.reset_index()."
    >>> missing_hint("Loss", df)
    " Did you mean 'loss'?"
    >>> missing_hint("Loss", df, rename=True)
    " If column 'loss' is meant, rename it: df.rename(columns={'loss': 'Loss'})."
    """
    names = [n for n in df.index.names if n is not None]
    if isinstance(name, str) and name in names:
        what = "the DataFrame's index" if len(names) == 1 else "a level of the DataFrame's index"
        return f" {name!r} is {what}, not a column: pass df.reset_index()."
    if not rename:
        return did_you_mean(name, df.columns)
    return "".join(f" If column {c!r} is meant, rename it: df.rename(columns={{{c!r}: {name!r}}})."
                   for c in close_names(name, df.columns)[:1])


def _rows(mask: np.ndarray, index: pd.Index, values: pd.Series | None = None, k: int = 5) -> str:
    """Name the first ``k`` rows where ``mask`` holds (and their values), by index label.

    Values are taken by position, so repeated index labels still show one value each;
    with repeated labels a row is named by its position too.

    Examples
    --------
    >>> _rows(np.array([False, True]), pd.Index([7, 7]), pd.Series([1.0, -2.0]))
    'row #1 (label 7): -2.0'
    """
    pos = np.flatnonzero(np.asarray(mask))
    shown = pos[:k]
    more = f" (and {len(pos) - k} more)" if len(pos) > k else ""
    repeated = index.has_duplicates
    names = [f"row #{p} (label {index[p]})" if repeated else f"row {index[p]}" for p in shown]
    if values is not None:
        vals = [np.asarray(values, dtype=object)[p] for p in shown]
        vals = [v.item() if isinstance(v, np.generic) else v for v in vals]
        return ", ".join(f"{n}: {v!r}" for n, v in zip(names, vals)) + more
    return ", ".join(names) + more


def as_frame(obj: object, what: str = "Data") -> pd.DataFrame:
    """Return ``obj`` as a pandas DataFrame, converting other tables with ``.to_pandas()``.

    A polars DataFrame, a pyarrow Table (or any table with a ``to_pandas()`` method that
    returns a pandas DataFrame) is converted; anything else gets a :class:`DataError`
    naming its type and what to pass.

    Examples
    --------
    >>> import pyarrow as pa
    >>> as_frame(pa.table({"N": [1e8, 1e9], "loss": [3.1, 2.6]})).columns.tolist()
    ['N', 'loss']
    >>> as_frame([[1e8, 3.1]])
    Traceback (most recent call last):
    ...
    bayescale.errors.DataError: Data must be a pandas DataFrame ... got list. ...
    """
    if isinstance(obj, pd.DataFrame):
        if isinstance(obj.columns, pd.MultiIndex):
            raise DataError(
                f"{what} has two-level column names (e.g. {obj.columns[0]!r}, as "
                "groupby().agg([...]) gives); name each column once: "
                "df.columns = ['_'.join(map(str, c)) for c in df.columns]."
            )
        return obj
    to_pandas = getattr(obj, "to_pandas", None)
    if callable(to_pandas):
        try:
            out = to_pandas()
        except Exception as err:  # the converter's own failure, said in its words
            raise DataError(
                f"{what}: converting the {type(obj).__name__} to pandas with .to_pandas() "
                f"failed ({type(err).__name__}: {err}). Convert it yourself and pass a pandas "
                "DataFrame."
            ) from err
        if isinstance(out, pd.DataFrame):
            return out
    raise DataError(
        f"{what} must be a pandas DataFrame (a polars DataFrame or a pyarrow Table is "
        f"converted with its .to_pandas()), got {type(obj).__name__}. A dict of columns: "
        "pd.DataFrame(d); a list of rows: pd.DataFrame(rows, columns=[...])."
    )


def from_table(obj: Any, what: str = "Data") -> Any:
    """``obj`` converted by :func:`as_frame` when it is another library's table, else as is.

    For callers with an error of their own for what is neither (a list of frames, say).

    Examples
    --------
    >>> import pyarrow as pa
    >>> type(from_table(pa.table({"N": [1e8]}))).__name__, from_table([1, 2])
    ('DataFrame', [1, 2])
    """
    if not isinstance(obj, pd.DataFrame) and callable(getattr(obj, "to_pandas", None)):
        return as_frame(obj, what)
    return obj


def check_groups_present(group_columns: Sequence[str], frame: pd.DataFrame) -> None:
    """Check that new rows (as the user gave them) carry every column the fit pools over.

    Examples
    --------
    >>> check_groups_present(["family"], pd.DataFrame({"N": [1e9]}))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescale.errors.DataError: New data lacks the group column(s) ['family'] ...
    """
    missing = [g for g in group_columns if g not in frame.columns]
    if missing:
        raise DataError(
            f"New data lacks the group column(s) {missing} that the fit pools over; add "
            "them (a label not seen in training draws its parameters from the population)."
            + "".join(missing_hint(g, frame) for g in missing)
        )


def series_frames(
    frames: Any, what: str, by: str | Sequence[str] | None = None
) -> tuple[list[Any] | None, list[pd.DataFrame]]:
    """The series of a many-series call as ``(keys, frames)``; ``keys`` is None for a list.

    ``frames`` is a dict ``{key: DataFrame}``, a list of DataFrames, a pandas
    ``DataFrameGroupBy`` (``df.groupby("curve")``), or one DataFrame with ``by=`` naming
    the column(s) whose labels split it (keys: the labels, tuples for several columns).
    Other tables (polars, pyarrow) are converted; anything else is a :class:`DataError`
    naming the item and what to pass.

    Examples
    --------
    >>> df = pd.DataFrame({"curve": ["a", "a", "b"], "x": [1.0, 2.0, 1.0]})
    >>> keys, items = series_frames(df, "fit_many", by="curve")
    >>> keys, [len(d) for d in items]
    (['a', 'b'], [2, 1])
    >>> series_frames(df.groupby("curve"), "fit_many")[0]
    ['a', 'b']
    """
    usage = (f"{what} takes one DataFrame per series: a dict {{name: DataFrame}}, a list, "
             "df.groupby(column), or one DataFrame with by=column")
    if by is not None:
        df = from_table(frames, "Data")
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"{usage}; by= needs one DataFrame, got a {type(frames).__name__}.")
        try:
            cols = [by] if isinstance(by, str) else list(by)  # a list, tuple, Index, array
        except TypeError:
            cols = []
        if not cols or not all(isinstance(c, str) for c in cols):
            raise DataError(
                f"by= names the column (or a list of columns) whose labels split the rows "
                f"into series, e.g. by='curve'; got {by!r}."
            )
        repeated_columns(df, cols)
        for col in cols:
            if col not in df.columns:
                raise DataError(
                    f"Column {col!r} (named in by=) is missing.{missing_hint(col, df)} "
                    f"Available columns: {list(df.columns)}."
                )
            bad = df[col].isna().to_numpy()
            if bad.any():
                raise DataError(
                    f"Column {col!r} (named in by=) has missing labels at "
                    f"{_rows(bad, df.index)}. Give every row a series label or drop those rows."
                )
        frames = df.groupby(by if isinstance(by, str) else cols, sort=False)
    if isinstance(frames, pd.core.groupby.DataFrameGroupBy):
        keys, items = [], []
        for key, sub in frames:
            keys.append(key[0] if isinstance(key, tuple) and len(key) == 1 else key)
            items.append(sub)
        return keys, items
    if isinstance(frames, pd.DataFrame) or callable(getattr(frames, "to_pandas", None)):
        raise DataError(f"{usage}; got one table without by=. For a single series use bs.fit.")
    if isinstance(frames, Mapping):
        keys = list(frames)
        items = [frames[k] for k in keys]
    elif isinstance(frames, Sequence) and not isinstance(frames, str):
        keys, items = None, list(frames)
    else:
        raise DataError(f"{usage}; got a {type(frames).__name__}.")
    for i, d in enumerate(items):
        name = f"series {keys[i]!r}" if keys is not None else f"item {i}"
        items[i] = d = from_table(d, name)
        if not isinstance(d, pd.DataFrame):
            raise DataError(f"{usage}; {name} is a {type(d).__name__}.")
    return keys, items


def _column(v: Any) -> np.ndarray:
    """One column of a dict of columns: a list keeps its values' types (``["a", nan]``).

    ``np.atleast_1d`` made it a text array, ``["a", "nan"]``: a missing label became a
    group named ``'nan'`` and ``[1.0, "b"]`` the label ``'1.0'``, not the fitted ``1``.

    Examples
    --------
    >>> _column(["a", np.nan]).tolist(), _column(3.0).tolist()
    (['a', nan], [3.0])
    """
    if isinstance(v, (list, tuple, range)):
        return pd.Series(list(v), dtype=None if len(v) else float).to_numpy()
    return np.atleast_1d(v)


def as_rows(new: Any, what: str = "New rows") -> Any:
    """Rows to forecast as a DataFrame.

    A dict of columns (scalars too), a list of row dicts (records), one row as a Series,
    or another table. Anything else is returned as it is, for the caller's own error.

    Examples
    --------
    >>> as_rows({"N": 7e10, "D": [1.4e12]}).to_dict("list")
    {'N': [70000000000.0], 'D': [1400000000000.0]}
    >>> as_rows([{"N": 7e10, "D": 1.4e12}, {"N": 4e11, "D": 8e12}]).to_dict("list")
    {'N': [70000000000.0, 400000000000.0], 'D': [1400000000000.0, 8000000000000.0]}
    """
    if isinstance(new, Mapping):
        cols = {k: _column(v) for k, v in new.items()}
        deep = [k for k, v in cols.items() if v.ndim > 1 or (v.dtype == object and any(
            isinstance(e, (list, tuple)) or np.ndim(e) > 0 for e in v))]
        if deep:
            def shape(v: Any) -> str:
                try:
                    return f"has shape {np.shape(v)}"
                except ValueError:  # ragged
                    return "holds lists"

            raise DataError(
                f"{what}: a dict of columns takes one value or a flat list per column; "
                f"{', '.join(f'{k!r} {shape(new[k])}' for k in deep)}. Flatten it "
                "(e.g. np.ravel), or give one column per input."
            )
        sizes = {k: len(v) for k, v in cols.items() if len(v) != 1}
        if len(set(sizes.values())) > 1:
            raise DataError(
                f"{what}: the columns have different lengths ({sizes}); give each the same "
                "number of values (or one value, used for every row)."
            )
        n = max(sizes.values(), default=1)
        return pd.DataFrame({k: np.repeat(v, n) if len(v) == 1 else v for k, v in cols.items()})
    if isinstance(new, pd.Series):  # one row, e.g. df.iloc[0]
        return new.to_frame().T.infer_objects()
    if isinstance(new, (list, tuple)) and new and all(isinstance(r, Mapping) for r in new):
        return pd.DataFrame.from_records(list(new))
    if isinstance(new, pd.DataFrame):
        return as_frame(new, what)
    return from_table(new, what)


def is_real_number(v: Any) -> bool:
    """Whether ``v`` is one real number (Python or numpy), not a bool, string or array.

    Examples
    --------
    >>> [is_real_number(v) for v in (0.25, np.float32(1), 3, True, "1", [1.0])]
    [True, True, True, False, False, False]
    """
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def is_count(v: Any, low: int = 0) -> bool:
    """Whether ``v`` is one integer (Python or numpy, not a bool) of at least ``low``.

    Examples
    --------
    >>> [is_count(v, 1) for v in (3, np.int64(1), 0, 1.5, True, "2")]
    [True, True, False, False, False, False]
    """
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and bool(v >= low)


def check_column_arguments(*, y: Any = None, x: Any = None, run: Any = None,
                           trials: Any = None, priors: Any = None) -> None:
    """Check the forms of ``y=``, ``run=``, ``trials=`` (names), ``x=`` and ``priors=`` (dicts).

    Examples
    --------
    >>> check_column_arguments(y=["loss"])
    Traceback (most recent call last):
    ...
    bayescale.errors.DataError: y= takes one column name (a string), got ['loss']. ...
    """
    for name, v, what in (("y", y, "the response"), ("run", run, "the run labels"),
                          ("trials", trials, "the number of trials")):
        if v is not None and not isinstance(v, str):
            one = f" Pass {name}={v[0]!r}." if isinstance(v, (list, tuple)) and len(v) == 1 else ""
            raise DataError(
                f"{name}= takes one column name (a string), got {v!r}.{one} It names the "
                f"column of {what}."
            )
    if priors is not None and not isinstance(priors, Mapping):
        raise DataError(
            "priors= takes a dict from parameter names to a Prior or a number (held fixed), "
            "e.g. priors={'alpha': bs.Prior('Beta', alpha=3, beta=7), 'E': 0.0}; got "
            f"{priors!r}."
        )
    if x is None:
        return
    if not isinstance(x, Mapping):
        raise DataError(
            f"x= takes a dict from the law's inputs to your columns, e.g. "
            f"x={{'N': 'params', 'D': 'tokens'}}; got {x!r}."
        )
    for inp, col in x.items():
        number = is_real_number(col)
        if number and not np.isfinite(col):
            raise DataError(f"x= gives input {inp!r} the value {col!r}; a constant must be finite.")
        if not (number or isinstance(col, str)):
            raise DataError(
                f"x= maps input {inp!r} to {col!r}; give a column name (a string) or a "
                "number used for every row (e.g. x={'chance': 0.25})."
            )


def input_columns(law: Law, x: Mapping[str, str | float] | None) -> dict[str, str | float]:
    """Map each law input to a DataFrame column (identity unless ``x`` says otherwise).

    A number instead of a column name makes the input a constant for every row
    (e.g. ``x={"chance": 0.25}`` for 4-way multiple choice).

    Examples
    --------
    >>> from bayescale.laws import power_law
    >>> input_columns(power_law, {"x": "N"})
    {'x': 'N'}
    """
    x = dict(x or {})
    unknown = set(x) - set(law.inputs)
    if unknown:
        # allow the CLI style "N=params" for laws whose inputs are canonical
        raise DataError(
            f"x= maps {sorted(unknown)}, which are not inputs of law {law.name!r}; "
            f"its inputs are {list(law.inputs)}. Use x={{input: column}}."
            + hints_for(sorted(unknown), law.inputs)
        )
    return {inp: x.get(inp, inp) for inp in law.inputs}


#: suffixes of counts as model tables write them ("70M", "1.4B", "300B tokens" -> "300B")
COUNT_SUFFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_counts(values: pd.Series, errors: str = "raise") -> pd.Series:
    """Numbers written with a magnitude suffix, as model tables do: ``"70M"`` -> ``7e7``.

    K = 1e3, M = 1e6, B (or G) = 1e9, T = 1e12, upper or lower case; numbers pass through.
    ``errors="coerce"`` gives NaN where a value is neither, ``"raise"`` a DataError naming it.

    Examples
    --------
    >>> parse_counts(pd.Series(["70M", "1.4B", "300b", 2e10])).tolist()
    [70000000.0, 1400000000.0, 300000000000.0, 20000000000.0]
    >>> parse_counts(pd.Series(["1,4B"]))
    Traceback (most recent call last):
    ...
    bayescale.errors.DataError: Not a number ... '1,4B' has a decimal comma: write '1.4B'.
    """
    text = values.astype(str).str.strip()
    parts = text.str.extract(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([KMBGTkmbgt]?)$")
    scale = parts[1].str.upper().map(COUNT_SUFFIXES)
    out = pd.to_numeric(parts[0], errors="coerce") * scale
    out = out.where(values.notna())
    bad = out.isna() & values.notna()
    if errors == "raise" and bad.any():
        comma = text[bad].str.fullmatch(r"[-+]?\d+,\d+\s*[KMBGTkmbgt]?")
        hint = (f" {text[bad].iloc[0]!r} has a decimal comma: write "
                f"{text[bad].iloc[0].replace(',', '.')!r}." if comma.iloc[0] else "")
        raise DataError(
            "Not a number or a count with a K/M/B/T suffix: "
            f"{_rows(bad.to_numpy(), values.index, values)}.{hint}"
        )
    return out.astype(float).rename(values.name)


#: values that pandas would turn into numbers but that are not measurements
_NOT_NUMBERS = (bool, np.bool_, complex, np.complexfloating, datetime.date, datetime.time,
                datetime.timedelta, np.datetime64, np.timedelta64, pd.Period, pd.Interval)


def _loose_number(v: Any) -> Any:
    """A cell as ``pd.to_numeric`` can take it.

    An int beyond a float's range is inf (said as infinite by the finiteness check), text
    stays, anything else (arrays, lists) is None.
    """
    if isinstance(v, int) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            return np.inf if v > 0 else -np.inf
    return v if isinstance(v, (float, str)) else None


def _items(s: pd.Series) -> pd.Series:
    """A column's 0-d arrays as their numbers.

    Values gathered with np.asarray or jnp.asarray in a training loop; pandas'
    to_numeric raised "len() of unsized object" on them.
    """
    if s.dtype != object:
        return s
    return s.map(lambda v: v.item() if getattr(v, "ndim", None) == 0 and hasattr(v, "item")
                 else v)


def coerced(s: pd.Series) -> pd.Series:
    """A column's numbers where it has them, NaN elsewhere; never raises.

    For checks that leave other values to the column's own check: 0-d arrays are read,
    ints beyond a float's range are infinite, other cells NaN.

    Examples
    --------
    >>> coerced(pd.Series([np.asarray(0.5), "x", 10**400, 2], dtype=object)).tolist()
    [0.5, nan, inf, 2.0]
    """
    s = _items(s)
    try:
        return pd.to_numeric(s, errors="coerce")
    except (TypeError, ValueError, OverflowError):  # cells pandas cannot read at all
        return pd.to_numeric(s.map(_loose_number), errors="coerce")  # (arrays, 10**400)


def repeated_columns(df: pd.DataFrame, cols: Any) -> None:
    """A DataError when a column the fit reads appears more than once in ``df``.

    ``df[col]`` is then a DataFrame, and pandas' own error came from deep inside.
    """
    twice = sorted({c for c in cols if isinstance(c, str) and (df.columns == c).sum() > 1})
    if twice:
        raise DataError(
            f"Column(s) {twice} appear more than once in the DataFrame (after a concat or "
            "merge?), so the values to use are ambiguous. Keep one of each: "
            "df = df.loc[:, ~df.columns.duplicated()]."
        )


def _numeric(df: pd.DataFrame, col: str, role: str) -> pd.Series:
    repeated_columns(df, [col])  # the trials, 'correct', N and D of 6 N D read here too
    s = df[col]
    if pd.api.types.is_bool_dtype(s):
        raise DataError(
            f"Column {col!r} ({role}) holds True/False values, not numbers: is it the "
            "intended column? If 0/1 is meant, convert it with df[col].astype(float)."
        )
    kind = getattr(s.dtype, "kind", "O")
    if kind in "mMc" or isinstance(s.dtype, (pd.DatetimeTZDtype, pd.PeriodDtype,
                                              pd.IntervalDtype)):
        raise DataError(
            f"Column {col!r} ({role}) holds {s.dtype} values (dates, durations or complex "
            "numbers), not real numbers: is it the intended column? Map the right one "
            "with x={input: column} or y=, or convert it to numbers yourself."
        )
    if s.dtype == object:
        s = _items(s)
        odd = s.map(lambda v: isinstance(v, _NOT_NUMBERS)).to_numpy(dtype=bool)
        if odd.any():
            raise DataError(
                f"Column {col!r} ({role}) mixes numbers with True/False, dates or complex "
                f"values at {_rows(odd, df.index, s)}. Fix or drop those rows."
            )
    if not pd.api.types.is_numeric_dtype(s):
        conv = coerced(s)
        bad = conv.isna() & s.notna()
        if bad.any():
            counts = parse_counts(s[bad], errors="coerce")
            text = s[bad].astype(str).str.strip()
            thousands = text.str.fullmatch(r"-?\d{1,3}(,\d{3})+")
            comma = text.str.fullmatch(r"-?\d+,\d+")
            percent = text.str.fullmatch(r"-?\d+(\.\d*)?\s*%")
            first = s[bad].iloc[0]
            hint = (
                f" {first!r} is a percentage: give fractions, e.g. "
                f"df[{col!r}] = df[{col!r}].str.rstrip('%').astype(float) / 100."
                if percent.all()
                else f" They read as counts with a suffix ({first!r} = "
                f"{counts.iloc[0]:.3g}): convert them with "
                f"df[{col!r}] = bs.parse_counts(df[{col!r}]), or write them as numbers "
                "in the file."
                if counts.notna().all()
                else f" {first!r} reads as {text.iloc[0].replace(',', '')} with thousands "
                "separators: read the file with pd.read_csv(path, thousands=','), or as "
                f"{text.iloc[0].replace(',', '.')} with a decimal comma: "
                "pd.read_csv(path, sep=';', decimal=',')."
                if thousands.all() and comma.all()
                else f" {first!r} has thousands separators: read the file with "
                "pd.read_csv(path, thousands=',')."
                if thousands.all()
                else f" {first!r} has a decimal comma: read the file with "
                "pd.read_csv(path, sep=';', decimal=','), or write decimal points."
                if comma.all()
                else " Convert or drop those rows."
            )
            raise DataError(
                f"Column {col!r} ({role}) must be numeric; non-numeric values at "
                f"{_rows(bad.to_numpy(), df.index, s)}.{hint}"
            )
        s = conv
    return s.astype(float)


def compute_6nd(df: pd.DataFrame, n: str, d: str, role: str, *,
                positive: bool = False) -> pd.Series:
    """Compute ``C = 6 N D`` from columns ``n`` and ``d``, each read as finite numbers.

    ``role`` says what they are for in an error (``{what}``: "parameters" or "tokens");
    ``positive``: non-positive values are an error too.

    Examples
    --------
    >>> compute_6nd(pd.DataFrame({"N": [1e9], "D": [2e10]}), "N", "D", "{what}").tolist()
    [1.2e+20]
    """
    parts = []
    for c, what in ((n, "parameters"), (d, "tokens")):
        r = role.format(what=what)
        v = _numeric(df, c, r)
        _check_finite(df, v, c, r)
        if positive:
            bad = (v <= 0).to_numpy()
            if bad.any():
                raise DataError(
                    f"Column {c!r} ({r}) must be positive; non-positive values "
                    f"at {_rows(bad, df.index, v)}."
                )
        parts.append(v)
    return 6.0 * parts[0] * parts[1]


def _check_finite(df: pd.DataFrame, s: pd.Series, col: str, role: str) -> None:
    bad = ~np.isfinite(s.to_numpy())
    if bad.any():
        raise DataError(
            f"Column {col!r} ({role}) has NaN or infinite values at "
            f"{_rows(bad, df.index, s)}. Drop or fill those rows."
        )


def group_labels(values: pd.Series) -> pd.Series:
    """Group labels as text, a whole number the same however pandas stored it.

    ``1``, ``1.0`` and ``np.int64(1)`` are all ``'1'``: a column of integer labels turns
    into floats as soon as one row is missing or a row of floats joins it, and the same
    family must not become a new level in the forecast. Other values use ``str``.

    Examples
    --------
    >>> group_labels(pd.Series([1.0, 2, "a", 2.5])).tolist()
    ['1', '2', 'a', '2.5']
    """
    def one(v: Any) -> str:
        if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return values.map(one).astype(str)


def validate(
    df: pd.DataFrame,
    law: Law,
    *,
    y: str | None,
    x: Mapping[str, str] | None = None,
    groups: Iterable[str] = (),
    run: str | None = None,
    n_params: int | None = None,
    require_y: bool = True,
    extra: Iterable[str] = (),
) -> pd.DataFrame:
    """Check ``df`` against ``law`` and return a clean frame with canonical names.

    The returned frame has one column per law input (named as the law's inputs),
    ``y`` (float response) when ``require_y``, the group columns as strings, the
    ``run`` column and any ``extra`` columns, with the original index.

    Examples
    --------
    >>> from bayescale.laws import power_law
    >>> df = pd.DataFrame({"params": [1e8, 1e9, 1e10], "loss": [3.1, 2.6, 2.3]})
    >>> validate(df, power_law, y="loss", x={"x": "params"}).columns.tolist()
    ['x', 'y']
    >>> validate(df, power_law, y="loss")
    Traceback (most recent call last):
    ...
    bayescale.errors.DataError: Column 'x' (input 'x' of law 'power_law') is missing. ...
    """
    df = as_frame(df)
    if len(df) == 0:
        raise DataError(
            "The DataFrame has no rows; pass at least one (a row selection may have kept none)."
        )
    cols = input_columns(law, x)
    named = [c for c in cols.values() if isinstance(c, str)]
    response = (y or law.response) if require_y else None
    named += [c for c in (response, run, *groups, *extra) if isinstance(c, str)]
    repeated_columns(df, named)
    as_response = [inp for inp, col in cols.items() if isinstance(col, str) and col == response]
    if as_response:  # a law of its own response: it fits, and explains nothing
        raise DataError(
            f"x maps input {as_response[0]!r} of law {law.name!r} to {response!r}, the "
            f"response column; map it to the column that holds {as_response[0]!r} "
            f"({CANONICAL.get(as_response[0], 'its values')}), or give y= the response."
        )
    out = pd.DataFrame(index=df.index)
    for inp, col in cols.items():
        role = f"input {inp!r} of law {law.name!r}"
        if is_real_number(col):  # a constant (numpy's too: x={"chance": df.chance[0]})
            if any(is_real_number(c) and c == col for c in df.columns):
                raise DataError(
                    f"x maps input {inp!r} of law {law.name!r} to {col!r}, which is both a "
                    f"number (a constant for every row) and the name of a column: which is "
                    f"meant? Name the columns with text (df.columns = df.columns.astype(str), "
                    f"then x={{{inp!r}: '{col}'}}), or rename that column to keep the constant."
                )
            s = pd.Series(float(col), index=df.index)
        elif col not in df.columns:
            if col == "C" and {"N", "D"} <= set(df.columns):  # any input mapped to C
                s = compute_6nd(df, "N", "D",
                                f"{{what}}, for compute C = 6*N*D of law {law.name!r}",
                                positive=True)
            else:
                hint = f" ({CANONICAL[inp]})" if inp in CANONICAL else ""
                if inp == "chance":
                    raise DataError(
                        f"Column {col!r} ({role}: the chance level, known from the task, "
                        "e.g. 0.25 for 4-way multiple choice, 0 for exact match) is missing. "
                        "Add a 'chance' column or pass a constant with x={'chance': 0.25}; "
                        "the chance level is never fitted."
                    )
                close = mapping_hint(cols, response, df.columns) or _compute_hint(col, df)
                raise DataError(
                    f"Column {col!r} ({role}{hint}) is missing."
                    f"{close or missing_hint(col, df)} Available columns: "
                    f"{list(df.columns)}. Rename it or map it with x={{{inp!r}: 'your_column'}}."
                )
        else:
            s = _numeric(df, col, role)
        _check_finite(df, s, col, role)
        if law.is_positive(inp):
            bad = (s <= 0).to_numpy()
            if bad.any():
                raise DataError(
                    f"Column {col!r} ({role}) must be positive (the law takes its log); "
                    f"non-positive values at {_rows(bad, df.index, s)}."
                )
        out[inp] = s
    if {"N", "D"} <= set(out) and "C" not in law.inputs:  # the scale is 6 N D
        with np.errstate(over="ignore"):
            c = 6.0 * out["N"].to_numpy(dtype=float) * out["D"].to_numpy(dtype=float)
        bad = ~np.isfinite(c)
        if bad.any():
            raise DataError(
                f"Compute 6 N D overflows (beyond 1e308 FLOPs) at {_rows(bad, df.index, out['N'])} "
                "(values of N shown): no model is that large; check the units of N and D."
            )
    if require_y:
        if y is None:
            y = law.response
        if y not in df.columns:
            close = mapping_hint(cols, y, df.columns)
            raise DataError(
                f"Response column {y!r} is missing.{close or missing_hint(y, df)} "
                f"Available columns: {list(df.columns)}. "
                "Pass y='your_column'."
            )
        s = _numeric(df, y, "response")
        _check_finite(df, s, y, "response")
        if law.link == "log":
            bad = (s <= 0).to_numpy()
            if bad.any():
                raise DataError(
                    f"Response column {y!r} must be positive for law {law.name!r} (fitted on "
                    f"the log scale); non-positive values at {_rows(bad, df.index, s)}."
                )
        if law.response == "accuracy":
            bad = ((s < 0) | (s > 1)).to_numpy()
            if bad.any():
                raise DataError(
                    f"Accuracy column {y!r} must lie in [0, 1] for law {law.name!r}; values "
                    f"outside at {_rows(bad, df.index, s)}. If it is in percent, divide by 100."
                )
        out["y"] = s
    if "chance" in law.inputs:
        _check_chance(out, df.index, cols["chance"], groups if require_y else ())
    if run and run in set(groups):
        raise DataError(
            f"Column {run!r} is named in both run= and pooled=: a run offset per level of "
            "the column the parameters are pooled over duplicates the pooling. Use run= for "
            "checkpoints of one training run, pooled= for families or tasks of several runs."
        )
    law_columns = set(out.columns)
    for g in list(groups) + ([run] if run else []):
        role = "run=" if g == run else "pooled="
        if g not in df.columns:
            raise DataError(
                f"Group column {g!r} (named in {role}) is missing.{missing_hint(g, df)} "
                "Available columns: "
                f"{list(df.columns)}. Add the column or remove {g!r} from {role}."
            )
        if response is not None and g == response:  # every loss value its own level
            raise DataError(
                f"Column {g!r} is named in {role} but it is the response the law fits: each "
                f"value would be a level of its own. Name the column of labels (family, "
                f"task, model) in {role}"
            )
        if g in law_columns:
            named = f" ({response!r})" if response else ""
            used = (f"the name bayescale gives the response{named} inside the model"
                    if g == "y" else f"the law's input {g!r} of law {law.name!r}")
            raise DataError(
                f"Column {g!r} is named in {role} but {g!r} is also {used}; labels and "
                f"values cannot share the name. Copy it under a new name "
                f"(df['model'] = df[{g!r}]) and pass {role}'model'."
            )
        taken = (f"a parameter of law {law.name!r}" if g in law.params
                 else "the name of one of the model's own variables" if g in RESERVED_NAMES
                 else "a dimension of ArviZ's posterior" if g in ("chain", "draw", "sample")
                 else None)
        if taken:  # the group's dimension takes the column's name, beside the variables
            raise DataError(
                f"Column {g!r} is named in {role} but {g!r} is also {taken}, and the "
                f"model names the group's levels after the column; they cannot share the "
                f"name. Copy it under a new name (df['model'] = df[{g!r}]) and pass "
                f"{role}'model'."
            )
        lab = df[g]
        bad = lab.isna().to_numpy()
        if bad.any():
            raise DataError(
                f"Group column {g!r} has missing labels at {_rows(bad, df.index)}. "
                "Give every row a group label or drop those rows."
            )
        out[g] = group_labels(lab)
    for e in extra:
        if e not in df.columns:
            raise DataError(
                f"Column {e!r} is missing.{missing_hint(e, df)} Available columns: "
                f"{list(df.columns)}."
            )
        out[e] = df[e]
    if n_params is not None and require_y and len(out) < n_params:
        raise DataError(
            f"Only {len(out)} rows for a model with {n_params} free parameters "
            f"(law {law.name!r}); add data, fix parameters with priors={{name: value}}, "
            "or choose a simpler law."
        )
    return out


def _check_chance(out: pd.DataFrame, index: pd.Index, col, groups: Iterable[str]) -> None:
    """Chance in [0, 1) and not above the best observed accuracy of its rows."""
    c = out["chance"]
    name = col if isinstance(col, str) else f"x={{'chance': {col}}}"
    bad = ((c < 0) | (c >= 1)).to_numpy()
    if bad.any():
        raise DataError(
            f"Chance level {name!r} must lie in [0, 1) (a probability; 0 for exact match); "
            f"bad values at {_rows(bad, index, c)}. If it is in percent, divide by 100."
        )
    if "y" not in out.columns:
        return
    keys = [g for g in groups if g in out.columns]
    frame = out.assign(_c=c)
    grouped = frame.groupby(keys + ["_c"]) if keys else frame.groupby("_c")
    for key, sub in grouped:
        cval = float(sub["_c"].iloc[0])
        best = float(sub["y"].max())
        # allow binomial noise: a task at chance scatters a little below it
        tol = 0.02 + 2.0 * np.sqrt(cval * (1 - cval) / 100.0)
        if cval > best + tol:
            where = f" for group {key!r}" if keys else ""
            raise DataError(
                f"Chance level {cval:g}{where} is above every observed accuracy (best "
                f"{best:.4g}): the chance level or the accuracy column is wrong. Check "
                "'chance' (e.g. 0.25 for 4-way multiple choice) or drop that task."
            )


def check_identifiable(
    frame: pd.DataFrame,
    law: Law,
    x: Mapping[str, str | float],
    *,
    priors: Mapping[str, object] | None = None,
    run: str | None = None,
) -> None:
    """Refuse data that cannot identify the model at all (NUTS would only report a mess).

    * An input of a power-law term with one value in every row (``chinchilla`` on runs
      that all saw the same tokens): the term ``B * D**-beta`` is then a constant that
      cannot be told apart from ``E``, unless the user fixed its coefficient or exponent.
    * ``run=`` where every run has one row: run offsets cannot be told apart from the
      noise (a funnel: hundreds of divergences), and there is nothing to share.

    ``frame`` is validated (canonical input names). Raises :class:`DataError`.

    Examples
    --------
    >>> import bayescale as bs
    >>> df = pd.DataFrame({"N": [1e8, 1e9, 1e10], "D": 2e10, "y": [3.0, 2.6, 2.3]})
    >>> check_identifiable(df, bs.get_law("chinchilla"), {"N": "N", "D": "tokens"})
    Traceback (most recent call last):
    ...
    bayescale.errors.DataError: Column 'tokens' (input 'D' of law 'chinchilla') has the ...
    """
    from .priors import as_prior

    merged = {**law.priors, **(priors or {})}
    fixed = {k for k, v in merged.items() if as_prior(v, k).dist == "Fixed"}
    for coef, (expo, inp) in law.terms.items():
        values = frame[inp].unique()
        if len(values) > 1 or coef in fixed or expo in fixed:
            continue
        col = x.get(inp, inp)
        others = [i for i in law.inputs
                  if i != inp and law.is_positive(i) and frame[i].nunique() > 1]
        hint = (
            f"fit a law of the input that varies (bs.fit(df, 'power_law', x={{'x': "
            f"{x.get(others[0], others[0])!r}}})), or " if len(others) == 1 else ""
        )
        raise DataError(
            f"Column {col!r} (input {inp!r} of law {law.name!r}) has the same value "
            f"({values[0]:.4g}) in every row, so the term {coef} * {inp}^-{expo} is a "
            f"constant the data cannot tell apart from the others: {hint}add rows with other "
            f"values of {col!r}, or fix the term (priors={{{expo!r}: value, {coef!r}: value}})."
        )
    if run and len(frame) > 1 and frame[run].nunique() == len(frame):
        raise DataError(
            f"run={run!r} gives each training run an offset shared by its checkpoints, but "
            f"every value of {run!r} has a single row: the offsets cannot be told apart from "
            "the noise. Drop run= (one row per run needs none), or pass the column that "
            "identifies the runs whose checkpoints these rows are."
        )


#: Most trials (questions) one evaluation may count: more is a size column taken for counts.
MAX_TRIALS = 1e8


def check_trials(df: pd.DataFrame, n_col: str) -> pd.Series:
    """The trial counts ``df[n_col]`` as floats; a DataError naming rows unless positive integers.

    Examples
    --------
    >>> check_trials(pd.DataFrame({"n": [100, 50]}), "n").tolist()
    [100.0, 50.0]
    """
    n = _numeric(df, n_col, "number of trials")
    _check_finite(df, n, n_col, "number of trials")
    bad = ((n < 1) | (np.abs(n - np.rint(n)) > 1e-9)).to_numpy()
    if bad.any():
        raise DataError(
            f"Column {n_col!r} (number of trials) must hold positive integers; bad values at "
            f"{_rows(bad, df.index, n)}."
        )
    huge = (n > MAX_TRIALS).to_numpy()
    if huge.any():
        raise DataError(
            f"Column {n_col!r} (number of trials: questions per evaluation) holds "
            f"{_rows(huge, df.index, n)}, more than {MAX_TRIALS:.0e}: is it a model size or a "
            "token count? Pass the column of question counts (trials='your_column'), or use "
            "likelihood='beta' when only a score is known."
        )
    return n


def prepare_counts(
    df: pd.DataFrame, *, y: str | None, trials: str | None, response: str
) -> tuple[pd.DataFrame, str, str]:
    """Check trial counts and turn ``correct`` counts into an accuracy column.

    Returns ``(df, y, trials)`` where ``df[y]`` is the accuracy fraction and
    ``df[trials]`` the number of trials (a positive integer) of each row. Counts
    come as ``correct`` and ``n`` columns, or as an accuracy column and ``n``.

    Examples
    --------
    >>> d = pd.DataFrame({"C": [1e20, 1e21], "correct": [30, 60], "n": [100, 100]})
    >>> out, y, n = prepare_counts(d, y=None, trials=None, response="accuracy")
    >>> y, n, out[y].tolist()
    ('accuracy', 'n', [0.3, 0.6])
    """
    n_col = trials or "n"
    not_sizes = [c for c in df.columns if c not in {"N", "D", "C"}]  # never a count's hint
    if n_col not in df.columns:
        raise DataError(
            f"This likelihood needs the number of trials (questions) per row: column "
            f"{n_col!r} is missing.{missing_hint(n_col, df[not_sizes])} Available columns: "
            f"{list(df.columns)}. Add it, pass "
            "trials='your_column', or use likelihood='beta' when only a score is known."
        )
    n = check_trials(df, n_col)
    counts = y == "correct" or (y is None and response not in df.columns and "correct" in df)
    if not counts:
        _check_whole_counts(df, y or response, n_col, n)
        return df, y or response, n_col
    k = _numeric(df, "correct", "number correct")
    _check_finite(df, k, "correct", "number correct")
    bad = ((k < 0) | (np.abs(k - np.rint(k)) > 1e-9)).to_numpy()
    if bad.any():
        raise DataError(
            "Column 'correct' must hold non-negative integer counts; bad values at "
            f"{_rows(bad, df.index, k)}."
        )
    bad = (k > n).to_numpy()
    if bad.any():
        raise DataError(
            f"Column 'correct' exceeds the number of trials {n_col!r} at "
            f"{_rows(bad, df.index, k)} (correct must be <= {n_col}). Check the two columns."
        )
    out = df.copy()
    out["accuracy"] = k / n
    return out, "accuracy", n_col


#: how far a score may lie from every count of its ``n`` trials: published scores are
#: rounded, to two decimals at the coarsest (0.43 for 3 of 7)
COUNT_ROUNDING = 0.005


def _check_whole_counts(df: pd.DataFrame, y: str, n_col: str, n: pd.Series) -> None:
    """Refuse a score that no whole count of its row's trials gives, even rounded.

    A count likelihood takes ``round(score * n)`` correct answers; a score further than
    :data:`COUNT_ROUNDING` from every ``k / n`` (0.5 of 3 questions) says that ``n`` is
    not the score's number of trials, and rounding it would change the data unsaid.
    Scores that are not numbers in ``[0, 1]`` get the response check's error instead.
    """
    if y not in df.columns or (df.columns == y).sum() > 1:
        return
    acc = coerced(df[y]).to_numpy(dtype=float)
    trials = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        whole = (acc >= 0) & (acc <= trials) & (np.abs(acc - np.rint(acc)) < 1e-9)
    if whole.all() and (acc > 1).any():  # counts of correct answers, not scores
        i = int(np.argmax(acc > 1))
        raise DataError(
            f"Accuracy column {y!r} holds whole numbers of at most the {n_col!r} trials "
            f"({acc[i]:g} of {trials[i]:g} at row {df.index[i]!r}), not scores in [0, 1]. If "
            f"they count correct answers, name the column 'correct' (df = df.rename("
            f"columns={{{y!r}: 'correct'}}), and y='correct' if you pass y=) to fit them as "
            f"counts; if they are percentages, divide by 100."
        )
    with np.errstate(invalid="ignore"):
        gap = np.abs(acc - np.rint(acc * trials) / trials)
        bad = (acc >= 0) & (acc <= 1) & (gap > COUNT_ROUNDING)
    if bad.any():
        i = int(np.argmax(bad))
        k = acc[i] * trials[i]
        lo, hi = np.floor(k) / trials[i], np.ceil(k) / trials[i]
        raise DataError(
            f"Column {y!r} is not a whole number of the {n_col!r} trials at "
            f"{_rows(bad, df.index, df[y])}: at row {df.index[i]!r}, {acc[i]:g} of "
            f"{trials[i]:g} is {k:g} correct answers (the nearest scores are {lo:.4g} and "
            f"{hi:.4g}). The count likelihood counts correct answers: check that {n_col!r} "
            "is each score's number of questions, give the counts as a 'correct' column, "
            "or use likelihood='beta' for scores that are not counts."
        )


def filter_checkpoints(
    df: pd.DataFrame,
    *,
    run: str,
    D: str = "D",
    min_tokens: float | None = None,
    min_fraction: float | None = None,
    total: str | None = None,
) -> pd.DataFrame:
    """Drop early checkpoints of each training run before fitting.

    Early checkpoints (roughly the first 10B tokens, or a small fraction of a run's
    schedule) sit above the curve of fully trained models and bias fitted laws
    (LAWS.md section 5). Keep a row when its token count ``D`` is at least
    ``min_tokens`` and at least ``min_fraction`` of its run's length. The run's
    length is the ``total`` column when given (planned tokens of the run), else
    the largest ``D`` of that run in ``df``. Pair it with ``bs.fit(..., run=run)``
    so the checkpoints kept are not counted as independent models.

    Parameters
    ----------
    df : DataFrame
        One row per checkpoint.
    run : str
        Column identifying the training run of each checkpoint.
    D : str
        Column with the tokens seen at the checkpoint (default ``"D"``).
    min_tokens : float, optional
        Absolute threshold on ``D``.
    min_fraction : float, optional
        Threshold on ``D / run length``, in ``(0, 1]``.
    total : str, optional
        Column with each run's planned total tokens.

    Returns
    -------
    DataFrame
        The rows kept (same columns and index).

    Examples
    --------
    >>> df = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 2,
    ...                    "D": [1e9, 5e9, 1e10, 2e10, 2e9, 4e9]})
    >>> filter_checkpoints(df, run="model", min_fraction=0.5)["D"].tolist()
    [10000000000.0, 20000000000.0, 2000000000.0, 4000000000.0]
    >>> filter_checkpoints(df, run="model", min_tokens=5e9)["D"].tolist()
    [5000000000.0, 10000000000.0, 20000000000.0]
    """
    df = as_frame(df)
    if min_tokens is None and min_fraction is None:
        raise DataError("filter_checkpoints needs min_tokens=, min_fraction= or both.")
    for name, v in (("min_tokens", min_tokens), ("min_fraction", min_fraction)):
        if v is not None and not (is_real_number(v) and np.isfinite(v)):
            read = parse_counts(pd.Series([v]), "coerce").iloc[0] if isinstance(v, str) else None
            count = f" Write {v!r} as {read:.3g}." if read is not None and np.isfinite(read) else ""
            raise DataError(f"{name}= must be a finite number, got {v!r}.{count}")
    for col, role in [(run, "run="), (D, "D="), (total, "total=")]:
        if col is not None and not isinstance(col, str):
            raise DataError(f"{role} takes one column name (a string), got {col!r}.")
        if col is not None and col not in df.columns:
            raise DataError(
                f"Column {col!r} (named in {role}) is missing.{missing_hint(col, df)} "
                f"Available columns: {list(df.columns)}."
            )
    lab = df[run]
    if lab.isna().any():
        raise DataError(
            f"Run column {run!r} has missing labels at {_rows(lab.isna().to_numpy(), df.index)}. "
            "Give every checkpoint a run label or drop those rows."
        )
    d = _numeric(df, D, "tokens")
    _check_finite(df, d, D, "tokens")
    keep = np.ones(len(df), dtype=bool)
    if min_tokens is not None:
        keep &= (d >= float(min_tokens)).to_numpy()
    if min_fraction is not None:
        if not 0.0 < float(min_fraction) <= 1.0:
            raise DataError(f"min_fraction must be in (0, 1], got {min_fraction!r}.")
        if total is not None:
            length = _numeric(df, total, "planned tokens of the run")
            _check_finite(df, length, total, "planned tokens of the run")
            bad = (length <= 0).to_numpy()
            if bad.any():
                raise DataError(
                    f"Column {total!r} (planned tokens of the run) must be positive; "
                    f"non-positive values at {_rows(bad, df.index, length)}."
                )
        else:
            length = d.groupby(lab).transform("max")
        keep &= (d >= float(min_fraction) * length).to_numpy()
    if not keep.any():
        raise DataError(
            f"No checkpoint passes min_tokens={min_tokens!r}, min_fraction={min_fraction!r} "
            f"(column {D!r} ranges {d.min():.3g} to {d.max():.3g}); lower the thresholds."
        )
    return df.loc[keep].copy()
