"""JAX programs exported once and stored on disk (bayescale.programs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale import compiled as C
from bayescale import programs as P
from bayescale.laws import power_law
from bayescale.model import make_spec

_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, warnings
    import numpy as np, pandas as pd
    import bayescale as bs
    from bayescale import compiled as C
    rng = np.random.default_rng(0)
    x = np.exp(rng.uniform(np.log(1e3), np.log(1e7), 30))
    df = pd.DataFrame({"x": x, "loss": (1.5 + 30 * x ** -0.3) * np.exp(0.01 * rng.normal(size=30))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = bs.fit(df, "power_law", likelihood="studentt", sampler="jax", random_seed=5,
                   draws=100, tune=100, chains=2, warn=False)
    h = hashlib.sha256()
    for v in ("E", "A", "alpha", "sigma", "nu"):
        h.update(np.ascontiguousarray(f.posterior[v].values).tobytes())
    h.update(np.ascontiguousarray(f.idata.log_likelihood["y_obs"].values).tobytes())
    print(json.dumps({"counts": dict(C.COMPILE_COUNTS), "draws": h.hexdigest(),
                      "timing": {k: f.settings["timing"][k]
                                 for k in ("compiled", "loaded", "chain_method")},
                      "alpha": float(f.posterior["alpha"].mean())}))
    """
)


def _run(tmp_path, programs: str) -> dict:
    env = dict(os.environ, BAYESCALE_JAX_PROGRAMS=programs,
               BAYESCALE_JAX_CACHE=str(tmp_path / "xla"), BAYESCALE_NO_PROGRESS="1")
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_new_process_loads_the_stored_programs_and_draws_the_same(tmp_path):
    folder = str(tmp_path / "programs")
    first = _run(tmp_path, folder)
    assert first["counts"].get("jax_trace") == 1 and not first["counts"].get("jax_load")
    stored = sorted(p.split("-")[0] for p in os.listdir(folder))
    assert stored == ["fit", "init", "post"], stored
    second = _run(tmp_path, folder)
    # no PyTensor translation, no tracing: the three programs come from disk
    assert second["counts"] == {"jax_load": 3}, second["counts"]
    # on CPU the chains run one per host device, which PyMC's JAX module asks XLA for
    assert first["timing"] == {"compiled": True, "loaded": False, "chain_method": "parallel"}
    assert second["timing"] == {"compiled": False, "loaded": True, "chain_method": "parallel"}
    assert second["draws"] == first["draws"]
    # without the disk cache the same jitted programs run: the same draws again
    off = _run(tmp_path, "0")
    assert off["counts"].get("jax_trace") == 1 and not off["counts"].get("jax_load")
    assert off["draws"] == first["draws"]
    assert abs(first["alpha"] - 0.3) < 0.05


