r"""Command line: ``bayescale fit | laws | datasets``, over the same API as the package.

Examples
--------
Fit the bundled synthetic data and forecast Chinchilla-70B's loss::

    bayescale fit --dataset synthetic_chinchilla --law chinchilla \\
        --predict "N=7e10,D=1.4e12" --out results/

Fit your own CSV whose columns are ``params``, ``tokens`` and ``val_loss``::

    bayescale fit runs.csv --law chinchilla --y val_loss --x N=params,D=tokens \\
        --predict "N=7e10,D=1.4e12;N=4e11,D=8e12" --out results/

Fit two law forms and forecast with their leave-future-out stacking average (structural
uncertainty: which law is right)::

    bayescale fit runs.csv --law chinchilla,kaplan --predict "N=7e10,D=1.4e12"

Any bad input ends with one line ``bayescale: error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import (
    BayescaleError,
    DataError,
    DataWarning,
    ExtrapolationWarning,
    PoolingWarning,
    PriorWarning,
    SamplingWarning,
    hints_for,
    quiet_logger,
)
from .report import percent

PROG = "bayescale"
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BayescaleError(f"{message} (see `{self.prog} --help`)")


# ------------------------------------------------------------------------ parsing
def _value(text: str) -> Any:
    """Parse a command-line value: number, true/false, else the string.

    Examples
    --------
    >>> _value("7e10"), _value("3"), _value("false"), _value("fam_a")
    (70000000000.0, 3, False, 'fam_a')
    """
    t = text.strip()
    low = t.lower()
    if low in {"true", "false"}:
        return low == "true"
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


#: An example of each option of name=value pairs, for its error messages.
PAIR_EXAMPLES = {"--x": "N=params,D=tokens", "--predict": "N=7e10,D=1.4e12",
                 "--where": "val_set=c4_val", "--fix": "E=1.7"}


def parse_pairs(text: str, option: str) -> dict[str, str]:
    """Parse ``"a=1,b=2"`` into ``{"a": "1", "b": "2"}`` (values kept as text).

    Examples
    --------
    >>> parse_pairs("N=params, D=tokens", "--x")
    {'N': 'params', 'D': 'tokens'}
    >>> parse_pairs("N:params", "--x")
    Traceback (most recent call last):
    ...
    bayescale.errors.BayescaleError: --x: 'N:params' is not of the form name=value ...
    """
    out: dict[str, str] = {}
    # a comma starts a pair only before "name=": a value may hold commas ("6 Enc, 6 Dec")
    for item in re.split(r",(?=[^,=]*=)", text):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        key, val = key.strip(), val.strip()
        if not sep or not key or not val:
            example = PAIR_EXAMPLES.get(option, "N=params,D=tokens")
            raise BayescaleError(
                f"{option}: {item!r} is not of the form name=value (e.g. {option} {example})."
            )
        if key in out:
            raise BayescaleError(f"{option}: {key!r} is given twice in {text!r}.")
        out[key] = val
    if not out:
        raise BayescaleError(f"{option}: no name=value pairs in {text!r}.")
    return out


def parse_x(text: str) -> dict[str, str | float]:
    """Parse ``--x``: law inputs to data columns, or to a constant (a number).

    A number is a constant of every row, as ``x={"chance": 0.25}`` in
    :func:`bayescale.fit` (the chance level of a 4-way multiple-choice task).

    Examples
    --------
    >>> parse_x("C=flops,chance=0.25")
    {'C': 'flops', 'chance': 0.25}
    """
    out: dict[str, str | float] = {}
    for key, val in parse_pairs(text, "--x").items():
        value = _value(val)
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        out[key] = float(value) if is_number else val
    return out


def parse_predict(text: str, law, x: Mapping[str, str | float]) -> pd.DataFrame:
    """Parse ``--predict "N=7e10,D=1.4e12;N=4e11,D=8e12"`` into rows for ``Fit.predict``.

    Keys are law inputs (mapped to their data columns by ``--x``), data column
    names, or group columns (``family=fam_a``). An input that ``--x`` sets to a constant
    takes it in every row and is not given here. Inputs may be written as model tables
    write sizes (``N=70B``, ``D=1.4T``; K, M, B or G, T).

    Examples
    --------
    >>> from bayescale.laws import chinchilla
    >>> parse_predict("N=7e10,D=1.4e12;N=1e9,D=2e10", chinchilla, {"N": "params"}).to_dict("list")
    {'params': [70000000000.0, 1000000000.0], 'D': [1400000000000.0, 20000000000.0]}
    >>> parse_predict("N=70B,D=1.4T", chinchilla, {}).to_dict("list")
    {'N': [70000000000.0], 'D': [1400000000000.0]}
    """
    constants = {k: v for k, v in x.items() if not isinstance(v, str)}
    x = {k: v for k, v in x.items() if isinstance(v, str)}
    rows = []
    for chunk in text.split(";"):
        if not chunk.strip():
            continue
        pairs = parse_pairs(chunk, "--predict")
        row: dict[str, Any] = {}
        for key, val in pairs.items():
            if key in constants:
                raise BayescaleError(
                    f"--predict: {key} is the constant {constants[key]:g} (--x {key}="
                    f"{constants[key]:g}); leave it out of --predict."
                )
            col = x.get(key, key)
            if col in row:  # N=7e10 and params=1e9 with --x N=params: which one?
                raise BayescaleError(
                    f"--predict: {key} and {next(k for k in pairs if x.get(k, k) == col)} "
                    f"name the same input (--x maps one to the other) in {chunk.strip()!r}; "
                    "give it once."
                )
            value = _value(val)
            if key in law.inputs or col in x.values():
                if isinstance(value, str):  # a size as model tables write it: 70B, 1.4T
                    from .data import parse_counts

                    value = parse_counts(pd.Series([value]), errors="coerce").iloc[0]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    value != value
                ):
                    raise BayescaleError(
                        f"--predict: {key}={val!r} must be a number or a count with a "
                        f"K/M/B/T suffix (e.g. {key}=7e10 or {key}=70B)."
                    )
                value = float(value)
            row[col] = value
        rows.append(row)
    if not rows:
        raise BayescaleError('--predict: no rows given (e.g. --predict "N=7e10,D=1.4e12").')
    frame = pd.DataFrame(rows)
    cols = {x.get(i, i) for i in law.inputs if i not in constants}
    if "C" in law.inputs and x.get("C", "C") not in frame.columns and {"N", "D"} <= set(frame):
        cols.discard("C")
    missing = sorted(cols - set(frame.columns))
    if missing or frame[sorted(cols & set(frame.columns))].isna().any().any():
        hint = ""
        others = sorted(set(frame.columns) - cols)
        unmapped = [m for m in missing if m in law.inputs and m not in x]
        if unmapped and others:  # e.g. power_law's input x given as N, with no --x x=N
            hint = (f" The law's input {unmapped[0]!r} reads the data column of that name "
                    f"unless --x maps it: --x {unmapped[0]}={others[0]} (your data's "
                    f"{others[0]!r} as {unmapped[0]!r}), then {others[0]}=... here.")
        inputs = {col: inp for inp, col in x.items()}

        def name(col: str) -> str:  # a mapped input by both its names
            inp = inputs.get(col, col)
            return inp if inp == col else f"{inp} (or {col})"

        def by_input(names: set[str] | list[str]) -> list[str]:  # the law's order
            return sorted(names, key=lambda c: list(law.inputs).index(inputs.get(c, c)))

        needs = ", ".join(name(c) for c in by_input(cols))
        lacks = ", ".join(name(c) for c in by_input(missing)) if missing else "a value in some row"
        raise BayescaleError(
            f"--predict: every row needs {needs} for law {law.name!r}; "
            f"missing {lacks} in {text!r}.{hint}"
        )
    return frame


def check_predict_rows(new: pd.DataFrame, law, x: Mapping[str, str | float], *,
                       groups: Sequence[str], run: str | None, trials: str | None) -> None:
    """Check ``--predict``'s rows before the fit, as ``Fit.predict`` would after it.

    A key that no input, group column, run or trial count reads is refused (it would be
    ignored), and so are values the law cannot take; rows count from 0 in the order given.

    Examples
    --------
    >>> from bayescale.laws import chinchilla
    >>> rows = parse_predict("N=7e10,D=1.4e12,X=3", chinchilla, {})
    >>> check_predict_rows(rows, chinchilla, {}, groups=[], run=None, trials="n")
    Traceback (most recent call last):
    ...
    bayescale.errors.BayescaleError: --predict: X is not read by this fit ...
    """
    from . import data as _data

    readable = {x.get(i, i) for i in law.inputs} | set(law.inputs) | set(groups)
    readable |= {trials} if trials else set()  # trials: None where no likelihood reads n
    readable |= {run} if run else set()
    readable |= {"N", "D"} if "C" in law.inputs else set()  # C = 6 N D
    extra = [c for c in new.columns if c not in readable]
    if extra:
        raise BayescaleError(
            f"--predict: {', '.join(map(str, extra))} is not read by this fit (law "
            f"{law.name!r} reads {', '.join(law.inputs)}"
            + (f"; group columns {', '.join(groups)}" if groups else "")
            + f"); drop it or correct the name.{hints_for(extra, sorted(readable))}"
        )
    try:
        _data.check_groups_present(list(groups), new)
        _data.validate(new, law, y=None, x=dict(x), groups=list(groups), run=None,
                       require_y=False)
    except BayescaleError as err:
        raise BayescaleError(f"--predict (rows from 0, in the order given): {err}") from None


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Bayesian scaling laws from the command line.")
    sub = p.add_subparsers(dest="command", metavar="{fit,laws,datasets}", parser_class=_Parser)

    f = sub.add_parser("fit", help="fit a law to a CSV or a registered dataset")
    f.add_argument("data", nargs="?",
                   help="data file, one row per run: CSV (any separator), TSV, Parquet, "
                   "Feather, JSON or Excel, by its ending (or use --dataset)")
    f.add_argument("--dataset", help="registered dataset instead of a CSV (bayescale datasets)")
    f.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COL=VALUE[,...]",
        help="keep rows with COL == VALUE, e.g. val_set=openlm; repeatable: other columns "
        "narrow it further, the same column again adds a value (rows with any of them)",
    )
    f.add_argument(
        "--dropna",
        action="store_true",
        help="drop the rows with a missing value in a column the fit reads (the law's "
        "inputs, the response, --pooled, --run, trials), saying how many; without it such "
        "rows are an error",
    )
    f.add_argument(
        "--law",
        required=True,
        help="law name (bayescale laws); several, comma-separated (e.g. chinchilla,kaplan), "
        "are each fitted and their forecasts averaged (see --average)",
    )
    f.add_argument(
        "--average",
        default="lfo",
        help="weights of several laws: lfo (default: stacking of leave-future-out forecasts "
        "of the largest fifth of the training runs, which rewards extrapolation) or stacking "
        "(PSIS-LOO)",
    )
    f.add_argument("--y", help="response column (default: the law's, e.g. loss)")
    f.add_argument(
        "--x",
        help="law inputs to columns, e.g. N=params,D=tokens; a number is a constant of "
        "every row, e.g. chance=0.25",
    )
    f.add_argument("--predict", help='rows to forecast, e.g. "N=7e10,D=1.4e12;N=4e11,D=8e12"')
    f.add_argument("--out", help="folder for summary.csv, fit.nc (several laws: fit_<law>.nc "
                   "and weights.csv), fit.png, report.md, report.tex, and predictions.csv, "
                   "compute_optimal.csv, group_effects.csv when there are forecasts, budgets, "
                   "pooled groups")
    f.add_argument("--prob", type=float, default=0.9, help="interval probability (0.9)")
    f.add_argument(
        "--kind",
        choices=["predictive", "mean"],
        default="predictive",
        help="forecast with observation noise (predictive) or the mean curve",
    )
    f.add_argument("--draws", type=int, default=1000,
                   help="posterior draws per chain (1000); the calibration's inner fits use "
                   "at most 500 (--calibration-draws)")
    f.add_argument("--calibration-draws", type=int, default=None, metavar="N",
                   help="draws per chain of the calibration's inner fits (default: --draws, "
                   "at most 500); more where they report a low effective sample size")
    f.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (1000)")
    f.add_argument("--chains", type=int, default=4, help="chains (4)")
    f.add_argument("--seed", type=int, default=None,
                   help="random seed (reproducible draws; default: one chosen and printed)")
    f.add_argument(
        "--sampler",
        default="auto",
        help="auto (default: the JAX path with NumPyro's NUTS on CPU, whose compiled programs "
        "are stored for the next call; nutpie on a GPU machine), jax, nutpie, numpyro, pymc "
        "or blackjax",
    )
    f.add_argument(
        "--likelihood",
        default="auto",
        help="auto (default: the law's, refitted with ar1 when its residuals are "
        "autocorrelated along scale), studentt, normal or ar1 (autocorrelated along each "
        "run/curve)",
    )
    f.add_argument("--pooled", help="group column(s) to pool all parameters over, e.g. family")
    f.add_argument("--run", help="column identifying training runs (checkpoints of one run)")
    f.add_argument(
        "--fix",
        metavar="PARAM=VALUE[,...]",
        help="hold parameters at a value instead of fitting them, e.g. E=0 (a pure power law)",
    )
    f.add_argument(
        "--compute-optimal",
        metavar="C[,C...]",
        help="FLOP budgets (C = 6 N D) for the compute-optimal N, D and loss of a law of N "
        "and D, e.g. 1e21,5.76e23 (pooled fits: for each group)",
    )
    f.add_argument(
        "--drift-by",
        metavar="COLUMN",
        help="forecasts beyond the data: learn the extrapolation drift per level of this "
        "--pooled or --run column (each task or family its own, pooled), not one for all",
    )
    f.add_argument(
        "--extrapolation",
        choices=["auto", "off"],
        default="auto",
        help="auto (default): forecasts beyond the data carry the calibrated drift, learned "
        "once by nested leave-future-out refits (seconds to minutes); off: parameter "
        "uncertainty and noise only (intervals that cover far less when extrapolating)",
    )
    f.add_argument(
        "--trials",
        help="accuracy laws: column with the number of questions behind each accuracy "
        "(default: n)",
    )

    sub.add_parser("laws", help="list the built-in laws and their equations")
    d = sub.add_parser("datasets", help="list the registered datasets")
    d.add_argument("--full", action="store_true", help="also show source, licence, citation")
    return p


# ----------------------------------------------------------------------- commands
def _cmd_laws(out) -> int:
    from .law import list_laws

    for law in list_laws():
        print(f"{law.name}", file=out)
        print(f"    {law.equation or law.doc}", file=out)
        print(
            f"    inputs: {', '.join(law.inputs)}; parameters: {', '.join(law.params)}; "
            f"response: {law.response} ({law.link} link, {law.likelihood})",
            file=out,
        )
        if law.citation:
            print(f"    {law.citation}", file=out)
    return 0


def _cmd_datasets(args, out) -> int:
    from . import datasets

    table = datasets.list_datasets()
    for _, r in table.iterrows():
        print(f"{r['name']}  ({r['rows']} rows, {r['file']})", file=out)
        print(f"    {r['description']}", file=out)
        if args.full:
            print(f"    source: {r['source']}", file=out)
            print(f"    licence: {r['licence']}", file=out)
            print(f"    citation: {r['citation']}", file=out)
    print(
        f"\nReal datasets are read from ${datasets.ENV_DATA}/<folder>/<file>, the cache "
        f"({datasets.cache_dir()}) or downloaded; see bayescale.datasets.",
        file=out,
    )
    return 0


#: file endings read by something else than ``pd.read_csv`` (compressed CSVs, ``.csv.gz``,
#: are CSVs: pandas infers the compression from the ending)
READERS = {
    ".parquet": ("parquet", pd.read_parquet),
    ".pq": ("parquet", pd.read_parquet),
    ".feather": ("Feather", pd.read_feather),
    ".arrow": ("Feather", pd.read_feather),
    ".json": ("JSON", pd.read_json),
    ".jsonl": ("JSON lines", lambda f: pd.read_json(f, lines=True)),
    ".ndjson": ("JSON lines", lambda f: pd.read_json(f, lines=True)),
    ".xlsx": ("Excel", pd.read_excel),
    ".xls": ("Excel", pd.read_excel),
    ".tsv": ("tab-separated", lambda f: pd.read_csv(f, sep="\t")),
    ".tab": ("tab-separated", lambda f: pd.read_csv(f, sep="\t")),
}


def _csv_separator(file: Path) -> str | None:
    """``;``, a tab or ``|`` when the header line holds one of them and no comma, else None.

    Sniffed before reading: a ``;`` file with decimal commas (``5,117``) failed pandas'
    comma reading with "Expected 3 fields in line 3, saw 4" before it could be re-read.
    """
    if file.suffix.lower() in _COMPRESSED:  # bytes, not a header: read, then looked at
        return None
    with open(file, encoding="utf-8-sig", errors="replace") as fh:
        return _separator_of(next((line for line in fh if line.strip()), ""))


def _separator_of(head: str) -> str | None:
    """The separator a header line shows: ``;``, a tab or ``|``, if it holds no comma."""
    if "," in head:
        return None
    return next((c for c in (";", "\t", "|") if c in head), None)


_DECIMAL_COMMA = r"^\s*[-+]?(\d+(,\d*)?|,\d+)([eE][-+]?\d+)?\s*$"
#: '1,300' may be 1.3 or 1300: such a column is left as text, for the column checks' hint
_THOUSANDS = r"^\s*[-+]?\d{1,3}(,\d{3})+\s*$"
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".zstd", ".tar")


def _decimal_commas(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns of numbers written with a decimal comma (``2,91e+08``) as floats.

    Examples
    --------
    >>> _decimal_commas(pd.DataFrame({"D": ["2,91e+08", "3"], "m": ["a", "b"]}))["D"].tolist()
    [291000000.0, 3.0]
    """
    out = df.copy()
    for col in df.columns:
        s = df[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        text = s.dropna().astype(str)
        commas = text[text.str.contains(",")]
        if (len(commas) and text.str.match(_DECIMAL_COMMA).all()
                and not commas.str.match(_THOUSANDS).all()):
            out[col] = pd.to_numeric(s.astype(str).str.replace(",", ".", regex=False),
                                     errors="coerce").where(s.notna())
    return out


def read_table(file: str | Path) -> pd.DataFrame:
    r"""Read a data file by its ending: CSV (any separator), TSV, Parquet, Feather, JSON, Excel.

    A CSV whose header line holds ``;``, a tab or ``|`` and no comma is read with that
    separator (spreadsheets in many locales write ``;``), its numbers with decimal commas
    (``5,117``) as numbers. Errors name the file and the format tried.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "runs.csv"
    >>> _ = path.write_text("params;loss\n1e8;3.1\n1e9;2.6\n")
    >>> read_table(path).columns.tolist()
    ['params', 'loss']
    """
    file = Path(file)
    kind, reader = READERS.get(file.suffix.lower(), ("CSV", pd.read_csv))
    try:
        sep = _csv_separator(file) if kind == "CSV" else None
        if sep is not None:  # a comma in a value ('2,91e+08') is then a decimal comma
            df = _decimal_commas(pd.read_csv(file, sep=sep))
        else:
            df = reader(file)
            if kind == "CSV" and df.shape[1] == 1:  # a compressed file, not sniffed
                sep = _separator_of(str(df.columns[0]))
                if sep is not None:
                    df = _decimal_commas(pd.read_csv(file, sep=sep))
    except ImportError as exc:  # parquet without pyarrow, Excel without openpyxl
        raise DataError(
            f"Reading {str(file)!r} as {kind} needs a package that is not installed ({exc}). "
            "Install it, or save the table as CSV."
        ) from None
    except Exception as exc:  # the readers' own errors (parser, zip, arrow): said in one line
        raise DataError(
            f"Cannot read {str(file)!r} as {kind} (chosen by its ending "
            f"{file.suffix or '(none)'!r}): {exc}".replace("\n", " ")
            + ". CSV, TSV, Parquet, Feather, JSON (records) and Excel files are read by "
            "their ending."
        ) from None
    if len(df) == 0:
        raise DataError(f"{str(file)!r} has a header but no rows: there is nothing to fit.")
    return df


def _read_data(args) -> pd.DataFrame:
    from . import datasets

    values: dict[str, list] = {}  # a column given again keeps rows with any of its values
    for w in args.where:
        for k, v in parse_pairs(w, "--where").items():
            values.setdefault(k, []).append(v)  # text, read as its column holds values
    where: dict[str, Any] = {k: v[0] if len(v) == 1 else v for k, v in values.items()}
    if args.dataset and args.data:
        raise BayescaleError("Give either a CSV file or --dataset NAME, not both.")
    if args.dataset:
        if Path(args.dataset).suffix.lower() == ".csv" or os.sep in args.dataset:
            raise BayescaleError(
                f"--dataset takes a registered dataset's name (bayescale datasets); "
                f"{args.dataset!r} looks like a file: give a CSV file as the first argument, "
                f"e.g. bayescale fit {args.dataset} --law chinchilla."
            )
        df = datasets.load(args.dataset)
        renamed = datasets._entry(args.dataset).get("columns", {})
        # rows keep their numbers (an error after --where names the dataset's own row)
        return datasets.filter_rows(df, where, what=f"dataset {args.dataset!r}",
                                    renamed=renamed, text=True)
    if not args.data:
        raise BayescaleError("No data: give a CSV file or --dataset NAME (see bayescale datasets).")
    file = Path(args.data)
    if file.is_dir():
        raise DataError(f"Data file {str(file)!r} is a folder; give the data file in it.")
    if not file.is_file():
        raise DataError(f"Data file {str(file)!r} not found.")
    df = read_table(file)
    # rows keep their numbers: an error after --where names the file's own row
    return datasets.filter_rows(df, where, what=f"{str(file)!r}", text=True, error=DataError)


def read_columns(df: pd.DataFrame, laws: Sequence[Any], x: Mapping[str, Any], args
                 ) -> list[str]:
    """The data columns a fit of ``laws`` reads: inputs, response, groups, runs, trials.

    ``N`` and ``D`` count for a law of compute only where the data have no ``C`` column
    (``C = 6 N D`` is derived from them then).
    """
    cols: list[str] = []
    for lw in laws:
        for inp in lw.inputs:
            col = x.get(inp, inp)
            if not isinstance(col, str):
                continue  # a constant
            if inp == "C" and col not in df.columns:
                cols += ["N", "D"]
            else:
                cols.append(col)
        cols.append(args.y or lw.response)
    cols += [g.strip() for g in args.pooled.split(",")] if args.pooled else []
    cols += [args.run] if args.run else []
    cols += [args.trials or "n", "correct"]  # counts, where the data hold them
    return [c for c in dict.fromkeys(cols) if c in df.columns]


def drop_missing(df: pd.DataFrame, columns: Sequence[str], say=None) -> pd.DataFrame:
    """``df`` without the rows that miss a value in ``columns`` (``--dropna``).

    ``say`` gets a line with how many rows went, per column, and the first rows' numbers.

    Examples
    --------
    >>> df = pd.DataFrame({"C": [1e20, None, 1e22], "acc": [0.3, 0.4, None], "x": None})
    >>> drop_missing(df, ["C", "acc"], say=print).index.tolist()
    --dropna: dropped 2 of 3 rows with a missing value (C: 1, acc: 1): rows 1, 2
    [0]
    """
    miss = df[list(columns)].isna()
    bad = miss.any(axis=1)
    if not bad.any():
        return df
    if bad.all():
        raise BayescaleError(
            f"--dropna: every row misses a value in {', '.join(columns)}; nothing is left "
            "to fit."
        )
    if say is not None:
        per = ", ".join(f"{c}: {int(n)}" for c, n in miss.sum().items() if n)
        rows = ", ".join(map(str, df.index[bad][:8])) + (" ..." if bad.sum() > 8 else "")
        say(f"--dropna: dropped {int(bad.sum())} of {len(df)} rows with a missing value "
            f"({per}): rows {rows}")
    return df.loc[~bad]


def read_counts(df: pd.DataFrame, columns: Sequence[Any], say=None) -> pd.DataFrame:
    """Columns of counts written with a magnitude suffix (``70M``, ``1.4B``) as numbers.

    Only the columns named (the law's inputs and response), and only when every value of
    one reads as a count and at least one has a suffix: model tables write sizes so, and
    the command line has no place for :func:`bayescale.parse_counts`. ``say`` gets a line
    for each column read so.

    Examples
    --------
    >>> df = pd.DataFrame({"N": ["70M", "1.4B", 2e10], "model": ["70M", "1.4B", "20B"]})
    >>> read_counts(df, ["N"])["N"].tolist(), read_counts(df, ["N"])["model"].tolist()
    ([70000000.0, 1400000000.0, 20000000000.0], ['70M', '1.4B', '20B'])
    """
    from .data import parse_counts

    out = df
    for col in dict.fromkeys(c for c in columns if isinstance(c, str)):
        if col not in df.columns or (df.columns == col).sum() > 1:
            continue  # the fit names a missing or repeated column
        s = df[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        text = s.dropna().astype(str).str.strip()
        if not len(text) or not text.str.contains(r"\d\s*[KMBGTkmbgt]$").any():
            continue
        counts = parse_counts(s, errors="coerce")
        if counts[s.notna()].isna().any():
            continue  # not all counts: the fit's column check names the odd values
        out = out.copy() if out is df else out
        out[col] = counts
        if say is not None:
            at = int(text.str.contains(r"[KMBGTkmbgt]$").to_numpy().argmax())  # first suffix
            say(f"read column {col!r} as counts with K/M/B/T suffixes "
                f"({text.iloc[at]!r} = {counts[s.notna()].iloc[at]:.3g})")
    return out


def _laws_of(text: str) -> list:
    """``--law chinchilla`` or ``--law chinchilla,kaplan`` (laws to average) -> Law objects."""
    from .law import get_law

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BayescaleError("--law: give a law name (see bayescale laws).")
    if len(set(names)) != len(names):
        raise BayescaleError(f"--law: a law is named twice in {text!r}.")
    laws = [get_law(n) for n in names]
    for law in laws[1:]:
        if set(law.inputs) != set(laws[0].inputs) or law.link != laws[0].link:
            raise BayescaleError(
                f"--law: laws to average must share their inputs and response scale; "
                f"{laws[0].name!r} has inputs {list(laws[0].inputs)} ({laws[0].link} link), "
                f"{law.name!r} has {list(law.inputs)} ({law.link} link)."
            )
    return laws


#: The warnings this command has printed (each once, :func:`_sampling_warnings_to_stderr`).
_SAID: set[str] = set()


@contextmanager
def _sampling_warnings_to_stderr():
    """Print bayescale's own warnings as ``bayescale: warning: ...`` lines, each once.

    Sampling problems, pooling, priors moved for units, targets far beyond the data and
    rows repeated exactly; other warnings are re-raised.
    """
    own = (SamplingWarning, PoolingWarning, PriorWarning, ExtrapolationWarning, DataWarning)
    with warnings.catch_warnings(record=True) as caught:
        for category in own:
            warnings.simplefilter("always", category)
        yield
    for w in caught:
        if issubclass(w.category, own):
            if str(w.message) not in _SAID:  # once per command (predict, report, plot...)
                print(f"{PROG}: warning: {cli_terms(str(w.message))}", file=sys.stderr)
                _SAID.add(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _fit_one(df, law, x, pooled, priors, args, sampler):
    from .fit import fit as fit_law

    with _sampling_warnings_to_stderr():
        return fit_law(
            df,
            law,
            y=args.y,
            x=x or None,
            pooled=pooled,
            run=args.run,
            priors=priors,
            trials=args.trials,
            likelihood=args.likelihood,
            sampler=sampler,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            random_seed=args.seed,
            progressbar=None,
        )


def _cmd_fit(args, out) -> int:
    from .compiled import choose_sampler

    _SAID.clear()  # a new command says its warnings anew

    laws = _laws_of(args.law)
    law = laws[0]
    df = _read_data(args)
    x = parse_x(args.x) if args.x else {}
    used = [x.get(i, i) for lw in laws for i in lw.inputs]
    used += [args.y or lw.response for lw in laws]
    used += ["N", "D"] if any("C" in lw.inputs for lw in laws) else []  # C = 6 N D
    df = read_counts(df, used, say=lambda m: print(f"{PROG}: {m}", file=sys.stderr))
    if args.dropna:
        df = drop_missing(df, read_columns(df, laws, x, args),
                          say=lambda m: print(f"{PROG}: {m}", file=sys.stderr))
    unknown = sorted(set(x) - set(law.inputs))
    if unknown:
        raise BayescaleError(
            f"--x maps {unknown}, which are not inputs of law {law.name!r}; "
            f"its inputs are {list(law.inputs)} (e.g. --x {law.inputs[0]}=your_column)."
            + hints_for(unknown, law.inputs)
        )
    fixed = parse_fixed(args.fix) if args.fix else None
    # an empty value (an unset shell variable) is an error, not "no forecast"
    new = parse_predict(args.predict, law, x) if args.predict is not None else None
    budgets = (parse_budgets(args.compute_optimal, law) if args.compute_optimal is not None
               else None)
    pooled = [g.strip() for g in args.pooled.split(",")] if args.pooled else None
    if args.drift_by and args.drift_by not in (pooled or []) + [args.run]:
        raise BayescaleError(
            f"--drift-by {args.drift_by}: name a column of --pooled or --run (the levels whose "
            f"drifts are learned apart); --pooled is {args.pooled!r}, --run {args.run!r}."
        )
    if args.drift_by and args.extrapolation == "off":
        raise BayescaleError(
            f"--drift-by {args.drift_by} learns the extrapolation drift that --extrapolation "
            "off leaves out; drop one of them."
        )
    if new is not None:
        lik = law.likelihood if args.likelihood == "auto" else args.likelihood
        counts = bool(args.trials) or lik in ("binomial", "betabinomial", "beta")
        check_predict_rows(new, law, x, groups=pooled or [], run=args.run,
                           trials=(args.trials or "n") if counts else None)
    ext: bool | str = False if args.extrapolation == "off" else "auto"
    if pooled is not None and len(pooled) == 1:
        pooled = pooled[0]
    from .fit import _check_prob

    _check_prob(args.prob)
    if args.calibration_draws is not None and args.calibration_draws < 1:
        raise BayescaleError(
            f"--calibration-draws must be a positive integer (draws per chain of the inner "
            f"fits), got {args.calibration_draws}."
        )
    if args.average not in ("lfo", "stacking"):
        raise BayescaleError(f"--average must be lfo or stacking, got {args.average!r}.")
    outdir = Path(args.out) if args.out else None
    if outdir is not None:
        make_outdir(outdir)
    sampler = choose_sampler(one_shot=True) if args.sampler == "auto" else args.sampler
    chosen = args.seed is None
    if chosen:  # one seed for the whole run (the fits, the average), said so it can be repeated
        from .sampling import random_seed_for_run

        args.seed = random_seed_for_run()
    fits = {lw.name: _fit_one(df, lw, x, pooled, fixed, args, sampler) for lw in laws}
    cal_kw = {} if args.calibration_draws is None else {"draws": args.calibration_draws}
    if args.drift_by:  # the inner fits run once here, and are saved with each fit
        with _sampling_warnings_to_stderr():
            fits = {name: f.calibrate(by=args.drift_by, **cal_kw) for name, f in fits.items()}
    pct = percent(args.prob)
    summaries = {name: f.summary(prob=args.prob) for name, f in fits.items()}
    effects = {name: f.group_effects(prob=args.prob) for name, f in fits.items()
               if f.spec.pooled}
    avg = None
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        for name, result in fits.items():
            print(fit_line(repr(result)), file=out)
            if chosen:
                print(f"random seed {args.seed} (chosen for this run; --seed {args.seed} "
                      "repeats it)", file=out)
                chosen = False
            if "likelihood_choice" in result.settings:
                print(f"likelihood: {result.settings['likelihood_choice']}", file=out)
            title = f" of {name}" if len(fits) > 1 else ""
            level = ", population level: each group's in group_effects" if (
                result.spec.pooled) else ""
            print(f"\nPosterior{title} ({pct}% HDI{level}):", file=out)
            # four significant digits: a noise scale of 4e-4 is not 0.000, r_hat 1.012 not 1.01
            print(summaries[name].to_string(float_format=lambda v: f"{v:.4g}"), file=out)
            if result.spec.pooled:  # what the forecasts of each group use
                cols = ["param", "group", "level", "median", "lower", "upper"]
                print(f"\nPer group{title} (median, {pct}% central interval):", file=out)
                print(effects[name][cols].to_string(index=False), file=out)
        if len(fits) > 1:
            from .compare import average

            if args.average == "lfo":  # said first: each law is refitted on the smaller runs
                print(f"{PROG}: weighing the laws by leave-future-out (refits on the smaller "
                      "runs; --average stacking uses PSIS-LOO instead) ...", file=sys.stderr,
                      flush=True)
            with _sampling_warnings_to_stderr():  # the leave-future-out refits
                avg = average(fits, weights=args.average, random_seed=args.seed)
            how = "leave-future-out" if args.average == "lfo" else "PSIS-LOO"
            weights = ", ".join(f"{k} {v:.3f}" for k, v in avg.weights.items())
            print(f"\nAverage of the laws ({how} stacking weights): {weights}", file=out)
        need = [n for n, f in fits.items()
                if ext == "auto" and _needs_calibration(f, new, budgets, outdir is not None)]
        if need:  # said first: the inner refits take seconds to minutes (pooled fits)
            print(f"{PROG}: calibrating the extrapolation drift of {', '.join(need)} by nested "
                  "leave-future-out (refits on the smaller runs; --extrapolation off skips "
                  "it) ...", file=sys.stderr, flush=True)
            with _sampling_warnings_to_stderr(), quiet_logger("bayescale"):
                # computed once: kept on the fit (an average's member too) and in fit.nc
                fits = {n: (f.calibrate(**cal_kw) if cal_kw else
                            f.with_calibration(f.calibration)) if n in need else f
                        for n, f in fits.items()}
            if avg is not None:  # the average forecasts with the calibrated fits, not anew
                from dataclasses import replace

                avg = replace(avg, fits={n: fits[n] for n in avg.fits})
            for n in need:  # the inner fits' sampling problems, as the fits' own are said
                for problem in fits[n].calibration.problems:
                    print(f"{PROG}: warning: extrapolation calibration of {n}: "
                          f"{cli_terms(problem)}", file=sys.stderr)
        pred = None
        if new is not None:
            source = avg if avg is not None else fits[law.name]
            with _sampling_warnings_to_stderr():  # e.g. a group level the fit never saw
                pred = source.predict(new, prob=args.prob, kind=args.kind, extrapolation=ext)
            what = "model average, " if avg is not None else ""
            print(f"\nPredictions ({what}{args.kind}, {pct}% central interval):", file=out)
            print(pred.to_string(index=False), file=out)
            if args.kind == "predictive":  # why each interval is as wide as it is
                sources = ("parameter", "noise", "extrapolation") + (("law_form",) if avg else ())
                shares = [f"{c}_share" for c in sources]
                from .calibration import drift_scale

                scale = drift_scale(law) or "response"
                with _sampling_warnings_to_stderr():
                    dec = source.decompose(new, extrapolation=ext)
                # how far out each row is (over N, D, compute and D/N), beside its shares
                cols = (["distance"] if "distance" in dec else []) + shares
                said = ", and distance beyond the data" if "distance" in dec else ""
                print(f"\nShares of the predictive variance ({scale} scale){said}:", file=out)
                print(dec[cols].round(3).to_string(index=False), file=out)
        optimal = None
        if budgets is not None:
            with _sampling_warnings_to_stderr():  # e.g. budgets in other units than the data
                optimal = pd.concat(
                    {name: f.compute_optimal(budgets, prob=args.prob, extrapolation=ext)
                     for name, f in fits.items()},
                    names=["law", "row"],
                ).reset_index(level="row", drop=True).reset_index()
            if len(fits) == 1:
                optimal = optimal.drop(columns="law")
            print(f"\nCompute-optimal allocation (C = 6 N D; {pct}% central interval; loss: "
                  "the law's mean curve there, without observation noise):", file=out)
            print(optimal.to_string(index=False), file=out)
    if outdir is not None:
        if effects:  # each group's parameters (the summary holds the population's)
            table = pd.concat(effects, names=["law", "row"]).reset_index(level="row", drop=True)
            table.to_csv(outdir / "group_effects.csv")
        if avg is None:
            summaries[law.name].to_csv(outdir / "summary.csv")
            fits[law.name].save(outdir / "fit.nc")
            saved = ["fit.nc"]
        else:
            table = pd.concat(summaries, names=["law", "parameter"])
            table.to_csv(outdir / "summary.csv")
            pd.Series(avg.weights, name="weight").rename_axis("law").to_csv(
                outdir / "weights.csv"
            )
            saved = ["weights.csv"]
            for name, f in fits.items():
                f.save(outdir / f"fit_{name}.nc")
                saved.append(f"fit_{name}.nc")
        if pred is not None:
            pred.to_csv(outdir / "predictions.csv", index=False)
        if optimal is not None:
            optimal.to_csv(outdir / "compute_optimal.csv", index=False)
        plotted = avg if avg is not None else fits[law.name]
        # the paper-ready report: model, priors, data, diagnostics, forecast, calibration
        with _sampling_warnings_to_stderr():  # its forecast's warnings, said once above
            rep = plotted.report(target=new, prob=args.prob, extrapolation=ext, kind=args.kind)
        (outdir / "report.md").write_text(rep.markdown())
        (outdir / "report.tex").write_text(rep.latex())  # the same tables, for a paper
        with _sampling_warnings_to_stderr():
            ax = plotted.plot(new=new, prob=args.prob, extrapolation=ext, kind=args.kind)
        fig = ax.figure  # (laid out as drawn: constrained layout)
        fig.savefig(outdir / "fit.png", dpi=120)
        import matplotlib.pyplot as plt

        plt.close(fig)
        written = ["summary.csv", "report.md", "report.tex"]
        written += ["predictions.csv"] if pred is not None else []
        written += ["compute_optimal.csv"] if optimal is not None else []
        written += ["group_effects.csv"] if effects else []
        print(f"\nWrote {', '.join(written + saved + ['fit.png'])} to {outdir}/", file=out)
        stale = _stale_results(outdir, written + saved + ["fit.png"])
        if stale:  # an earlier run's forecasts beside this fit would be read as its own
            for name in stale:
                (outdir / name).unlink()
            print(f"Removed {', '.join(stale)}, left there by an earlier run (results of "
                  "another fit).", file=out)
    return 0


#: What ``bayescale fit --out`` writes (and ``fit_<law>.nc`` per law of an average).
RESULT_FILES = ("summary.csv", "report.md", "report.tex", "predictions.csv",
                "compute_optimal.csv", "group_effects.csv", "weights.csv", "fit.nc", "fit.png")


def _stale_results(outdir: Path, written: list[str]) -> list[str]:
    """Result files in ``outdir`` that this run did not write: an earlier run's.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> for name in ("fit.nc", "predictions.csv", "fit_kaplan.nc", "notes.txt"):
    ...     _ = (d / name).write_text("")
    >>> _stale_results(d, ["fit.nc", "summary.csv"])
    ['fit_kaplan.nc', 'predictions.csv']
    """
    names = set(RESULT_FILES) | {f.name for f in outdir.glob("fit_*.nc")}
    return sorted(n for n in names - set(written) if (outdir / n).is_file())


def parse_fixed(text: str) -> dict[str, float]:
    """Parse ``--fix "E=0,alpha=0.3"``: parameters held at a value (``priors={"E": 0.0}``).

    Examples
    --------
    >>> parse_fixed("E=0, alpha=0.3")
    {'E': 0.0, 'alpha': 0.3}
    """
    out = {}
    for key, val in parse_pairs(text, "--fix").items():
        value = _value(val)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BayescaleError(f"--fix: {key}={val!r} must be a number (e.g. --fix E=0).")
        out[key] = float(value)
    return out


def make_outdir(outdir: Path) -> None:
    """Create ``--out`` (and its parents); a clear error where a file stands in the way.

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "afile"
    >>> _ = f.write_text("")
    >>> make_outdir(f / "sub")
    Traceback (most recent call last):
    ...
    bayescale.errors.BayescaleError: --out .../afile/sub: .../afile is a file, not a folder; ...
    """
    for part in (outdir, *outdir.parents):
        if part.exists() and not part.is_dir():
            raise BayescaleError(
                f"--out {outdir}: {part} is a file, not a folder; name a folder for the "
                "results (it is created if missing)."
            )
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BayescaleError(f"--out {outdir}: cannot create the folder ({err}).") from None


def parse_budgets(text: str, law) -> list[float]:
    """Parse ``--compute-optimal "1e21,5.76e23"`` into positive FLOP budgets.

    Examples
    --------
    >>> from bayescale.laws import chinchilla
    >>> parse_budgets("1e21, 5.76e23", chinchilla)
    [1e+21, 5.76e+23]
    """
    if not {"N", "D"} <= set(law.inputs):
        raise BayescaleError(
            f"--compute-optimal needs a law of N and D (e.g. chinchilla); law {law.name!r} "
            f"has inputs {list(law.inputs)}."
        )
    out = []
    for item in text.split(","):
        value = _value(item.strip())
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            finite = number and math.isfinite(float(value))
        except OverflowError:  # an int beyond a float's range
            finite = False
        if not (finite and value > 0):  # inf and 1e400 failed only after the whole fit
            raise BayescaleError(
                f"--compute-optimal takes positive finite FLOP budgets separated by commas (e.g. "
                f"--compute-optimal 1e21,5.76e23); {item.strip()!r} is not one."
            )
        out.append(float(value))
    return out


def _needs_calibration(fit, new: pd.DataFrame | None, budgets: list[float] | None,
                       plots: bool) -> bool:
    """Whether this run's forecasts reach beyond ``fit``'s data before it has a calibration.

    Rows of ``new`` beyond the fitted range, budgets above the largest fitted compute, or
    a plot of a one-input law (its band reaches ten times beyond the largest input).
    """
    from .calibration import drift_scale, scale_decades

    if drift_scale(fit.law) is None or "calibration" in fit.__dict__ or "calibration" in fit.extras:
        return False
    if new is not None and (scale_decades(fit, fit._frame(new)) > 0).any():
        return True
    if budgets and {"N", "D"} <= set(fit.law.inputs) and max(budgets) > fit.scale_max:
        return True
    return plots and len(fit.law.inputs) == 1


def fit_line(text: str) -> str:
    """A fit's one-line repr with its problems' advice in options (``--draws``).

    Examples
    --------
    >>> fit_line("<bayescale.Fit draws=100 [PROBLEMS: low ESS: about draws=200 per chain]>")
    '<bayescale.Fit draws=100 [PROBLEMS: low ESS: about --draws 200 per chain]>'
    """
    head, sep, problems = text.partition(" [PROBLEMS: ")
    return head + sep + cli_terms(problems)


def cli_terms(message: str) -> str:
    """Say the fixes of an error message in command-line options, not keyword arguments.

    The library's messages name :func:`bayescale.fit`'s arguments (``x={'D': 'col'}``,
    ``y='col'``, ``trials='col'``, ...); on the command line they are ``--x D=col``,
    ``--y col``, ``--trials col``.

    Examples
    --------
    >>> cli_terms("Rename it or map it with x={'D': 'your_column'}.")
    'Rename it or map it with --x D=your_column.'
    >>> cli_terms("pass a constant with x={'chance': 0.25}; or trials='your_column'")
    'pass a constant with --x chance=0.25; or --trials your_column'
    >>> cli_terms("map them with x={'N': 'params', 'D': 'tokens'}, y='val_loss'.")
    'map them with --x N=params,D=tokens, --y val_loss.'
    >>> cli_terms("(named in pooled=) ... remove 'family' from pooled=. Pass prob=0.9")
    "(named in --pooled) ... remove 'family' from --pooled. Pass --prob 0.9"
    >>> cli_terms("prob must be between 0 and 1 (e.g. 0.9), got 90.0.")
    '--prob must be between 0 and 1 (e.g. 0.9), got 90.0.'
    >>> cli_terms("pass run=<column>; fix parameters with priors={name: value}.")
    'pass --run <column>; fix parameters with --fix name=value.'
    >>> cli_terms("or fix the term (priors={'beta': value, 'B': value}).")
    'or fix the term (--fix beta=value,B=value).'
    >>> cli_terms("draws must be an integer >= 1, got 0 (for example draws=1000, tune=1000).")
    '--draws must be an integer >= 1, got 0 (for example --draws 1000, --tune 1000).'
    >>> cli_terms("For the inner fits: fit.calibrate(draws=1100).")
    'For the inner fits: --calibration-draws 1100.'
    >>> cli_terms("Filter run='zzz': 'zzz' is not a value of 'run' in 'data.csv'")
    "--where run=zzz: 'zzz' is not a value of 'run' in 'data.csv'"
    >>> cli_terms("Filter size=999.0: 999.0 is not a value of 'size'")
    "--where size=999.0: 999.0 is not a value of 'size'"
    >>> cli_terms("random_seed must be None or a non-negative integer, got -1.")
    '--seed must be None or a non-negative integer, got -1.'
    >>> cli_terms("Column 'k' (named in trials=, the trial counts) ... or leave trials= out.")
    "Column 'k' (named in --trials, the trial counts) ... or leave --trials out."
    >>> cli_terms("Known datasets: ['a'] (bayescale.datasets.list() describes them).")
    "Known datasets: ['a'] (bayescale datasets describes them)."
    >>> cli_terms("wider. For a new level on purpose, silence this with "
    ...           "warnings.simplefilter('ignore', bs.PoolingWarning).")
    'wider.'
    >>> cli_terms("has NaN or infinite values at row 7: nan. Drop or fill those rows.")
    'has NaN or infinite values at row 7: nan. Drop or fill those rows (--dropna drops them).'

    """
    def as_option(m: re.Match) -> str:
        pairs = re.findall(r"'(\w+)': '?([^',}]+)'?", m.group(1))
        return "--x " + ",".join(f"{k}={v}" for k, v in pairs)

    def as_fix(m: re.Match) -> str:
        pairs = re.findall(r"'?(\w+)'?: '?([^',}]+)'?", m.group(1))
        return "--fix " + ",".join(f"{k}={v}" for k, v in pairs)

    message = re.sub(r"\bFilter (\w+)=(?:'([^']*)'|([^\s:']+))", r"--where \1=\2\3",
                     message)  # before run='...' becomes --run
    message = re.sub(r"\bx=\{((?:'\w+': '?[^',}]+'?(?:, )?)+)\}", as_option, message)
    message = re.sub(r"\bpriors=\{([^}]*)\}", as_fix, message)
    message = re.sub(r"\b(run|pooled)=<(\w+)>", r"--\1 <\2>", message)
    message = re.sub(r"\b(y|trials|likelihood|run|pooled)='([^']*)'", r"--\1 \2", message)
    message = re.sub(r"\bfit\.calibrate\(draws=(\d+)\)", r"--calibration-draws \1", message)
    message = re.sub(r"^(prob|draws|tune|chains|sampler) must\b", r"--\1 must", message)
    message = re.sub(r"^random_seed must\b", "--seed must", message)
    message = re.sub(r"\btrials=(?=[\s).,;]|$)", "--trials", message)
    message = re.sub(r"\b(draws|tune|chains)=(?=\d)", r"--\1 ", message)
    message = message.replace("bayescale.datasets.list()", "bayescale datasets")
    message = re.sub(r"\bprob=(?=\d)", "--prob ", message)
    # a warning, not an error: on the command line there is no filter to set
    message = re.sub(r" For a new level on purpose, silence this with warnings\.simplefilter"
                     r"\('ignore', bs\.PoolingWarning\)\.", "", message)
    message = message.replace("Drop or fill those rows.",
                              "Drop or fill those rows (--dropna drops them).")
    return re.sub(r"\b(run|pooled)=(?=[\s).,;]|$)", r"--\1", message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bayescale`` command line; return the exit code.

    Examples
    --------
    >>> main(["laws"])  # doctest: +ELLIPSIS
    broken_power_law
    ...
    0
    """
    out = sys.stdout
    parser = _build_parser()
    with _prefixed_log_lines():
        return _main(parser, argv, out)


@contextmanager
def _prefixed_log_lines() -> Iterator[None]:
    """The package's own log lines on stderr start ``bayescale:`` as the command's do.

    Only the handler ``import bayescale`` added (none when the application configured
    logging itself), and only while the command runs.
    """
    import logging

    mine = [h for h in logging.getLogger("bayescale").handlers
            if type(h) is logging.StreamHandler and h.formatter is None]
    for h in mine:
        h.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    try:
        yield
    finally:
        for h in mine:
            h.setFormatter(None)


def _main(parser, argv: Sequence[str] | None, out) -> int:
    try:
        args = parser.parse_args(argv)
        if args.command == "fit":
            return _cmd_fit(args, out)
        if args.command == "laws":
            return _cmd_laws(out)
        if args.command == "datasets":
            return _cmd_datasets(args, out)
        parser.print_help(out)
        return EXIT_USAGE
    except BayescaleError as exc:
        msg = cli_terms(" ".join(str(exc).split()))
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head`
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a result it could not write: a folder in a file's place, a full disk
        where = f" {str(exc.filename)!r}" if exc.filename else ""
        print(f"{PROG}: error: cannot use{where}: {exc.strerror or exc}. For a result in "
              "--out: give --out a folder where its files can be written.", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
