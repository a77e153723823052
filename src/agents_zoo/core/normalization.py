"""Running mean/std statistics for observation and reward normalization (saved with the model)."""

from __future__ import annotations

import numpy as np


class RunningMeanStd:
    """Parallel-algorithm running moments (Chan et al.), as in SB3's VecNormalize."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=np.float64)
        batch_count = batch.shape[0]
        # The same arithmetic as batch.mean(0) / batch.var(0), without their Python-level
        # dispatch, which cost more than the math for the 8-row batches of a per-step update.
        batch_mean = batch.sum(axis=0) / batch_count
        centered = batch - batch_mean
        batch_var = (centered * centered).sum(axis=0) / batch_count
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.var = m2 / total
        self.count = total

    def normalize(self, x: np.ndarray, clip: float = 10.0, epsilon: float = 1e-8) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + epsilon), -clip, clip).astype(np.float32)

    def state_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}/mean": self.mean, f"{prefix}/var": self.var, f"{prefix}/count": np.array(self.count)}

    def load_state_arrays(self, prefix: str, arrays: dict[str, np.ndarray]) -> None:
        """Restore ``state_arrays``; refuse statistics that ``normalize`` could not use: NaN or inf,
        a negative variance (its square root is NaN) or a count that is not one positive number."""
        mean, var, count = arrays[f"{prefix}/mean"], arrays[f"{prefix}/var"], arrays[f"{prefix}/count"]
        if mean.shape != self.mean.shape or var.shape != self.var.shape:
            raise ValueError(f"saved {prefix} statistics have shapes {mean.shape} and {var.shape}, "
                             f"expected {self.mean.shape}")
        for name, value in (("mean", mean), ("var", var), ("count", count)):
            if value.dtype.kind not in "iuf" or not np.all(np.isfinite(value)):
                raise ValueError(f"saved {prefix}/{name} must hold finite numbers, got {value.dtype} values")
        if np.any(var < 0):
            raise ValueError(f"saved {prefix}/var holds a negative variance ({float(var.min())})")
        if count.size != 1 or not float(count.reshape(-1)[0]) > 0:
            raise ValueError(f"saved {prefix}/count must be one positive number, got {count.tolist()}")
        self.mean, self.var, self.count = mean.astype(np.float64), var.astype(np.float64), float(count.reshape(-1)[0])
