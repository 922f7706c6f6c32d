"""Cross-checks against R's survey package (Lumley), the reference implementation.

Random stratified designs, with and without clusters, with a finite population correction and
domains that cut across strata; every point and standard error must equal R's to 1e-8. Needs
``Rscript`` with the ``survey`` package (Debian: r-base-core, r-cran-survey; CI installs them).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from scoring.design import Design, LonelyPsu
from scoring.estimate import domain_ratios
from scoring.intervals import proportion_intervals
from tests.conftest import unavailable

SCRIPT = Path(__file__).resolve().parent / "r" / "crosscheck.R"


def _rscript() -> str:
    path = shutil.which("Rscript")
    if path is None:
        unavailable("Rscript not installed (apt-get install r-base-core r-cran-survey)")
    assert path is not None
    probe = subprocess.run([path, "-e", "library(survey)"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        unavailable("R package 'survey' not installed (apt-get install r-cran-survey)")
    return path


def _data(seed: int, *, clustered: bool, singletons: bool, cluster_effect: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 600
    strata = rng.integers(0, 8, n)
    if singletons:  # two strata of a single PSU each
        strata[:2] = [8, 9]
    psu = rng.integers(0, 10, n) if clustered else np.arange(n)
    if singletons and clustered:
        psu[:2] = 0
    dom = rng.integers(0, 4, n)  # domains cut across strata and PSUs
    w = rng.uniform(0.5, 4.0, n)
    data: dict[str, np.ndarray] = {"strata": strata, "psu": psu, "w": w, "dom": dom}
    # satisfaction that varies between clusters (as between counters), which makes deff > 1
    shift = cluster_effect * rng.normal(size=int(psu.max()) + 1)[psu]
    for k, p in ((1, 0.85), (2, 0.7), (3, 0.93)):
        valid = (rng.random(n) < 0.9).astype(int)
        prob = 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + shift)))
        data[f"v{k}"] = valid
        data[f"y{k}"] = ((rng.random(n) < prob) & (valid == 1)).astype(int)
    # N_h: population PSUs per stratum (clusters or respondents), above the sampled count
    sampled = {h: len(set(psu[strata == h])) for h in np.unique(strata)}
    data["N"] = np.array([sampled[h] * 7 + 3 for h in strata])
    return data


def _run_r(tmp_path: Path, data: dict[str, np.ndarray], lonely: str, clustered: bool) -> dict[tuple[str, int], tuple]:
    source = tmp_path / "d.csv"
    out = tmp_path / "r.csv"
    names = list(data)
    with source.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for i in range(len(data["w"])):
            writer.writerow([repr(float(data[k][i])) if k == "w" else int(data[k][i]) for k in names])
    done = subprocess.run(
        [_rscript(), str(SCRIPT), str(source), lonely, "1" if clustered else "0", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with out.open() as fh:
        return {
            (r["what"], int(r["dom"])): (float(r["est"]), None if r["se"] == "NA" else float(r["se"]))
            for r in csv.DictReader(fh)
        }


@pytest.mark.parametrize(
    ("clustered", "lonely"),
    [(False, "fail"), (True, "fail"), (True, "adjust"), (True, "average"), (True, "remove"), (False, "adjust")],
)
def test_domain_ratios_and_contrasts_equal_r(tmp_path: Path, clustered: bool, lonely: LonelyPsu) -> None:
    singletons = lonely != "fail"
    data = _data(11 if clustered else 12, clustered=clustered, singletons=singletons)
    ref = _run_r(tmp_path, data, lonely, clustered)
    design = Design.build(
        weights=data["w"],
        strata=data["strata"],
        psu=data["psu"] if clustered else None,
        population_psus=data["N"].astype(float),
        lonely_psu=lonely,
    )
    num = np.column_stack([data[f"y{k}"] for k in (1, 2, 3)]).astype(float)
    den = np.column_stack([data[f"v{k}"] for k in (1, 2, 3)]).astype(float)
    est = domain_ratios(design, num, den, domain=data["dom"], contrasts=np.full((3, 1), 1 / 3))
    for g in range(4):
        for k in range(3):
            r_est, r_se = ref[(f"ratio{k + 1}", g)]
            assert est.ratio[g, k] == pytest.approx(r_est, abs=1e-10)
            assert np.sqrt(est.ratio_var[g, k]) == pytest.approx(r_se, abs=1e-8)
        r_est, r_se = ref[("mean3", g)]
        assert est.combo[g, 0] == pytest.approx(r_est, abs=1e-10)
        assert np.sqrt(est.combo_var[g, 0]) == pytest.approx(r_se, abs=1e-8)
        assert est.df[g] == ref[("degf", g)][0]


def test_korn_graubard_and_logit_intervals_equal_r(tmp_path: Path) -> None:
    data = _data(21, clustered=True, singletons=False, cluster_effect=1.5)
    ref = _run_r(tmp_path, data, "fail", True)
    design = Design.build(
        weights=data["w"],
        strata=data["strata"],
        psu=data["psu"],
        population_psus=data["N"].astype(float),
        lonely_psu="fail",
    )
    est = domain_ratios(design, data["y1"].astype(float), data["v1"].astype(float), domain=data["dom"])
    for g in range(4):
        p, var = est.ratio[g, 0], est.ratio_var[g, 0]
        # R's svyciprop works on the subset of valid answers: its df and n are that subset's
        df, n = ref[("kg_df", g)][0], ref[("kg_n", g)][0]
        assert p * (1 - p) / var < n  # deff > 1 here, so our cap on n* (rule 2.3.2, not in R) is not binding
        kg = proportion_intervals(p, var, n, df, method="korn-graubard")
        assert float(kg.lower) == pytest.approx(ref[("kg_lower", g)][0], abs=1e-8)
        assert float(kg.upper) == pytest.approx(ref[("kg_upper", g)][0], abs=1e-8)
        lg = proportion_intervals(p, var, n, df, method="logit")
        assert float(lg.lower) == pytest.approx(ref[("logit_lower", g)][0], abs=1e-8)
        assert float(lg.upper) == pytest.approx(ref[("logit_upper", g)][0], abs=1e-8)
