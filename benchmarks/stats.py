"""Statistics for the report, on top of rliable (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice"): IQM with stratified-bootstrap 95% intervals, probability of improvement,
random-normalized scores and the ours / reference speed ratio with a bootstrap interval.

Scores are per-run numbers (one final return per seed). rliable wants (runs x tasks) matrices;
a report table is one (algorithm, env), so there is one task column.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

DEFAULT_REPS = 2000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval."""

    value: float
    low: float
    high: float

    def format(self, digits: int = 1) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _as_runs(scores: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D sequence of per-run scores, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite, got {array.tolist()}")
    return array[:, None]  # (runs, 1 task)


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    # rliable's StratifiedBootstrap draws its indices from NumPy's global generator, and its
    # random_state argument is refused by arch >= 8 (which renamed it), so a reproducible interval
    # seeds the global state; the caller's global state is restored afterwards.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def iqm(scores: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of the runs (25% trimmed from each end)."""
    from rliable import metrics

    return float(metrics.aggregate_iqm(_as_runs(scores, "scores")))


def _interval(data: np.ndarray | tuple[np.ndarray, np.ndarray], func: Callable[..., float], reps: int,
              seed: int) -> Estimate:
    from rliable import library

    with _seeded_global_numpy(seed):
        points, intervals = library.get_interval_estimates(
            {"x": data}, lambda *args: np.array([func(*args)]), reps=reps)
    return Estimate(float(points["x"][0]), float(intervals["x"][0, 0]), float(intervals["x"][1, 0]))


def iqm_interval(scores: Sequence[float] | np.ndarray, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED) -> Estimate:
    """IQM with its 95% stratified-bootstrap percentile interval (rliable)."""
    from rliable import metrics

    return _interval(_as_runs(scores, "scores"), metrics.aggregate_iqm, reps, seed)


def mean_interval(scores: Sequence[float] | np.ndarray, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED) -> Estimate:
    from rliable import metrics

    return _interval(_as_runs(scores, "scores"), metrics.aggregate_mean, reps, seed)


def probability_of_improvement(scores_x: Sequence[float] | np.ndarray, scores_y: Sequence[float] | np.ndarray,
                               reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED) -> Estimate:
    """P(X > Y): the chance a run of X scores above a run of Y (ties count half), with its interval."""
    from rliable import metrics

    data = (_as_runs(scores_x, "scores_x"), _as_runs(scores_y, "scores_y"))
    return _interval(data, metrics.probability_of_improvement, reps, seed)


def ratio_of_means(numerator: Sequence[float] | np.ndarray, denominator: Sequence[float] | np.ndarray,
                   reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED) -> Estimate:
    """mean(numerator) / mean(denominator), each group resampled independently, e.g. speed ours / reference."""
    data = (_as_runs(numerator, "numerator"), _as_runs(denominator, "denominator"))
    if np.any(data[1] <= 0) or np.any(data[0] < 0):
        raise ValueError(f"a ratio of means needs positive values, got {data[0].ravel().tolist()} / "
                         f"{data[1].ravel().tolist()}")
    return _interval(data, lambda x, y: float(np.mean(x) / np.mean(y)), reps, seed)


def normalize(scores: Sequence[float] | np.ndarray, random_score: float, target_score: float) -> np.ndarray:
    """0 at the random agent's score, 1 at the target (RL-Zoo's published score or the reference's mean)."""
    if not np.isfinite(random_score) or not np.isfinite(target_score) or target_score == random_score:
        raise ValueError(f"normalization needs finite, distinct random and target scores, got "
                         f"random={random_score!r}, target={target_score!r}")
    return (np.asarray(scores, dtype=np.float64) - random_score) / (target_score - random_score)


def iqm_curve(curves: np.ndarray, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Per evaluation point: IQM over runs and its 95% interval. ``curves`` is (runs, points).

    Returns (iqm of shape (points,), interval of shape (2, points)); each point is a stratum.
    """
    from rliable import library, metrics

    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2 or curves.size == 0:
        raise ValueError(f"curves must be a (runs, points) array, got shape {curves.shape}")

    def per_point(scores: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(scores[:, point]) for point in range(scores.shape[1])])

    with _seeded_global_numpy(seed):
        points, intervals = library.get_interval_estimates({"x": curves}, per_point, reps=reps)
    return points["x"], intervals["x"]
