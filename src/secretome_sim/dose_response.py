"""Hill/Emax dose-response fits of sweep results: EC50, Hill slope and ED_p with intervals.

    E(D) = E0 + Emax * D^n / (EC50^n + D^n),  D >= 0, EC50 > 0, n > 0, Emax of either sign.

A sweep gives one response per dose; a potency claim ("half the effect at 3 ng/mL") needs the
curve's parameters and how well the doses pin them down. The fit runs on (E0, Emax, log EC50, n):
EC50 stays positive and its Wald interval is symmetric in log dose, i.e. asymmetric in dose,
which matches how doses are spaced. Bad data never raises: the fit comes back with NaNs and a
message saying why, so one flat arm does not abort a table of fits.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

HILL_BOUNDS = (0.1, 10.0)
# EC50 may sit at most this many decades beyond the tested positive doses; reaching that limit
# means the data do not locate it at all.
EC50_DECADES = 3.0
_PARAMS = ("e0", "emax", "ec50", "hill")
_NAN_CI = (math.nan, math.nan)
_SOLVER = {"x_scale": "jac", "ftol": 1e-10, "xtol": 1e-10, "gtol": 1e-10, "max_nfev": 1000}


def _nan_covariance() -> np.ndarray:
    return np.full((4, 4), np.nan)


@dataclass(frozen=True)
class HillFit:
    """One fitted Hill curve. Intervals are two-sided at ``level``; NaN when not estimable.

    ``covariance`` is over (e0, emax, log ec50, hill), the scale the fit ran on, so derived
    quantities (ED_p) get intervals by the delta method on that same scale.
    """

    e0: float
    emax: float
    ec50: float
    hill: float
    e0_ci: tuple[float, float]
    emax_ci: tuple[float, float]
    ec50_ci: tuple[float, float]
    hill_ci: tuple[float, float]
    n_points: int
    rmse: float
    r_squared: float
    converged: bool
    message: str
    level: float = 0.95
    covariance: np.ndarray = field(default_factory=_nan_covariance, compare=False, repr=False)

    def predict(self, doses: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """The fitted response at ``doses`` (NaN for negative or non-finite doses)."""
        d = np.asarray(doses, dtype=float)
        frac = _fraction(d.ravel(), math.log(self.ec50), self.hill).reshape(d.shape)
        return self.e0 + self.emax * frac

    def dose_for_effect(self, percent: float) -> tuple[float, tuple[float, float]]:
        """ED_p = EC50 * (p / (100 - p))^(1/n): the dose giving ``percent`` % of Emax, with its
        interval from the delta method on log ED_p (via log EC50 and n), so it stays positive."""
        p = float(percent)
        if not 0 < p < 100:
            raise ValueError(
                f"percent must lie strictly between 0 and 100, i.e. in the open range (0, 100); "
                f"got {percent!r}"
            )
        logit = math.log(p / (100.0 - p))
        with np.errstate(all="ignore"):
            log_ed = np.log(self.ec50) + logit / self.hill
            grad = np.array([1.0, -logit / self.hill**2])
            var = float(grad @ self.covariance[2:, 2:] @ grad)
            half = _t_quantile(self.level, self.n_points) * np.sqrt(var)
            ed, low, high = np.exp([log_ed, log_ed - half, log_ed + half]).tolist()
        return ed, (low, high)


def _t_quantile(level: float, n_points: int) -> float:
    dof = n_points - 4
    return float(stats.t.ppf(0.5 + level / 2, dof)) if dof > 0 else math.nan


def _fraction(d: np.ndarray, log_ec50: float, hill: float) -> np.ndarray:
    """D^n / (EC50^n + D^n) written as a logistic in log dose: exact 0 at D = 0, no overflow."""
    out = np.where(d == 0, 0.0, np.nan)
    pos = d > 0
    with np.errstate(all="ignore"):
        out[pos] = special.expit(hill * (np.log(d[pos]) - log_ec50))
    return out


def _residuals(p: np.ndarray, d: np.ndarray, y: np.ndarray) -> np.ndarray:
    return p[0] + p[1] * _fraction(d, p[2], p[3]) - y


def _jacobian(p: np.ndarray, d: np.ndarray, y: np.ndarray) -> np.ndarray:
    f = _fraction(d, p[2], p[3])
    df = f * (1.0 - f)  # d f / d(n * (log D - log EC50)); 0 at D = 0
    log_d = np.log(np.where(d > 0, d, 1.0))
    return np.column_stack([np.ones_like(d), f, -p[1] * p[3] * df, p[1] * df * (log_d - p[2])])


def _failed(n_points: int, level: float, message: str) -> HillFit:
    nan = math.nan
    return HillFit(*[nan] * 4, *[_NAN_CI] * 4, n_points, nan, nan, False, message, level)


def _initial_guess(d: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """E0 at the lowest dose, Emax as highest minus lowest, EC50 where the response (averaged
    per dose) first crosses half way, interpolated in log dose; geometric mean as fallback."""
    levels = np.unique(d)
    means = np.array([y[d == level].mean() for level in levels])
    e0, emax = means[0], means[-1] - means[0]
    if emax == 0:
        emax = float(np.ptp(y))
    positive = levels[levels > 0]
    log_ec50 = float(np.mean(np.log(positive)))
    crossed = np.flatnonzero((means - e0) / emax >= 0.5)
    if crossed.size and levels[crossed[0]] > 0:
        i = crossed[0]
        log_ec50 = math.log(levels[i])
        if i > 0 and levels[i - 1] > 0:
            f0, f1 = (means[i - 1] - e0) / emax, (means[i] - e0) / emax
            w = (0.5 - f0) / (f1 - f0) if f1 != f0 else 0.5
            log_ec50 = math.log(levels[i - 1]) + w * (log_ec50 - math.log(levels[i - 1]))
    return float(e0), float(emax), log_ec50


def _covariance(jac: np.ndarray, s2: float) -> np.ndarray | None:
    """s^2 (J^T J)^-1 by SVD; None when J is rank deficient (curve_fit's threshold)."""
    _, s, vt = np.linalg.svd(jac, full_matrices=False)
    if not np.all(np.isfinite(s)) or s[-1] <= np.finfo(float).eps * max(jac.shape) * s[0]:
        return None
    cov = (vt.T / s**2) @ vt * s2
    return cov if np.all(np.isfinite(cov)) else None


def fit_hill(
    doses: Sequence[float] | np.ndarray,
    responses: Sequence[float] | np.ndarray,
    *,
    level: float = 0.95,
) -> HillFit:
    """Least-squares Hill fit from starts n = 0.5, 1, 2 (best kept); Wald intervals with a
    Student-t quantile on n_points - 4 dof. Points with a non-finite value or a negative dose
    are dropped. Never raises or warns for bad data: see ``HillFit.message``."""
    d = np.asarray(doses, dtype=float).ravel()
    y = np.asarray(responses, dtype=float).ravel()
    if d.shape != y.shape:
        raise ValueError(f"{d.size} doses but {y.size} responses")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    keep = np.isfinite(d) & np.isfinite(y) & (d >= 0)
    d, y = d[keep], y[keep]
    m = int(d.size)
    if m < 5:
        return _failed(m, level, f"fewer than 5 finite points ({m})")
    if np.unique(d).size < 4 or np.count_nonzero(np.unique(d) > 0) < 3:
        return _failed(m, level, "fewer than 4 distinct doses (3 of them positive)")
    if np.ptp(y) <= 1e-12 * max(1.0, float(np.max(np.abs(y)))):
        return _failed(m, level, "response does not vary with dose")

    lo, hi = float(d[d > 0].min()), float(d.max())
    span = EC50_DECADES * math.log(10.0)
    lower = np.array([-np.inf, -np.inf, math.log(lo) - span, HILL_BOUNDS[0]])
    upper = np.array([np.inf, np.inf, math.log(hi) + span, HILL_BOUNDS[1]])
    e0, emax, log_ec50 = _initial_guess(d, y)
    best = None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for n0 in (0.5, 1.0, 2.0):
            try:
                x0 = np.array([e0, emax, log_ec50, n0])
                res = optimize.least_squares(
                    _residuals, x0, _jacobian, (lower, upper), args=(d, y), **_SOLVER
                )
            except (ValueError, np.linalg.LinAlgError):
                continue
            if np.all(np.isfinite(res.x)) and (best is None or res.cost < best.cost):
                best = res
        if best is None:
            return _failed(m, level, "the optimiser failed from every start")
        p = best.x
        resid = _residuals(p, d, y)
        ssr, sst = float(resid @ resid), float(np.sum((y - y.mean()) ** 2))
        cov = _covariance(_jacobian(p, d, y), ssr / (m - 4))
    problems = [] if best.success else [f"optimiser did not converge: {best.message}"]
    at_bound = np.isclose(p, lower, rtol=1e-6, atol=1e-6) | np.isclose(p, upper, 1e-6, 1e-6)
    if at_bound[3]:
        problems.append(f"Hill coefficient at its bound {p[3]:.3g} (limits {HILL_BOUNDS})")
    if at_bound[2]:
        problems.append(f"EC50 at the search limit, {EC50_DECADES:g} decades beyond the doses")
    if cov is None:
        problems.append("parameters not identifiable: covariance is singular")
    converged = not problems
    ec50 = math.exp(p[2])
    if not lo <= ec50 <= hi:
        problems.append(f"EC50 outside the tested dose range [{lo:.3g}, {hi:.3g}]: extrapolated")
    if converged:
        half = _t_quantile(level, m) * np.sqrt(np.diag(cov))
        low, high = p - half, p + half
        cis = [(float(a), float(b)) for a, b in zip(low, high, strict=True)]
        cis[2] = (math.exp(low[2]), math.exp(high[2]))
    else:
        cov, cis = _nan_covariance(), [_NAN_CI] * 4
    cov.setflags(write=False)
    estimates = (float(p[0]), float(p[1]), ec50, float(p[3]))
    rmse, r_squared, message = math.sqrt(ssr / m), 1.0 - ssr / sst, "; ".join(problems)
    return HillFit(*estimates, *cis, m, rmse, r_squared, converged, message, level, cov)


def fit_table(
    table: pd.DataFrame,
    dose: str,
    responses: Sequence[str],
    by: Sequence[str] = (),
    percent: Sequence[float] = (50, 90),
    level: float = 0.95,
) -> pd.DataFrame:
    """One Hill fit per group of ``by`` columns and response column, as a table. Rows with a
    ``status`` other than "ok" (failed sweep points) are left out; non-numeric values are NaN."""
    by, responses = list(by), list(responses)
    missing = [c for c in [dose, *responses, *by] if c not in table.columns]
    if missing:
        raise ValueError(f"columns not in the table: {missing}")
    for p in percent:
        if not 0 < p < 100:
            raise ValueError(f"percent must lie strictly between 0 and 100, got {p!r}")
    if "status" in table.columns:
        table = table[table["status"] == "ok"]
    columns = [*by, "response", "n_points"]
    columns += [f"{n}{s}" for n in _PARAMS for s in ("", "_low", "_high")]
    columns += ["r_squared", "rmse", "converged", "message"]
    columns += [f"ed{p:g}{s}" for p in percent for s in ("", "_low", "_high")]
    groups = table.groupby(by, sort=True, dropna=False) if by else [((), table)]
    rows = []
    for key, group in groups:
        keys = key if isinstance(key, tuple) else (key,)
        x = pd.to_numeric(group[dose], errors="coerce").to_numpy(dtype=float)
        for name in responses:
            y = pd.to_numeric(group[name], errors="coerce").to_numpy(dtype=float)
            fit = fit_hill(x, y, level=level)
            row: dict[str, object] = dict(zip(by, keys, strict=True))
            row |= {"response": name, "n_points": fit.n_points}
            for param in _PARAMS:
                low, high = getattr(fit, f"{param}_ci")
                row |= {param: getattr(fit, param), f"{param}_low": low, f"{param}_high": high}
            row |= {"r_squared": fit.r_squared, "rmse": fit.rmse}
            row |= {"converged": fit.converged, "message": fit.message}
            for p in percent:
                est, (low, high) = fit.dose_for_effect(p)
                row |= {f"ed{p:g}": est, f"ed{p:g}_low": low, f"ed{p:g}_high": high}
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)