def test_a_batch_first_starts_jax_with_the_host_devices_of_a_fit():
    """The JAX path's first call asks XLA for PyMC's host devices before JAX starts, whichever
    entry point comes first: ``fit_batch`` started JAX with one device, so a later
    ``fit(sampler="jax")`` in that process ran its chains vectorised, and one seed gave other
    draws than in a process whose first JAX call was a fit."""
    script = textwrap.dedent(
        """
        import numpy as np, pandas as pd
        import bayescale as bs
        from bayescale import compiled as C
        from bayescale.model import make_spec
        df = pd.DataFrame({"y": np.linspace(2.0, 3.0, 6), "x": np.geomspace(1e3, 1e6, 6)})
        specs = [make_spec(df, bs.get_law("power_law"), priors=p, pooled={}, likelihood=None,
                           x={}, y="loss") for p in (None, {"alpha": 0.3})]
        try:  # two structures: refused before sampling
            C.sample_batch(specs, [None, None], [None, None], draws=10, tune=10, chains=4,
                           random_seeds=[0, 1])
        except bs.BayescaleError:
            pass
        import jax
        print(jax.local_device_count())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split()[-1]) >= 4


def test_cached_program_stores_loads_and_rebuilds(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESCALE_JAX_PROGRAMS", str(tmp_path))
    counts = {"jax_load": 0}
    built = []
    mem: dict = {}  # one process's program table

    def build():
        built.append(1)
        return jax.jit(lambda x, s: {"y": 2.0 * x + s})

    args = (np.arange(3.0), np.float64(1.0))
    f = P.cached_program(mem, "demo", {"a": 1}, args, build, counts, stable_key=("k",))
    np.testing.assert_array_equal(f(*args)["y"], [1.0, 3.0, 5.0])
    assert len(built) == 1 and len(list(tmp_path.glob("demo-*.jaxexport"))) == 1
    # in memory: the same callable
    assert P.cached_program(mem, "demo", {"a": 1}, args, build, counts, ("k",)) is f
    # a new process (memory forgotten): read from disk, not built
    mem = {}
    g = P.cached_program(mem, "demo", {"a": 1}, args, build, counts, stable_key=("k",))
    assert len(built) == 1 and counts["jax_load"] == 1
    np.testing.assert_array_equal(g(np.ones(3), np.float64(0.0))["y"], [2.0, 2.0, 2.0])
    # other shapes or settings: another program
    P.cached_program(mem, "demo", {"a": 1}, (np.arange(4.0), 1.0), build, counts, ("k",))
    P.cached_program(mem, "demo", {"a": 2}, args, build, counts, ("k",))
    assert len(built) == 3 and len(list(tmp_path.glob("demo-*.jaxexport"))) == 3
    # a damaged file is built again, not an error
    mem = {}
    for p in tmp_path.glob("demo-*.jaxexport"):
        p.write_bytes(b"not a program")
    h = P.cached_program(mem, "demo", {"a": 1}, args, build, counts, stable_key=("k",))
    np.testing.assert_array_equal(h(*args)["y"], [1.0, 3.0, 5.0])
    assert len(built) == 4 and counts["jax_load"] == 1
    # a file that loads but does not run (another program's, or bytes damaged inside its
    # StableHLO) made every later fit of the structure fail: it is built and stored anew
    def path_of(a):
        disk = P._disk_key(("k",), "demo", (("a", 1),), P._signature(a))
        return tmp_path / f"demo-{disk}.jaxexport"

    four = (np.arange(4.0), np.float64(1.0))
    P.cached_program({}, "demo", {"a": 1}, four, build, counts, stable_key=("k",))
    target, foreign = path_of(args), path_of(four)
    assert target.is_file() and foreign.is_file()
    target.write_bytes(foreign.read_bytes())  # a valid program of other arguments
    n_built, n_loads = len(built), counts["jax_load"]
    bad = P.cached_program({}, "demo", {"a": 1}, args, build, counts, stable_key=("k",))
    assert counts["jax_load"] == n_loads + 1  # it deserializes
    np.testing.assert_array_equal(bad(*args)["y"], [1.0, 3.0, 5.0])
    np.testing.assert_array_equal(bad(*args)["y"], [1.0, 3.0, 5.0])  # once rebuilt
    assert len(built) == n_built + 1 and target.read_bytes() != foreign.read_bytes()
    # the rebuilt file serves the next process
    good = P.cached_program({}, "demo", {"a": 1}, args, build, counts, stable_key=("k",))
    np.testing.assert_array_equal(good(*args)["y"], [1.0, 3.0, 5.0])
    assert len(built) == n_built + 1
    # a program jax.export cannot store (a host callback) runs from memory
    def build_cb():
        def f(x):
            return jax.pure_callback(lambda v: np.asarray(v) * 3.0,
                                     jax.ShapeDtypeStruct(x.shape, x.dtype), x)
        return jax.jit(f)

    cb = P.cached_program(mem, "cb", {}, (np.arange(3.0),), build_cb, counts, ("c",))
    np.testing.assert_array_equal(cb(np.arange(3.0)), [0.0, 3.0, 6.0])
    assert not list(tmp_path.glob("cb-*"))
    # without a stable key: memory only
    P.cached_program(mem, "mem", {}, args, build, counts, stable_key=None)
    assert not list(tmp_path.glob("mem-*"))
    assert P.clear_disk() == 3 and not list(tmp_path.glob("*.jaxexport"))
    # a write cut short (a full disk) runs from memory and leaves no part of the file
    real = type(tmp_path).write_bytes

    def full_disk(self, data):
        real(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(tmp_path), "write_bytes", full_disk)
    full = P.cached_program({}, "full", {}, args, build, counts, stable_key=("f",))
    np.testing.assert_array_equal(full(*args)["y"], [1.0, 3.0, 5.0])
    assert not list(tmp_path.iterdir())
    monkeypatch.undo()
    (tmp_path / "demo-x.123.tmp").write_bytes(b"part")  # a process killed mid-write
    monkeypatch.setenv("BAYESCALE_JAX_PROGRAMS", str(tmp_path))
    assert P.clear_disk() == 1 and not list(tmp_path.iterdir())


def test_stable_structure_key_names_code_not_identity():
    df = pd.DataFrame({"x": [1.0, 2, 4, 8, 16], "y": [3.0, 2.5, 2.2, 2.0, 1.9]})
    kw = dict(priors=None, pooled={}, likelihood=None, x={}, y="loss")
    k1 = C.stable_structure_key(make_spec(df, power_law, **kw))
    k2 = C.stable_structure_key(make_spec(df.iloc[:4] * 2, power_law, **kw))
    assert k1 == k2 and str(id(power_law)) not in repr(k1)
    assert "bayescale.laws" in repr(k1)

    # a law defined in a file: keyed by a hash of its source
    @bs.law(priors=dict(power_law.priors), terms={"A": ("alpha", "x")}, register=False)
    def mine(x, *, E, A, alpha):
        return E + A * x ** (-alpha)

    km = C.stable_structure_key(make_spec(df, mine, **kw))
    assert km is not None and km != k1

    # a law whose source cannot be read (made with exec): no stable key, memory only
    ns: dict = {}
    exec("def anon(x, *, E, A, alpha):\n    return E + A * x ** (-alpha)\n", ns)
    anon = bs.law(priors=dict(power_law.priors), terms={"A": ("alpha", "x")},
                  register=False)(ns["anon"])
    assert C.stable_structure_key(make_spec(df, anon, **kw)) is None


SCALE = 1.0
_DF = pd.DataFrame({"x": [1.0, 2, 4, 8, 16], "y": [3.0, 2.5, 2.2, 2.0, 1.9]})
_KW = dict(priors=None, pooled={}, likelihood=None, x={}, y="loss")


def _user_spec(func):
    """The spec of a power law computed by ``func`` (a user's law, not registered)."""
    law = bs.law(priors=dict(power_law.priors), terms={"A": ("alpha", "x")},
                 register=False)(func)
    return make_spec(_DF, law, **_KW)


def _scaled(x, *, E, A, alpha):
    return E + SCALE * A * x ** (-alpha)


def _scaled_inside(x, *, E, A, alpha):
    scaled = lambda v: v * SCALE  # noqa: E731 - read inside a nested function
    return E + A * scaled(x) ** (-alpha)


class _Scaled:
    def __init__(self, s):
        self.s = s

    def law(self, x, *, E, A, alpha):
        return E + self.s * A * x ** (-alpha)


def test_stable_key_follows_what_a_user_law_computes_with():
    """A stored program must not outlive a change that alters the law: captured values
    and module constants it reads are part of the key; unknown objects keep it in memory."""
    global SCALE
    df = pd.DataFrame({"x": [1.0, 2, 4, 8, 16], "y": [3.0, 2.5, 2.2, 2.0, 1.9]})
    kw = dict(priors=None, pooled={}, likelihood=None, x={}, y="loss")

    def key(func):
        return C.stable_structure_key(_user_spec(func))

    def make(k):
        def f(x, *, E, A, alpha):
            return E + k * A * x ** (-alpha)
        return f

    # the same source, other captured values: other keys
    assert key(make(1.0)) != key(make(2.0))
    assert key(make(1.0)) == key(make(1.0))
    # a module constant the law reads
    before = key(_scaled)
    SCALE = 2.0
    try:
        assert key(_scaled) != before
    finally:
        SCALE = 1.0
    assert key(_scaled) == before
    # ... read inside a lambda or comprehension of the law (a stored program with the old
    # value was loaded: A 8x off) ...
    before = key(_scaled_inside)
    SCALE = 1000.0
    try:
        assert before is not None and key(_scaled_inside) != before
    finally:
        SCALE = 1.0
    # ... or through a bound method's object (two objects, one key): no stable key, and
    # in memory each law is its own structure
    assert key(_Scaled(1.0).law) is None

    alive = []  # keyed by identity: a law freed before the next one is made can share its
    # id (as the compiled cache, which holds its laws, never lets happen); that made this flaky

    def mem_key(func):
        law = bs.law(priors=dict(power_law.priors), terms={"A": ("alpha", "x")},
                     register=False)(func)
        alive.append(law)
        return C.structure_key(make_spec(df, law, **kw))

    assert mem_key(_Scaled(1.0).law) != mem_key(_Scaled(1000.0).law)
    assert mem_key(_scaled_inside) == mem_key(_scaled_inside)  # code, not identity
    # a prior given as a 0-d array keys as its number (it raised "unhashable"; and the
    # fit could not be saved: "ndarray is not JSON serializable")
    arr_prior = bs.Prior("Normal", mu=np.array(-1.2), sigma=np.float32(1.0))
    assert arr_prior.params == {"mu": -1.2, "sigma": 1.0}
    assert type(arr_prior.params["mu"]) is float and hash(arr_prior) == hash(
        bs.Prior("Normal", mu=-1.2, sigma=1.0))
    arr = dict(kw, priors={"A": arr_prior})
    num = dict(kw, priors={"A": bs.Prior("Normal", mu=-1.2, sigma=1.0)})
    assert hash(C.structure_key(make_spec(df, power_law, **arr))) == hash(
        C.structure_key(make_spec(df, power_law, **num)))

    # a captured object of unknown kind: no stable key
    class Knob:
        v = 1.0

    knob = Knob()

    def g(x, *, E, A, alpha):
        return E + knob.v * A * x ** (-alpha)

    assert key(g) is None

    # a dict or a numpy scalar it reads is pinned down too (a changed dict entry once
    # reused the compiled model of the old value)
    cfg = {"p": 1.0}

    def h(x, *, E, A, alpha):
        return E + cfg["p"] * A * x ** (-alpha)

    def i(x, *, E, A, alpha):
        return E + np.float32(2) * A * x ** (-alpha)

    before = key(h)
    cfg["p"] = 0.9
    assert before is not None and key(h) != before and key(i) is not None


def test_structure_key_of_a_law_without_source_follows_its_globals():
    """A law made with exec (no source to read) is keyed in memory by its identity and by
    the values it reads: changing a global it reads must not reuse the old compiled model."""
    df = pd.DataFrame({"x": [1.0, 2, 4, 8, 16], "y": [3.0, 2.5, 2.2, 2.0, 1.9]})
    kw = dict(priors=None, pooled={}, likelihood=None, x={}, y="loss")
    ns: dict = {"CFG": {"p": 1.0}}
    exec("def anon(x, *, E, A, alpha):\n    return E + CFG['p'] * A * x ** (-alpha)\n", ns)
    anon = bs.law(priors=dict(power_law.priors), terms={"A": ("alpha", "x")},
                  register=False)(ns["anon"])
    before = C.structure_key(make_spec(df, anon, **kw))
    assert C.structure_key(make_spec(df, anon, **kw)) == before
    ns["CFG"]["p"] = 0.9
    assert C.structure_key(make_spec(df, anon, **kw)) != before


def test_keys_follow_a_constant_read_from_a_users_module(tmp_path, monkeypatch):
    """``cfg.SCALE`` in a law: the module's value is part of the key (a stored program
    was once loaded after the value changed, giving a 10x wrong coefficient), and a law
    built again from the same code reuses the compiled model in memory."""
    (tmp_path / "bs_cfg_mod.py").write_text("SCALE = 1.0\n")
    (tmp_path / "bs_law_mod.py").write_text(textwrap.dedent("""
        import bs_cfg_mod


        def scaled(x, *, E, A, alpha):
            return E + bs_cfg_mod.SCALE * A * x ** (-alpha)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import bs_cfg_mod
    import bs_law_mod

    df = pd.DataFrame({"x": [1.0, 2, 4, 8, 16], "y": [3.0, 2.5, 2.2, 2.0, 1.9]})
    kw = dict(priors=None, pooled={}, likelihood=None, x={}, y="loss")

    def spec():
        law = bs.law(priors=dict(power_law.priors), terms={"A": ("alpha", "x")},
                     register=False)(bs_law_mod.scaled)
        return make_spec(df, law, **kw)

    before, mem = C.stable_structure_key(spec()), C.structure_key(spec())
    assert before is not None  # else the "!=" below would hold for None alone
    assert C.structure_key(spec()) == mem  # another Law object, the same code
    monkeypatch.setattr(bs_cfg_mod, "SCALE", 10.0)
    assert C.stable_structure_key(spec()) != before
    assert C.structure_key(spec()) != mem
    # a copy with other priors keys the same structure (priors are in the key's own field)
    law = bs.get_law("power_law")
    a = C.structure_key(make_spec(df, law, **kw))
    b = C.structure_key(make_spec(df, law.with_priors(E=bs.Prior("HalfNormal", sigma=2.0)),
                                  **kw))
    assert dict(a)["law"] == dict(b)["law"]


DEEP = 1.0


def _deep_scale(v):
    return v * DEEP


def _deep_helper(v):
    return _deep_scale(v)


def _deep_law(x, *, E, A, alpha):
    return E + _deep_helper(A) * x ** (-alpha)


def _countdown(v, n=2):
    return v if n == 0 else _countdown(v, n - 1)


def _recursive_law(x, *, E, A, alpha):
    return E + _countdown(A) * x ** (-alpha)


def test_a_global_read_by_a_helpers_helper_is_part_of_the_key():
    """law -> helper -> helper reading DEEP: followed one level only, the law was keyed by
    its identity in memory and a change of DEEP reused the compiled model built with the
    old value. A recursive helper counts by name, not as a function never pinned down."""
    global DEEP
    spec = _user_spec
    before, mem = C.stable_structure_key(spec(_deep_law)), C.structure_key(spec(_deep_law))
    assert isinstance(before, tuple)  # (a key: the "!=" below is not None != None)
    assert C.structure_key(spec(_deep_law)) == mem  # another Law object, the same code
    DEEP = 10.0
    try:
        assert C.stable_structure_key(spec(_deep_law)) != before
        assert C.structure_key(spec(_deep_law)) != mem
    finally:
        DEEP = 1.0
    assert C.stable_structure_key(spec(_recursive_law)) is not None


def test_keys_follow_an_inner_law_default_arguments_and_the_code_as_loaded(tmp_path,
                                                                             monkeypatch):
    """Three ways a stale compiled model (or stored program) was reused, giving the old
    law's posterior (a mean of 1.99 for -20.01): a law calling another user law counted it
    as ('bayescale.law', ''); a helper's default argument (def slope(x, s=S)) was not in
    the key; the key hashed the file's text while the model ran the code as loaded, so a
    file edited before a reload keyed the old code as the new (and stored it so)."""
    (tmp_path / "bs_inner_mod.py").write_text(textwrap.dedent("""
        import numpy as np
        import bayescale as bs

        SLOPE = 1.0


        def slope(x, s=SLOPE):
            return s * x


        @bs.law(priors={"E": bs.Prior("Normal", mu=0, sigma=1)}, register=False)
        def inner(x, *, E):
            return E + 1.0 * x


        @bs.law(priors={"E": bs.Prior("Normal", mu=0, sigma=1)}, register=False)
        def inner5(x, *, E):
            return E + 5.0 * x


        def outer(x, *, E, A, alpha):
            return inner(x, E=E) + A * x ** (-alpha)


        def with_default(x, *, E, A, alpha):
            return E + slope(A) * x ** (-alpha)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import bs_inner_mod as m

    def keys(func):
        spec = _user_spec(func)
        return C.structure_key(spec), C.stable_structure_key(spec)

    outer = keys(m.outer)
    assert isinstance(outer[1], tuple)
    monkeypatch.setattr(m, "inner", m.inner5)  # another inner law
    assert keys(m.outer)[0] != outer[0] and keys(m.outer)[1] != outer[1]
    default = keys(m.with_default)
    assert isinstance(default[1], tuple)
    monkeypatch.setattr(m.slope, "__defaults__", (5.0,))
    assert keys(m.with_default) != default
    # the file edited, the module not yet reloaded: the code as loaded is still the old
    path = tmp_path / "bs_inner_mod.py"
    path.write_text(path.read_text().replace("return E + slope(A)", "return E + 2 * slope(A)"))
    stale = keys(m.with_default)
    importlib.reload(m)
    monkeypatch.setattr(m.slope, "__defaults__", (5.0,))
    assert keys(m.with_default) != stale
    sys.modules.pop("bs_inner_mod", None)
