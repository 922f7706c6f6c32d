"""The survey design: weights, strata, primary sampling units, finite population correction.

Built once per wave (in the spirit of R's ``survey::svydesign``) and handed to every estimator.
Codes of any integer values are recoded to 0..H-1 (strata) and 0..P-1 (PSUs, as (stratum, psu)
pairs so nesting is guaranteed). Without clusters every respondent is its own PSU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

LonelyPsu = Literal["fail", "remove", "certainty", "adjust", "average"]
LONELY_PSU_POLICIES: tuple[str, ...] = ("fail", "remove", "certainty", "adjust", "average")


class DesignError(ValueError):
    """A design that cannot be built or used as asked (names the offending strata or values)."""


@dataclass(frozen=True, eq=False)
class Design:
    """A stratified (optionally clustered) single-stage design, with weights and an explicit fpc.

    Attributes
    ----------
    weights : (n,) float64, finite and >= 0.
    stratum : (n,) int64 codes 0..H-1.
    psu : (n,) int64 codes 0..P-1, nested in strata.
    psu_stratum : (P,) stratum of each PSU.
    psu_count : (H,) number of sampled PSUs n_h.
    sampling_fraction : (H,) f_h = n_h / N_h (0 where no fpc applies: sampling with replacement).
    lonely_psu : what strata with a single PSU contribute to variances (see ``Design.build``).
    clustered : whether PSUs hold more than one respondent.
    """

    weights: np.ndarray
    stratum: np.ndarray
    psu: np.ndarray
    psu_stratum: np.ndarray
    psu_count: np.ndarray
    sampling_fraction: np.ndarray
    lonely_psu: LonelyPsu
    clustered: bool

    @property
    def n(self) -> int:
        return int(self.weights.size)

    @property
    def n_strata(self) -> int:
        return int(self.psu_count.size)

    @property
    def n_psu(self) -> int:
        return int(self.psu_stratum.size)

    @property
    def variance_scale(self) -> np.ndarray:
        """c_h = (1 - f_h) n_h / (n_h - 1) per stratum; for singleton strata, what the lonely-PSU policy says.

        ``fail`` raises if any stratum has one PSU; ``remove`` and ``certainty`` give 0 (no variance
        from that stratum; the two differ only with later stages, which this design does not have);
        ``adjust`` gives (1 - f_h), the PSU being centred at the grand mean instead of its stratum
        mean; ``average`` gives 0 here and the estimators scale the total up by H / H_ok.
        """
        n_h = self.psu_count.astype(np.float64)
        single = self.psu_count == 1
        scale = np.zeros_like(n_h)
        many = ~single
        scale[many] = (1.0 - self.sampling_fraction[many]) * n_h[many] / (n_h[many] - 1.0)
        if single.any():
            if self.lonely_psu == "fail":
                raise DesignError(f"strata with a single PSU: {_first(np.flatnonzero(single))} (lonely_psu='fail')")
            if self.lonely_psu == "adjust":
                scale[single] = 1.0 - self.sampling_fraction[single]
        return scale

    @property
    def singleton_strata(self) -> np.ndarray:
        return np.flatnonzero(self.psu_count == 1)

    @classmethod
    def build(
        cls,
        n: int | None = None,
        *,
        weights: np.ndarray | None = None,
        strata: np.ndarray | None = None,
        psu: np.ndarray | None = None,
        population_psus: np.ndarray | None = None,
        sampling_fraction: np.ndarray | None = None,
        lonely_psu: LonelyPsu = "adjust",
    ) -> Design:
        """Validate and freeze a design.

        Parameters
        ----------
        n : number of respondents, needed only when no per-respondent array is given.
        weights : (n,) sampling weights; equal weights (1.0) when omitted.
        strata : (n,) stratum codes; one stratum when omitted.
        psu : (n,) PSU codes, read within strata; every respondent its own PSU when omitted.
        population_psus : (n,) N_h, the number of population PSUs in the respondent's stratum
            (for SIPAS: the stratum's transactions). Constant within a stratum, >= n_h.
        sampling_fraction : (n,) f_h = n_h / N_h instead of ``population_psus``. Give one or neither:
            the fpc is never guessed from the magnitude (R does; samplics wants 1 - f_h).
        lonely_psu : "fail", "remove", "certainty", "adjust" (default) or "average"
            (R's ``survey.lonely.psu``); see ``variance_scale``.

        Raises
        ------
        DesignError
            On negative or non-finite weights, lengths that differ, an fpc that varies within a stratum,
            fewer population than sampled PSUs, both fpc forms at once, or an unknown policy.
        """
        arrays = [a for a in (weights, strata, psu, population_psus, sampling_fraction) if a is not None]
        if n is None:
            if not arrays:
                raise DesignError("give n or at least one per-respondent array")
            n = int(np.asarray(arrays[0]).shape[0])
        for a in arrays:
            if np.asarray(a).shape != (n,):
                raise DesignError(f"every per-respondent array must have shape ({n},), got {np.asarray(a).shape}")
        if lonely_psu not in LONELY_PSU_POLICIES:
            raise DesignError(f"unknown lonely_psu policy {lonely_psu!r}; use one of {LONELY_PSU_POLICIES}")
        if population_psus is not None and sampling_fraction is not None:
            raise DesignError("give the fpc as population_psus or as sampling_fraction, not both")

        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if bad.size:
            raise DesignError(f"weights must be finite and >= 0; bad at rows {_first(bad)}")

        stratum = np.zeros(n, dtype=np.int64) if strata is None else _codes(np.asarray(strata), "strata")
        n_strata = int(stratum.max()) + 1 if n else 0

        if psu is None:
            psu_code = np.arange(n, dtype=np.int64)
            psu_stratum = stratum.copy()
            clustered = False
        else:
            raw = _codes(np.asarray(psu), "psu")
            pair = stratum * (int(raw.max()) + 1 if n else 1) + raw
            uniq, psu_code = np.unique(pair, return_inverse=True)
            psu_code = psu_code.astype(np.int64)
            psu_stratum = np.zeros(uniq.size, dtype=np.int64)
            psu_stratum[psu_code] = stratum
            clustered = uniq.size < n
        psu_count = np.bincount(psu_stratum, minlength=n_strata).astype(np.int64)

        fraction = np.zeros(n_strata)
        if population_psus is not None or sampling_fraction is not None:
            given = np.asarray(population_psus if population_psus is not None else sampling_fraction, np.float64)
            if not np.all(np.isfinite(given)):
                raise DesignError("the fpc must be finite")
            first = np.full(n_strata, np.nan)
            first[stratum[::-1]] = given[::-1]
            varies = np.flatnonzero(first[stratum] != given)
            if varies.size:
                raise DesignError(
                    f"the fpc must be constant within a stratum; it varies in strata "
                    f"{_first(np.unique(stratum[varies]))}"
                )
            if population_psus is not None:
                short = np.flatnonzero(first < psu_count)
                if short.size:
                    raise DesignError(f"population_psus below the sampled PSUs (N_h < n_h) in strata {_first(short)}")
                fraction = psu_count / first
            else:
                if np.any((first < 0) | (first > 1)):
                    raise DesignError("sampling fractions must lie in [0, 1]")
                fraction = first
        return cls(
            weights=w,
            stratum=stratum,
            psu=psu_code,
            psu_stratum=psu_stratum,
            psu_count=psu_count,
            sampling_fraction=fraction,
            lonely_psu=lonely_psu,
            clustered=clustered,
        )

    def kish_effective_n(self, mask: np.ndarray | None = None) -> float:
        """(Σw)² / Σw², Kish's effective sample size from weighting alone."""
        w = self.weights if mask is None else self.weights[mask]
        total = w.sum()
        return float(total * total / np.square(w).sum()) if total > 0 else 0.0


def _codes(values: np.ndarray, name: str) -> np.ndarray:
    """Codes 0..k-1 in the order of the distinct values."""
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise DesignError(f"{name} codes contain NaN")
    flat = values.reshape(-1)
    if flat.dtype.kind in "iu" and flat.size:
        low, high = int(flat.min()), int(flat.max())
        if high - low < 50_000_000:  # a presence table instead of sorting
            shifted = flat.astype(np.int64) - low
            present = np.zeros(high - low + 1, dtype=bool)
            present[shifted] = True
            return (np.cumsum(present) - 1)[shifted].astype(np.int64)
    _, inverse = np.unique(flat, return_inverse=True)
    return inverse.astype(np.int64).reshape(-1)


def _first(indices: np.ndarray, k: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:k])
    return shown + (f" and {indices.size - k} more" if indices.size > k else "")
