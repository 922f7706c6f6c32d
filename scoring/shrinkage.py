"""Shrinkage for small units: beta-binomial empirical Bayes (STATISTICS.md 5.1).

x_i | p_i ~ Bin(n_i, p_i) and p_i ~ Beta(a, b); (a, b) are fitted by maximum likelihood and each unit's
share is replaced by its posterior mean, pulled towards the prior mean m = a/(a + b) the more, the
smaller the unit. The results are model-based: publish them beside the direct design-based estimates,
never in their place (STATISTICS.md 5.3), and keep the ``label`` with them.

References
----------
Clayton, D. & Kaldor, J. (1987). Empirical Bayes estimates of age-standardized relative risks for use
in disease mapping. Biometrics 43:671-681. Gelman, A. et al. (2013). Bayesian Data Analysis, 3rd ed.,
section 5.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special, stats

MODEL_LABEL = "model-based (empirical Bayes beta-binomial)"
_LOG_MIN_PARAMETER = np.log(1e-8)


def _readonly(values: npt.ArrayLike) -> np.ndarray:
    out = np.array(values, dtype=np.float64, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class ShrunkEstimates:
    """Beta-binomial empirical Bayes estimates for a set of units.

    Attributes
    ----------
    x, n : ndarray, shape (I,)
        Successes and trials as given (possibly effective, non-integer counts).
    p_hat : ndarray
        Direct shares x/n.
    a, b : float
        Fitted prior Beta(a, b).
    prior_mean : float
        m = a/(a + b).
    prior_strength : float
        a + b, the prior's weight in pseudo-respondents.
    indistinguishable : bool
        True when the likelihood is highest as a + b → ∞ (no detectable between-unit variation) or the
        fit reached ``max_prior_strength``: a + b is then set to the cap, m to the pooled Σx/Σn, and every
        unit is shrunk almost entirely to m.
    posterior_mean : ndarray
        (x_i + a)/(n_i + a + b) = B_i p̂_i + (1 − B_i) m.
    lower, upper : ndarray
        Equal-tailed credible interval at ``level`` from Beta(a + x_i, b + n_i − x_i).
    shrinkage : ndarray
        B_i = n_i/(n_i + a + b), the weight on the unit's own share (1 = no shrinkage).
    level : float
        Credible level.
    log_likelihood : float
        Σ_i [betaln(x_i + a, n_i − x_i + b) − betaln(a, b)] at (a, b), without the binomial coefficients.
    label : str
        ``"model-based (empirical Bayes beta-binomial)"``: show it wherever the estimates are shown.
    """

    x: np.ndarray
    n: np.ndarray
    p_hat: np.ndarray
    a: float
    b: float
    prior_mean: float
    prior_strength: float
    indistinguishable: bool
    posterior_mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    shrinkage: np.ndarray
    level: float
    log_likelihood: float
    label: str = MODEL_LABEL


def beta_binomial_log_likelihood(a: float, b: float, x: npt.ArrayLike, n: npt.ArrayLike) -> float:
    """Beta-binomial log-likelihood of (a, b) without the binomial coefficients.

    Parameters
    ----------
    a, b : float
        Beta prior parameters, positive.
    x, n : array_like
        Successes and trials; non-integer effective counts are allowed.

    Returns
    -------
    float
        Σ_i [betaln(x_i + a, n_i − x_i + b) − betaln(a, b)].

    References
    ----------
    Gelman et al. (2013), Bayesian Data Analysis, 3rd ed., section 5.3 (beta-binomial marginal).
    """
    xx = np.asarray(x, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    return float(np.sum(special.betaln(xx + a, nn - xx + b) - special.betaln(a, b)))


def _negative_log_likelihood(theta: np.ndarray, x: np.ndarray, n: np.ndarray) -> tuple[float, np.ndarray]:
    """−log L and its gradient with respect to (log a, log b)."""
    a, b = np.exp(theta)
    units = x.size
    value = np.sum(special.betaln(x + a, n - x + b)) - units * special.betaln(a, b)
    common = np.sum(special.digamma(n + a + b)) - units * special.digamma(a + b)
    d_a = np.sum(special.digamma(x + a)) - units * special.digamma(a) - common
    d_b = np.sum(special.digamma(n - x + b)) - units * special.digamma(b) - common
    return -float(value), -np.array([a * d_a, b * d_b])


def _moment_start(p_hat: np.ndarray, cap: float) -> tuple[float, float]:
    """Method-of-moments (m, a + b): a + b = m(1 − m)/s² − 1, kept within a workable range."""
    m = float(np.clip(np.mean(p_hat), 1e-3, 1.0 - 1e-3))
    var = float(np.var(p_hat, ddof=1))
    strength = m * (1.0 - m) / var - 1.0 if var > 0 else np.inf
    upper = min(1e4, cap / 10.0)
    strength = float(np.clip(strength, min(0.5, upper), upper)) if np.isfinite(strength) else upper
    return m, strength


def beta_binomial_eb(
    x: npt.ArrayLike,
    n: npt.ArrayLike,
    *,
    level: float = 0.95,
    max_prior_strength: float = 1e6,
) -> ShrunkEstimates:
    """Beta-binomial empirical Bayes shrinkage of unit shares.

    Parameters
    ----------
    x : array_like, shape (I,)
        Successes (satisfied respondents). With survey weights use x*_i = n*_i p̂_i.
    n : array_like, shape (I,)
        Trials, positive; with survey weights the effective sizes n*_i (STATISTICS.md 2.3 rule 1 at
        p̂ = 0 or 1). Non-integer values are fine.
    level : float
        Level of the equal-tailed credible intervals, in (0, 1).
    max_prior_strength : float
        Cap on a + b. When the likelihood keeps rising as a + b grows the units are reported as
        indistinguishable and a + b is set to this cap.

    Returns
    -------
    ShrunkEstimates
        Prior (a, b), posterior means, credible intervals and shrinkage factors, labelled model-based.

    Raises
    ------
    ValueError
        For fewer than two units, x outside [0, n], n ≤ 0, or when every unit is at 0 % or every unit at
        100 % (the prior is then degenerate).

    Notes
    -----
    log L(a, b) = Σ_i [betaln(x_i + a, n_i − x_i + b) − betaln(a, b)] (the binomial coefficient does not
    depend on (a, b)) is maximised over (log a, log b) with L-BFGS-B and the analytic gradient (digamma
    differences), from the method-of-moments start m = mean p̂_i, a + b = m(1 − m)/s² − 1. Written with
    ``scipy.special.betaln`` it accepts non-integer effective counts, which ``scipy.stats.betabinom`` does
    not.

    As a + b → ∞ with m fixed, log L tends to Σ [x_i log m + (n_i − x_i) log(1 − m)], highest at the
    pooled m = Σx/Σn. If that limit is at least the fitted log L, or the fit reaches the cap, the
    supremum lies at infinity: ``indistinguishable`` is set, a + b = ``max_prior_strength`` and m is the
    pooled share.

    The posterior is Beta(a + x_i, b + n_i − x_i): mean (x_i + a)/(n_i + a + b) = B_i p̂_i + (1 − B_i) m
    with B_i = n_i/(n_i + a + b). A unit at 100 % gets a mean below 1 and an upper bound below 1.

    References
    ----------
    Clayton, D. & Kaldor, J. (1987). Biometrics 43:671-681. Gelman, A. et al. (2013). Bayesian Data
    Analysis, 3rd ed., section 5.1.
    """
    xx = np.asarray(x, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    if xx.ndim != 1 or xx.shape != nn.shape:
        raise ValueError("x and n must be one-dimensional arrays of the same length")
    if xx.size < 2:
        raise ValueError("at least two units are needed to fit a prior")
    if not (np.all(np.isfinite(xx)) and np.all(np.isfinite(nn))):
        raise ValueError("x and n must be finite")
    if np.any(nn <= 0):
        raise ValueError("n must be positive")
    if np.any(xx < 0) or np.any(xx > nn):
        raise ValueError("x must lie in [0, n]")
    if not 0.0 < level < 1.0:
        raise ValueError("level must lie strictly between 0 and 1")
    cap = float(max_prior_strength)
    if not (np.isfinite(cap) and cap > 0):
        raise ValueError("max_prior_strength must be finite and positive")
    # effective counts n*·p̂ carry rounding noise: within 1e-9 of 0 or n they are 0 or n
    xx = np.where(xx < 1e-9 * nn, 0.0, np.where(xx > nn * (1 - 1e-9), nn, xx))
    pooled = float(xx.sum() / nn.sum())
    if np.all(xx == 0) or np.all(xx == nn) or not 0.0 < pooled < 1.0:
        raise ValueError("every unit is at 0 % or every unit at 100 %: the prior is degenerate")

    p_hat = xx / nn
    m0, s0 = _moment_start(p_hat, cap)
    start = np.log([m0 * s0, (1.0 - m0) * s0])
    upper_bound = np.log(cap)
    result = optimize.minimize(
        _negative_log_likelihood,
        start,
        args=(xx, nn),
        jac=True,
        method="L-BFGS-B",
        bounds=[(_LOG_MIN_PARAMETER, upper_bound), (_LOG_MIN_PARAMETER, upper_bound)],
        options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000},
    )
    if not np.all(np.isfinite(result.x)):
        raise RuntimeError(f"beta-binomial fit failed: {result.message}")
    a, b = (float(v) for v in np.exp(result.x))
    fitted = -float(result.fun)
    limit = float(np.sum(special.xlogy(xx, pooled) + special.xlog1py(nn - xx, -pooled)))
    indistinguishable = bool(limit >= fitted or a + b >= cap)
    if indistinguishable:
        a, b = pooled * cap, (1.0 - pooled) * cap
    strength = a + b

    post_a = a + xx
    post_b = b + nn - xx
    tail = (1.0 - level) / 2.0
    return ShrunkEstimates(
        x=_readonly(xx),
        n=_readonly(nn),
        p_hat=_readonly(p_hat),
        a=a,
        b=b,
        prior_mean=a / strength,
        prior_strength=strength,
        indistinguishable=indistinguishable,
        posterior_mean=_readonly(post_a / (nn + strength)),
        lower=_readonly(stats.beta.ppf(tail, post_a, post_b)),
        upper=_readonly(stats.beta.ppf(1.0 - tail, post_a, post_b)),
        shrinkage=_readonly(nn / (nn + strength)),
        level=float(level),
        log_likelihood=beta_binomial_log_likelihood(a, b, xx, nn),
    )
