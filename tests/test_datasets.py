"""Dataset registry: local folder, cache, checksummed download, offline errors, bundled data."""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale import datasets as ds
from bayescale.errors import DatasetError
from bayescale.laws import chinchilla

REPO = Path(__file__).resolve().parents[1]
REAL = [n for n, e in ds.REGISTRY.items() if not e.get("bundled")]
CANONICAL_EXPECTED = {
    "chinchilla": ["N", "D", "C", "loss", "epoch_excluded_outlier", "family"],
    "gadre_losses": ["N", "D", "C", "loss", "dataset", "val_set", "model"],
    "gadre_downstream": ["N", "D", "C", "accuracy", "task", "model"],
    "revisiting": ["N", "seen_examples", "value", "curve_id", "split"],
    "porian_isoflop": ["N", "D", "C", "loss", "param_count"],
    "obsscaling_evals": ["N", "D", "C", "family", "metric", "value"],
    "pythia_evals": ["N", "D", "C", "step", "task", "metric", "value"],
}


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No BAYESCALE_DATA, an empty cache in tmp_path, no mirror."""
    monkeypatch.delenv("BAYESCALE_DATA", raising=False)
    monkeypatch.delenv("BAYESCALE_DATA_URL", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("BAYESCALE_CACHE", str(cache))
    return cache


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, *a, **k):
        raise AssertionError(f"network access attempted: {url}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------- local folder
def test_chinchilla_from_local_dir(shared_data, isolated):
    df = bs.datasets.load("chinchilla", data_dir=shared_data)
    assert list(df.columns) == CANONICAL_EXPECTED["chinchilla"]
    assert len(df) == 245
    assert int(df["epoch_excluded_outlier"].sum()) == 5
    # the flagged points are exactly the 5 highest losses (Epoch's rule)
    top5 = set(df["loss"].nlargest(5).index)
    assert set(df.index[df["epoch_excluded_outlier"]]) == top5
    np.testing.assert_allclose(df["D"], df["C"] / (6 * df["N"]), rtol=1e-12)
    assert 5e7 < df["N"].min() < 6e7 and 1.6e10 < df["N"].max() < 1.7e10
    assert not isolated.exists()  # nothing was downloaded or cached


def test_env_var_data_dir(shared_data, isolated, monkeypatch, no_network):
    monkeypatch.setenv("BAYESCALE_DATA", str(shared_data))
    assert ds.path("chinchilla") == shared_data / "epoch_chinchilla" / "chinchilla_fig4_points.csv"
    assert len(ds.load("chinchilla")) == 245


@pytest.mark.parametrize("name", REAL)
def test_every_real_dataset_loads(name, shared_data, isolated, no_network):
    df = ds.load(name, shared_data)
    assert len(df) == ds.REGISTRY[name]["rows"]
    for col in CANONICAL_EXPECTED[name]:
        assert col in df.columns, col
    assert (df["N"] > 0).all()
    if "C" in df and "D" in df:
        ok = df["D"] > 0
        # C = 6 N D in every dataset that has all three (FLOPs conventions are 6ND)
        np.testing.assert_allclose(df.loc[ok, "C"], 6 * df.loc[ok, "N"] * df.loc[ok, "D"],
                                   rtol=1e-6)


def test_registry_checksums_match_shared_manifests(shared_data):
    for name in REAL:
        e = ds.REGISTRY[name]
        man = pd.read_csv(shared_data / e["folder"] / "MANIFEST.csv").set_index("file")
        assert man.loc[e["file"], "sha256"] == e["sha256"], name
        assert int(man.loc[e["file"], "data_rows"]) == e["rows"], name
    src = ds.REGISTRY["chinchilla"]["source"]
    man = pd.read_csv(shared_data / "epoch_chinchilla" / "MANIFEST.csv").set_index("file")
    assert man.loc["raw/svg_extracted_data.csv", "sha256"] == src["sha256"]
    assert src["url"] == (
        f"https://raw.githubusercontent.com/{src['repository']}/{src['commit']}/{src['paths'][0]}"
    )


def test_filters(shared_data, isolated):
    df = ds.load("gadre_losses", shared_data, val_set="openlm")
    assert len(df) == 104 and set(df["val_set"]) == {"openlm"}
    df = ds.load("gadre_losses", shared_data, val_set=["openlm", "c4_val"], dataset="C4")
    assert set(df["val_set"]) == {"openlm", "c4_val"} and set(df["dataset"]) == {"C4"}
    assert len(ds.load("chinchilla", shared_data, epoch_excluded_outlier=False)) == 240
    with pytest.raises(DatasetError, match="no such column"):
        ds.load("gadre_losses", shared_data, nope=1)
    with pytest.raises(DatasetError, match="'nope' is not a value of 'val_set'"):
        ds.load("gadre_losses", shared_data, val_set="nope")
    # the values there are, and the close one (was: "e.g. load(name)[col].unique()")
    with pytest.raises(DatasetError, match=r"its values are 'c4_val', .*'openlm', "
                       r".* Did you mean 'openlm'\?"):
        ds.load("gadre_losses", shared_data, val_set="openLM")
    # a misspelt value of a list is named (the other's rows were kept without a word)
    with pytest.raises(DatasetError, match=r"'c4-val' is not a value of 'val_set'.*"
                                           r"Did you mean 'c4_val'\?"):
        ds.load("gadre_losses", shared_data, val_set=["openlm", "c4-val"])
    # values that all occur, but not together with another filter's
    runs = pd.DataFrame({"family": ["a", "a", "b"], "size": ["s", "m", "l"]})
    with pytest.raises(DatasetError, match=r"Filter size='l' leaves no rows of runs: the rows "
                                           r"the other filters kept have 'size' 'm', 's'\."):
        ds.filter_rows(runs, {"family": "a", "size": "l"}, what="runs")


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="Unknown dataset 'nope'.*synthetic_chinchilla"):
        ds.load("nope")


def test_list():
    table = bs.datasets.list()
    assert list(table.columns[:1]) == ["name"]
    for col in ("description", "source", "licence", "citation"):
        assert table[col].map(lambda s: isinstance(s, str) and len(s) > 5).all(), col
    assert set(table["name"]) == set(ds.REGISTRY) >= set(REAL) | {"synthetic_chinchilla"}
    row = table.set_index("name").loc["chinchilla"]
    assert row["source"].startswith("https://raw.githubusercontent.com/epoch-research/")


# --------------------------------------------------------------------------- checksum
def test_corrupted_local_copy_is_rejected(shared_data, isolated, tmp_path):
    folder = tmp_path / "data" / "epoch_chinchilla"
    folder.mkdir(parents=True)
    bad = folder / "chinchilla_fig4_points.csv"
    text = (shared_data / "epoch_chinchilla" / "chinchilla_fig4_points.csv").read_text()
    bad.write_text(text.replace("5.005581996196243", "5.005581996196244", 1))
    with pytest.raises(DatasetError, match="Checksum mismatch") as err:
        ds.load("chinchilla", data_dir=tmp_path / "data")
    assert str(bad) in str(err.value)
    assert ds.REGISTRY["chinchilla"]["sha256"] in str(err.value)


def test_corrupted_cache_copy_is_rejected(shared_data, isolated):
    f = isolated / "gadre_overtraining" / "gadre_losses_long.csv"
    f.parent.mkdir(parents=True)
    f.write_bytes((shared_data / "gadre_overtraining" / "gadre_losses_long.csv").read_bytes()[:-10])
    with pytest.raises(DatasetError, match="Checksum mismatch.*delete it"):
        ds.load("gadre_losses")


# --------------------------------------------------------------------------- download
def _serve_raw(shared_data: Path, tmp_path: Path, monkeypatch, corrupt: bool = False) -> Path:
    """Put Epoch's raw file in tmp_path and point the registry's URL at it (file://)."""
    served = tmp_path / "server" / "svg_extracted_data.csv"
    served.parent.mkdir(parents=True)
    shutil.copy(shared_data / "epoch_chinchilla" / "raw" / "svg_extracted_data.csv", served)
    if corrupt:
        with open(served, "a") as fh:
            fh.write("1,2,#000000,1e9,1e20,#000000,2.5\n")
    monkeypatch.setitem(ds.REGISTRY["chinchilla"]["source"], "url", served.as_uri())
    return served


def test_download_from_source_and_transform(shared_data, isolated, tmp_path, monkeypatch):
    _serve_raw(shared_data, tmp_path, monkeypatch)
    got = ds.load("chinchilla")
    cached = isolated / "epoch_chinchilla" / "raw" / "svg_extracted_data.csv"
    assert cached.is_file()
    assert _sha(cached) == ds.REGISTRY["chinchilla"]["source"]["sha256"]
    assert ds.path("chinchilla") == cached
    # the transform reproduces the tidy shared file exactly
    want = ds.load("chinchilla", data_dir=shared_data)
    pd.testing.assert_frame_equal(got, want)
    # second load comes from the cache: the source may disappear
    monkeypatch.setitem(ds.REGISTRY["chinchilla"]["source"], "url", "file:///nonexistent/x.csv")
    pd.testing.assert_frame_equal(ds.load("chinchilla"), want)


def test_download_checksum_mismatch(shared_data, isolated, tmp_path, monkeypatch):
    served = _serve_raw(shared_data, tmp_path, monkeypatch, corrupt=True)
    with pytest.raises(DatasetError, match="Checksum mismatch") as err:
        ds.load("chinchilla")
    assert served.as_uri() in str(err.value)
    assert ".part" not in str(err.value)  # the temporary file is gone: not named
    assert f"at '{served.as_uri()}':" in str(err.value)  # quoted once
    folder = isolated / "epoch_chinchilla" / "raw"
    assert not folder.exists() or not any(folder.iterdir())  # nothing half-written is kept


def test_download_from_mirror(shared_data, isolated, monkeypatch):
    monkeypatch.setenv("BAYESCALE_DATA_URL", shared_data.as_uri())
    df = ds.load("gadre_losses")
    assert len(df) == 832
    cached = isolated / "gadre_overtraining" / "gadre_losses_long.csv"
    assert _sha(cached) == ds.REGISTRY["gadre_losses"]["sha256"]


def test_offline_error_names_the_expected_path(isolated, monkeypatch):
    # a closed local port stands in for "no network"
    monkeypatch.setitem(ds.REGISTRY["chinchilla"]["source"], "url", "http://127.0.0.1:9/x.csv")
    with pytest.raises(DatasetError) as err:
        ds.load("chinchilla")
    msg = str(err.value)
    assert "Could not download" in msg
    assert "epoch_chinchilla/chinchilla_fig4_points.csv" in msg
    assert "BAYESCALE_DATA" in msg and "BAYESCALE_CACHE" in msg
    assert str(isolated / "epoch_chinchilla" / "chinchilla_fig4_points.csv") in msg
    assert not (isolated / "epoch_chinchilla" / "chinchilla_fig4_points.csv").exists()


def test_a_connection_dropped_mid_download_is_a_dataset_error(isolated, monkeypatch):
    # http.client's errors (IncompleteRead, BadStatusLine) are not OSErrors: they once
    # escaped as raw tracebacks
    import http.client
    import urllib.request

    def dropped(url, timeout=None):
        raise http.client.IncompleteRead(b"")

    monkeypatch.setattr(urllib.request, "urlopen", dropped)
    with pytest.raises(DatasetError, match=r"Could not download dataset 'chinchilla' .*"
                       r"IncompleteRead"):
        ds.load("chinchilla")
    assert not list(isolated.rglob("*.part"))


def test_no_single_file_source_error(isolated, tmp_path, no_network):
    with pytest.raises(DatasetError, match="no single-file download") as err:
        ds.load("pythia_evals")
    assert "pythia_evals/pythia_evals_main.csv" in str(err.value)
    with pytest.raises(DatasetError, match="download=False") as err:
        ds.load("chinchilla", data_dir=tmp_path / "empty", download=False)
    assert str(tmp_path / "empty" / "epoch_chinchilla" / "chinchilla_fig4_points.csv") in str(
        err.value
    )


def test_a_misplaced_data_folder_or_mirror_is_named(shared_data, isolated, no_network,
                                                    monkeypatch, tmp_path):
    """BAYESCALE_DATA one level too deep, at a file or at no folder, and a mirror given as a
    folder: the messages said where to put the file under the wrong folder, or 'offline?'."""
    deep = shared_data / "pythia_evals"
    with pytest.raises(DatasetError, match=r"is one level too deep: .*BAYESCALE_DATA="
                                           + repr(str(shared_data)).replace(".", r"\.")):
        ds.load("pythia_evals", data_dir=deep)
    with pytest.raises(DatasetError, match="is a file, not a folder"):
        ds.load("pythia_evals", data_dir=deep / "pythia_evals_main.csv")
    with pytest.raises(DatasetError, match="does not exist"):
        ds.load("pythia_evals", data_dir=tmp_path / "nowhere")
    monkeypatch.setenv("BAYESCALE_DATA", f"{shared_data} ")  # a trailing space
    assert len(ds.load("gadre_losses")) > 0
    monkeypatch.delenv("BAYESCALE_DATA")
    monkeypatch.setenv("BAYESCALE_DATA_URL", str(shared_data))
    with pytest.raises(DatasetError, match=r"is not a URL .*set BAYESCALE_DATA="):
        ds.load("gadre_losses")


# -------------------------------------------------------------------------- synthetic
def test_synthetic_loads_with_no_env_and_no_network(isolated, no_network):
    df = bs.datasets.load("synthetic_chinchilla")
    assert len(df) == 60
    assert {"N", "D", "C", "loss"} <= set(df.columns)
    assert 5e7 <= df["N"].min() and df["N"].max() <= 1e10
    tpp = df["D"] / df["N"]
    assert 5 <= tpp.min() and tpp.max() <= 100
    np.testing.assert_allclose(df["C"], 6 * df["N"] * df["D"], rtol=1e-12)
    truth = dict(ds.REGISTRY["synthetic_chinchilla"]["truth"])
    truth.pop("noise_sd_log")
    np.testing.assert_allclose(df["loss_true"], chinchilla(df["N"], df["D"], **truth), atol=1e-6)
    resid = np.log(df["loss"] / df["loss_true"])
    assert 0.006 < resid.std() < 0.014 and abs(resid.mean()) < 0.005
    assert not isolated.exists()


def test_bundled_copies_identical_and_in_manifest():
    manifest = pd.read_csv(REPO / "datasets" / "MANIFEST.csv").set_index("file")
    for name in ("synthetic_chinchilla", "synthetic_chinchilla_families"):
        e = ds.REGISTRY[name]
        repo_copy = REPO / "datasets" / e["file"]
        pkg_copy = REPO / "bayescale" / "registry" / e["file"]
        assert repo_copy.read_bytes() == pkg_copy.read_bytes()
        assert _sha(repo_copy) == e["sha256"] == manifest.loc[e["file"], "sha256"]
        assert len(ds.load(name)) == e["rows"] == manifest.loc[e["file"], "data_rows"]
    fam = ds.load("synthetic_chinchilla_families")
    assert fam.groupby("family").size().to_dict() == {"fam_a": 20, "fam_b": 20, "fam_c": 20}


def test_filters_take_arrays_and_say_when_the_type_is_wrong(shared_data, isolated, no_network):
    # an array of values once filtered nothing; text for a numeric or True/False column got
    # a hint suggesting the very value given
    kw = dict(data_dir=shared_data)
    both = ds.load("gadre_losses", val_set=np.array(["openlm", "c4_val"]), **kw)
    assert len(both) == len(ds.load("gadre_losses", val_set=["openlm", "c4_val"], **kw)) > 0
    with pytest.raises(DatasetError, match=r"'num_fewshot' holds numbers, not text: pass "
                                           r"num_fewshot=5\.$"):
        ds.load("pythia_evals", num_fewshot="5", **kw)
    with pytest.raises(DatasetError, match=r"are False, True\. 'deduped' holds True/False"):
        ds.load("pythia_evals", deduped="False", **kw)
    with pytest.raises(DatasetError, match=r"The source's column 'params' is 'N' after "
                                           r"loading: filter N=\.\.\."):
        ds.load("gadre_losses", params=1e8, **kw)


def test_a_data_dir_that_is_not_a_path_is_said():
    """data_dir=5 raised pathlib's TypeError."""
    with pytest.raises(DatasetError, match="data_dir is the folder .* got 5"):
        ds.load("chinchilla", data_dir=5)


def test_download_must_be_a_bool():
    """download="no" is truthy: it went to the network."""
    with pytest.raises(DatasetError, match="download must be True or False, got 'no'"):
        ds.load("chinchilla", download="no")


def test_a_cache_that_cannot_be_written_is_not_blamed_on_the_network(
        shared_data, isolated, tmp_path, monkeypatch):
    # BAYESCALE_CACHE naming a file said "Could not download ...; offline?" and advised
    # putting the file at a path inside that file
    _serve_raw(shared_data, tmp_path, monkeypatch)
    isolated.parent.mkdir(parents=True, exist_ok=True)
    isolated.write_text("a file, not a folder")
    with pytest.raises(DatasetError) as err:
        ds.load("chinchilla")
    msg = str(err.value)
    assert msg.startswith("Cannot write the download of source file of 'chinchilla' into the "
                          f"cache folder '{isolated / 'epoch_chinchilla' / 'raw'}' (")
    assert "offline" not in msg and "BAYESCALE_CACHE to a folder you can write" in msg
