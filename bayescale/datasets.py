"""Public scaling-law datasets: registry, checksummed loading and download.

Each dataset in ``bayescale/registry/datasets.json`` records its public source
(repository, commit, file paths, raw URL), licence, citation, the sha256 of its
file and the mapping of its columns to the canonical names ``N`` (parameters),
``D`` (training tokens) and ``C`` (training FLOPs). :func:`load` returns a tidy
DataFrame with those names, ready for :func:`bayescale.fit`.

Where a file is looked for, in order:

1. a local folder: the ``data_dir`` argument, else the ``BAYESCALE_DATA``
   environment variable, holding ``<folder>/<file>`` (e.g.
   ``epoch_chinchilla/chinchilla_fig4_points.csv``);
2. the user cache: ``BAYESCALE_CACHE``, else ``~/.cache/bayescale``, same layout;
3. a download into the cache: from ``BAYESCALE_DATA_URL`` (a mirror with the same
   layout) when set, else from the dataset's source URL when its tidy form can
   be rebuilt from one public file (``chinchilla``). Every file is checked
   against its sha256 before use.

The synthetic datasets ship inside the package and need neither.
"""

from __future__ import annotations

import builtins
import hashlib
import http.client
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import BayescaleError, DatasetError, did_you_mean

# "list" is left out: a star import would shadow the builtin
__all__ = ["REGISTRY", "cache_dir", "list_datasets", "load", "path"]

_HERE = Path(__file__).resolve().parent
REGISTRY_FILE = _HERE / "registry" / "datasets.json"

#: The dataset registry (name -> entry), read from ``registry/datasets.json``.
REGISTRY: dict[str, dict[str, Any]] = json.loads(REGISTRY_FILE.read_text())

ENV_DATA = "BAYESCALE_DATA"
ENV_CACHE = "BAYESCALE_CACHE"
ENV_URL = "BAYESCALE_DATA_URL"
CANONICAL = ("N", "D", "C")
_TIMEOUT_S = 60


# ----------------------------------------------------------------------------- helpers
def _entry(name: str) -> dict[str, Any]:
    if name not in REGISTRY:
        raise DatasetError(
            f"Unknown dataset {name!r}.{did_you_mean(name, REGISTRY)} Known datasets: "
            f"{sorted(REGISTRY)} "
            "(bayescale.datasets.list() describes them)."
        )
    return REGISTRY[name]


