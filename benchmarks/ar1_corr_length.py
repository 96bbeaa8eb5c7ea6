"""How well does the ``ar1`` likelihood recover long correlation lengths, per prior?

Simulates Ornstein-Uhlenbeck residuals (sigma 0.03 on log loss) along a 4-decade
sequence (120 points) around a power law, with true correlation lengths of 0.5, 1 and 2
decades and two seeds, and fits ``likelihood="ar1"`` (defaults: nutpie, 4 x 1000) with
the current ``corr_length`` prior and the former, wider one.

    python benchmarks/ar1_corr_length.py

Writes benchmarks/results/ar1_corr_length.md.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from _common import RESULTS, machine, md_table

import bayescale as bs
from bayescale.autocorr import ou_residuals
from bayescale.laws import power_law

PRIORS = {
    "LogNormal(log 0.1, 1.0) (current)": None,
    "LogNormal(log 0.1, 1.5) (former)": bs.Prior("LogNormal", mu=float(np.log(0.1)), sigma=1.5),
}


def main() -> None:
    rows = []
    for label, prior in PRIORS.items():
        for ell in (0.5, 1.0, 2.0):
            for seed in (0, 1):
                rng = np.random.default_rng(seed)
                x = np.logspace(5, 9, 120)
                e = ou_residuals(np.log10(x), 0.03, ell, rng)
                df = pd.DataFrame({"x": x, "loss": power_law(x, E=0.3, A=40.0, alpha=0.25)
                                   * np.exp(e)})
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    f = bs.fit(df, "power_law", likelihood="ar1", random_seed=0, warn=False,
                               priors={"corr_length": prior} if prior else None)
                q = np.quantile(f.posterior["corr_length"].values, [0.05, 0.5, 0.95])
                rows.append(dict(prior=label, true_corr_length=ell, seed=seed,
                                 q05=q[0], median=q[1], q95=q[2],
                                 max_rhat=f.diagnostics["max_rhat"],
                                 divergences=f.diagnostics["divergences"]))
                print(rows[-1], flush=True)
    out = pd.DataFrame(rows)
    text = f"""# `ar1`: posterior of the correlation length on simulated residuals

{machine()}. `python benchmarks/ar1_corr_length.py`: power law (E 0.3, A 40, alpha 0.25),
120 points over 4 decades, Ornstein-Uhlenbeck residuals with sigma 0.03 on log loss;
`bs.fit(..., likelihood="ar1")` with default sampler settings and seed 0. Posterior 5%,
50% and 95% quantiles of `corr_length` (decades).

{md_table(out, floatfmt=".3f")}
"""
    (RESULTS / "ar1_corr_length.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