def sha256_file(file: str | Path) -> str:
    """Hex sha256 of a file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> sha256_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(file, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(file: Path, expected: str, what: str, fix: str, shown: str | None = None) -> None:
    """Raise a DatasetError unless ``file``'s sha256 is ``expected``.

    ``shown``: where the file is said to come from (a temporary file will be gone).
    """
    if not expected:
        return
    got = sha256_file(file)
    if got != expected:
        raise DatasetError(
            f"Checksum mismatch for {what} at {shown or str(file)!r}: sha256 {got}, expected "
            f"{expected}. The file is corrupted or a different version; {fix}"
        )


def cache_dir() -> Path:
    """Return the download cache: ``BAYESCALE_CACHE``, else ``~/.cache/bayescale``.

    Examples
    --------
    >>> isinstance(cache_dir(), Path)
    True
    """
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bayescale"


def _data_dirs(data_dir: str | Path | None) -> builtins.list[Path]:
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise DatasetError(
                f"data_dir is the folder that holds one folder per dataset (a path), got "
                f"{data_dir!r}."
            )
        return [Path(data_dir).expanduser()]
    env = (os.environ.get(ENV_DATA) or "").strip()
    return [Path(env).expanduser()] if env else []


def _bundled_file(entry: dict[str, Any]) -> Path:
    pkg = _HERE / "registry" / entry["file"]
    if pkg.exists():
        return pkg
    repo = _HERE.parent / "datasets" / entry["file"]  # source checkout
    if repo.exists():
        return repo
    raise DatasetError(
        f"The bundled file {entry['file']!r} is missing from the installed package "
        f"({str(pkg)!r}). Reinstall bayescale or run `python scripts/make_synthetic.py` "
        "in the repository."
    )


def _raw_name(entry: dict[str, Any]) -> str:
    return Path(entry["source"]["paths"][0]).name


def _where_to_put(name: str, entry: dict[str, Any], dirs: builtins.list[Path]) -> str:
    rel = f"{entry['folder']}/{entry['file']}"
    local = (
        f"{str(dirs[0] / rel)!r}"
        if dirs
        else f"'<dir>/{rel}' and set {ENV_DATA}=<dir> (or pass data_dir=<dir>)"
    )
    src = entry["source"]
    origin = f"{src['repository']}@{(src.get('commit') or '')[:12]} ({', '.join(src['paths'])})"
    return (
        f"{_dir_problem(entry, dirs)}Put the file {entry['file']!r} at {local}, or in the cache at "
        f"{str(cache_dir() / rel)!r} ({ENV_CACHE} moves the cache). It is derived from "
        f"{origin}; see the 'source' of {name!r} in bayescale/registry/datasets.json."
    )


def _dir_problem(entry: dict[str, Any], dirs: builtins.list[Path]) -> str:
    """What is wrong with the data folder given (``BAYESCALE_DATA`` or ``data_dir``), if seen.

    Examples
    --------
    >>> entry = {"folder": "epoch_chinchilla", "file": "points.csv"}
    >>> _dir_problem(entry, [Path("/no/such/folder")])
    "The data folder '/no/such/folder' (data_dir or BAYESCALE_DATA) does not exist. "
    """
    if not dirs:
        return ""
    d = dirs[0]
    given = f"The data folder {str(d)!r} (data_dir or {ENV_DATA})"
    if not d.exists():
        return f"{given} does not exist. "
    if not d.is_dir():
        return f"{given} is a file, not a folder. "
    if (d.name == entry["folder"] or (d / entry["file"]).is_file()
            or (d.parent / entry["folder"] / entry["file"]).is_file()):
        return (f"{given} is one level too deep: give the folder that holds one folder per "
                f"dataset ({entry['folder']}/ among them), {ENV_DATA}={str(d.parent)!r}. ")
    return ""


def _download(url: str, dest: Path, expected: str, what: str) -> Path:
    """Download ``url`` to ``dest`` atomically; verify its sha256 first."""
    try:  # the cache's own problem, not the network's
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    except OSError as exc:
        raise DatasetError(
            f"Cannot write the download of {what} into the cache folder {str(dest.parent)!r} "
            f"({exc.strerror or exc}): set {ENV_CACHE} to a folder you can write, or "
            f"{ENV_DATA} to a folder that already holds the file."
        ) from None
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as r:
            shutil.copyfileobj(r, out)
        _verify(Path(tmp), expected, what, "the download was not kept.", shown=url)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


# ------------------------------------------------------------------------ transforms
def _epoch_chinchilla(raw: pd.DataFrame) -> pd.DataFrame:
    """Epoch AI's ``svg_extracted_data.csv`` -> the tidy Chinchilla points.

    ``tokens = flops / (6 params)`` and the 5 highest losses flagged as Epoch's
    excluded outliers, exactly as in ``epoch_chinchilla/chinchilla_fig4_points.csv``.
    """
    out = pd.DataFrame(
        {
            "family": "chinchilla_hoffmann2022",
            "params": raw["Model Size"].astype(float),
            "flops": raw["Training FLOP"].astype(float),
            "loss": raw["loss"].astype(float),
        }
    )
    out["tokens"] = out["flops"] / (6.0 * out["params"])
    threshold = np.sort(out["loss"].to_numpy())[-5]
    out["epoch_excluded_outlier"] = out["loss"] >= threshold
    return out


TRANSFORMS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "epoch_chinchilla": _epoch_chinchilla,
}


# ------------------------------------------------------------------------- resolving
def _resolve(
    name: str, data_dir: str | Path | None, download: bool
) -> tuple[Path, str]:
    """Return ``(file, kind)``; ``kind`` is ``"tidy"`` or ``"raw"`` (needs the transform)."""
    if not isinstance(download, (bool, np.bool_)):  # "no" is truthy: it downloaded
        raise DatasetError(f"download must be True or False, got {download!r}.")
    entry = _entry(name)
    if entry.get("bundled"):
        f = _bundled_file(entry)
        _verify(f, entry["sha256"], f"bundled dataset {name!r}",
                "run `python scripts/make_synthetic.py` or reinstall bayescale.")
        return f, "tidy"
    rel = Path(entry["folder"]) / entry["file"]
    dirs = _data_dirs(data_dir)
    src = entry["source"]
    fix = f"replace it with the original ({_where_to_put(name, entry, dirs)})"
    for d in dirs:
        f = d / rel
        if f.is_file():
            _verify(f, entry["sha256"], f"dataset {name!r}", fix)
            return f, "tidy"
    cache = cache_dir()
    f = cache / rel
    if f.is_file():
        _verify(f, entry["sha256"], f"dataset {name!r}", "delete it to download it again; or "
                + fix)
        return f, "tidy"
    raw = cache / entry["folder"] / "raw" / _raw_name(entry) if src.get("transform") else None
    if raw is not None and raw.is_file():
        _verify(raw, src["sha256"], f"source file of {name!r}", "delete it to download again.")
        return raw, "raw"
    if not download:
        raise DatasetError(
            f"Dataset {name!r} is not available locally and download=False. "
            + _where_to_put(name, entry, dirs)
        )
    mirror = os.environ.get(ENV_URL)
    attempts = []
    try:
        if mirror:
            if "://" not in mirror:
                raise DatasetError(
                    f"{ENV_URL}={mirror!r} is not a URL (e.g. https://host/datasets or "
                    f"file:///path/to/datasets); for a folder on this machine set "
                    f"{ENV_DATA}={mirror!r} instead."
                )
            url = f"{mirror.rstrip('/')}/{entry['folder']}/{entry['file']}"
            attempts.append(url)
            return _download(url, f, entry["sha256"], f"dataset {name!r}"), "tidy"
        if raw is not None and src.get("url"):
            attempts.append(src["url"])
            return _download(src["url"], raw, src["sha256"], f"source file of {name!r}"), "raw"
    except DatasetError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(
            f"Could not download dataset {name!r} from {attempts[-1]} ({reason}); offline? "
            + _where_to_put(name, entry, dirs)
        ) from None
    raise DatasetError(
        f"Dataset {name!r} was not found locally and has no single-file download (its tidy "
        f"file is built from several source files). {_where_to_put(name, entry, dirs)} "
        f"Or set {ENV_URL} to a mirror laid out as <folder>/<file>."
    )


def path(name: str, data_dir: str | Path | None = None, *, download: bool = True) -> Path:
    """Local, checksum-verified file that :func:`load` reads for ``name``.

    For a dataset fetched from its public source and rebuilt on load (``chinchilla``
    without a local tidy copy) this is the raw source file in the cache.

    Parameters
    ----------
    name : str
        Registered dataset name (:func:`list` shows them).
    data_dir : str or Path, optional
        Folder laid out as ``<folder>/<file>``; default ``BAYESCALE_DATA``.
    download : bool
        Fetch into the cache when no local copy exists (default True).

    Examples
    --------
    >>> path("synthetic_chinchilla").name
    'synthetic_chinchilla.csv'
    """
    return _resolve(name, data_dir, download)[0]


def load(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    **where: Any,
) -> pd.DataFrame:
    """Load a registered dataset as a tidy DataFrame with canonical column names.

    Parameters
    ----------
    name : str
        Registered dataset name (:func:`list` shows them).
    data_dir : str or Path, optional
        Folder holding ``<folder>/<file>`` (the layout of the shared datasets
        folder); default: the ``BAYESCALE_DATA`` environment variable. Then the
        cache, then a checksummed download (see the module docstring).
    download : bool
        Allow a download when no local copy exists (default True).
    **where
        Row filters ``column=value`` (or a list of values), applied after
        renaming, e.g. ``val_set="openlm"``.

    Returns
    -------
    DataFrame
        ``N`` (parameters), ``D`` (tokens), ``C`` (FLOPs) where they apply, first
        and as float64, then the dataset's other columns.

    Raises
    ------
    DatasetError
        Unknown name, no local copy and no download possible (the message says
        where to put the file), or a checksum mismatch.

    Examples
    --------
    >>> df = load("synthetic_chinchilla")
    >>> len(df), df.columns[:3].tolist()
    (60, ['N', 'D', 'C'])
    >>> round(float(df["loss"].min()), 3)
    2.088
    """
    entry = _entry(name)
    file, kind = _resolve(name, data_dir, download)
    df = pd.read_csv(file)
    if kind == "raw":
        df = TRANSFORMS[entry["source"]["transform"]](df)
    df = df.rename(columns=entry.get("columns", {}))
    keep = entry.get("keep")
    if keep:
        df = df[[c for c in keep if c in df.columns]]
    front = [c for c in CANONICAL if c in df.columns]
    df = df[front + [c for c in df.columns if c not in front]]
    # float64 so that products such as 6 * N * D cannot overflow int64
    df = df.astype({c: float for c in front})
    if "rows" in entry and len(df) != entry["rows"]:  # pragma: no cover - guarded by sha256
        raise DatasetError(
            f"Dataset {name!r} has {len(df)} rows, expected {entry['rows']} ({str(file)!r})."
        )
    df = filter_rows(df, where, what=f"dataset {name!r}", renamed=entry.get("columns", {}))
    return df.reset_index(drop=True)


def filter_rows(
    df: pd.DataFrame,
    where: Mapping[str, Any],
    *,
    what: str,
    renamed: Mapping[str, str] | None = None,
    text: bool = False,
    error: type[BayescaleError] = DatasetError,
) -> pd.DataFrame:
    """Rows of ``df`` with ``column == value`` (or one of a list of values) for each filter.

    Every value must occur in its column: a misspelt one of a list (``["openlm",
    "c4-val"]``) once left the other's rows without a word. ``text``: the values come as
    text (the command line's ``--where``) and are read as the column holds them
    (numbers, True/False, or text that looks like a number, such as ``"1.68e+07"``).

    Examples
    --------
    >>> df = pd.DataFrame({"model": ["1.68e+07", "6 Enc, 6 Dec"], "step": [1.0, 2.0]})
    >>> filter_rows(df, {"model": "1.68e+07", "step": "1"}, what="data", text=True)
          model  step
    0  1.68e+07   1.0
    >>> filter_rows(df, {"step": [1.0, 3.0]}, what="data")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescale.errors.DatasetError: Filter step=[1.0, 3.0]: 3.0 is not a value of 'step' ...
    """
    whole = df
    for col, value in where.items():
        if col not in df.columns:
            also = ""
            if renamed and renamed.get(col):
                also = (f" The source's column {col!r} is {renamed[col]!r} after loading: "
                        f"filter {renamed[col]}=... .")
            raise error(f"Cannot filter {what} on {col!r}: no such column.{also} "
                        f"Columns: {[*df.columns]}.")
        listed = pd.api.types.is_list_like(value) and not isinstance(value, (str, bytes))
        values = builtins.list(value) if listed else [value]
        if text:
            values = [_as_in_column(whole[col], v) for v in values]
            value = values if listed else values[0]
        present = [v.item() if isinstance(v, np.generic) else v
                   for v in sorted(whole[col].dropna().unique(), key=str)]
        strings = [str(p) for p in present]
        shown = ", ".join(repr(v) for v in present[:12]) + (", ..." if len(present) > 12 else "")
        boolean = pd.api.types.is_bool_dtype(whole[col])
        for v in values:
            if whole[col].isin([v]).any():
                continue
            hint = did_you_mean(str(v), strings) if not isinstance(v, str) or v not in strings \
                else ""
            if isinstance(v, str) and (boolean or pd.api.types.is_numeric_dtype(whole[col])):
                kind = "True/False" if boolean else "numbers"
                hint = (f" {col!r} holds {kind}, not text: pass {col}="
                        f"{present[strings.index(v)]!r}." if v in strings else
                        f" {col!r} holds {kind}, not text.")
            raise error(f"Filter {col}={value!r}: {v!r} is not a value of {col!r} in {what}; "
                        f"its values are {shown}.{hint}")
        kept = df[df[col].isin(values)]
        if kept.empty:
            left = sorted(df[col].dropna().astype(str).unique())
            raise error(
                f"Filter {col}={value!r} leaves no rows of {what}: the rows the other filters "
                f"kept have {col!r} {', '.join(repr(v) for v in left[:12])}"
                f"{', ...' if len(left) > 12 else ''}."
            )
        df = kept
    return df


def _as_in_column(column: pd.Series, text: Any) -> Any:
    """A command-line value read as ``column`` holds its values (number, bool or text)."""
    if not isinstance(text, str):
        return text
    t = text.strip()
    if pd.api.types.is_bool_dtype(column):
        return {"true": True, "false": False}.get(t.lower(), t)
    if pd.api.types.is_numeric_dtype(column):
        try:
            return float(t)
        except ValueError:
            return t
    return t


def list_datasets() -> pd.DataFrame:
    """One row per registered dataset: name, description, source, licence, citation.

    Also gives ``rows`` and the ``file`` (``<folder>/<file>``) looked for locally.

    Examples
    --------
    >>> "chinchilla" in list_datasets()["name"].tolist()
    True
    """
    rows = []
    for name, e in REGISTRY.items():
        s = e["source"]
        where = f"{s['repository']}@{(s.get('commit') or '')[:12]}".rstrip("@")
        source = s.get("url") or f"{where}: {', '.join(s['paths'])}"
        rows.append(
            {
                "name": name,
                "description": e["description"],
                "rows": e.get("rows"),
                "file": "(bundled)" if e.get("bundled") else f"{e['folder']}/{e['file']}",
                "source": source,
                "licence": e["licence"],
                "citation": e["citation"],
            }
        )
    return pd.DataFrame(rows)


#: ``bayescale.datasets.list()``: alias of :func:`list_datasets`.
list = list_datasets  # noqa: A001
