"""Proportional prioritized replay (Schaul et al. 2016): the sum tree and the priorities kept in
it, over the slots of any replay buffer (``core.buffers.ReplayBuffer`` and
``agents_zoo.agents.replay.FrameReplayBuffer`` both hold one). NumPy only.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """Non-negative leaf values under a binary tree of partial sums (Schaul et al. 2016, appendix B.2.1).

    Node 1 is the root, node i has children 2i and 2i + 1, and leaf k is node ``leaf_base + k``
    (``leaf_base`` the power of two >= ``size``; the padding leaves stay 0). Updates rewrite the
    changed leaves and recompute their ancestors one level at a time; lookups descend one level
    at a time: both are vectorized over a whole batch of leaves, O(log size) NumPy calls.
    Sums are recomputed from the children (never adjusted by differences), so float64 round-off
    does not accumulate over millions of updates.
    """

    def __init__(self, size: int):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"sum tree size must be a positive int, got {size!r}")
        self.size = int(size)
        self.leaf_base = 1 << (self.size - 1).bit_length()
        self.depth = self.leaf_base.bit_length() - 1
        self.nodes = np.zeros(2 * self.leaf_base, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    @property
    def leaves(self) -> np.ndarray:
        """The leaf values (a read-only view)."""
        view = self.nodes[self.leaf_base:self.leaf_base + self.size]
        view.flags.writeable = False
        return view

    def update(self, indices: np.ndarray, values: np.ndarray | float) -> None:
        """Set leaves ``indices`` to ``values``; of repeated indices the last value is kept."""
        nodes = np.asarray(indices, dtype=np.int64).reshape(-1)
        if nodes.size == 0:
            return
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), nodes.shape)
        bad = ~(np.isfinite(values) & (values >= 0))
        if bad.any():
            raise ValueError(f"sum tree values must be finite and >= 0, got {values[bad][:3]}")
        if nodes.min() < 0 or nodes.max() >= self.size:
            raise IndexError(f"sum tree leaf index out of range 0..{self.size - 1}: {nodes.min()}..{nodes.max()}")
        nodes = nodes + self.leaf_base
        self.nodes[nodes] = values
        for _ in range(self.depth):
            # Repeated parents get the same sum twice: no np.unique needed.
            nodes >>= 1
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]

    def find(self, masses: np.ndarray) -> np.ndarray:
        """The leaf whose interval of the prefix sums holds each mass (masses in [0, total)).

        The descent turns right only into subtrees with a positive sum, so a mass at or above
        ``total`` by round-off still lands on a leaf with a positive value, never on an empty one.
        """
        masses = np.array(masses, dtype=np.float64).reshape(-1)
        nodes = np.ones(masses.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = self.nodes[left]
            right = (masses >= left_sum) & (self.nodes[left + 1] > 0.0)
            masses = np.where(right, masses - left_sum, masses)
            nodes = np.where(right, left + 1, left)
        return nodes - self.leaf_base


class ProportionalPriorities:
    """Proportional prioritized replay (Schaul et al. 2016, sec. 3.3 and Algorithm 1) over a buffer's slots.

    Transition i is sampled with probability ``P(i) = p_i^alpha / sum_k p_k^alpha`` where
    ``p_i = |delta_i| + epsilon`` after its last TD error, and a new transition gets the largest
    ``p`` seen so far, so it is replayed at least once soon (Algorithm 1, line 6). A slot that
    holds no sampleable transition has value 0 and is never drawn. Batches are stratified:
    sample j of a batch of B falls in the j-th of B equal segments of the total (appendix
    B.2.1). The importance-sampling weight ``w_i = (N P(i))^-beta`` corrects the bias of the
    non-uniform draw, normalized by the largest weight of its batch so it only ever scales an
    update down (Algorithm 1, line 10; Dopamine's and Acme's PER normalize per batch too).
    """

    def __init__(self, size: int, alpha: float, epsilon: float):
        self.tree = SumTree(size)
        self.alpha = float(alpha)
        self.epsilon = float(epsilon)
        self.max_priority = 1.0  # the largest |delta| + epsilon seen; 1 before any update (Algorithm 1, line 2: p_1 = 1)

    def add(self, indices: np.ndarray) -> None:
        self.tree.update(indices, self.max_priority ** self.alpha)

    def remove(self, indices: np.ndarray) -> None:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        indices = indices[self.tree.nodes[indices + self.tree.leaf_base] != 0.0]  # most removed slots are empty already
        self.tree.update(indices, 0.0)

    def update(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities from the absolute TD errors of the transitions at ``indices``."""
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64).reshape(-1)) + self.epsilon
        if not np.isfinite(priorities).all():
            raise ValueError("prioritized replay got non-finite TD errors: the Q-network diverged "
                             "(lower learning_rate, or check the rewards with detect_nonfinite=True)")
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(indices, priorities ** self.alpha)

    def sample(self, rng: np.random.Generator, batch_size: int, n_batches: int, n_transitions: int,
               beta: float) -> tuple[np.ndarray, np.ndarray]:
        """(indices, weights) of ``n_batches`` stratified batches, flattened batch after batch."""
        total = self.tree.total
        if total <= 0.0:
            raise ValueError("cannot sample from an empty replay buffer")
        segment = total / batch_size
        masses = (np.arange(batch_size) + rng.random((n_batches, batch_size))) * segment
        indices = self.tree.find(masses)
        probabilities = self.tree.nodes[indices + self.tree.leaf_base] / total
        weights = (n_transitions * probabilities.reshape(n_batches, batch_size)) ** -beta
        weights /= weights.max(axis=1, keepdims=True)
        return indices, weights.reshape(-1).astype(np.float32)

    def state_arrays(self, leaves: np.ndarray) -> dict[str, np.ndarray]:
        return {"priorities": leaves.astype(np.float64), "max_priority": np.array([self.max_priority], np.float64)}

    def restore(self, arrays: dict[str, np.ndarray], indices: np.ndarray, sampleable: np.ndarray) -> None:
        """Load saved leaves for ``indices``; without saved ones (an older file, or one saved without
        prioritized replay) every sampleable transition starts at the largest priority, as new ones do."""
        self.tree.nodes[:] = 0.0
        if "priorities" in arrays:
            values = np.asarray(arrays["priorities"], dtype=np.float64).reshape(-1)
            if values.shape != indices.shape:
                raise ValueError(f"saved replay priorities have {values.size} entries, expected {indices.size}")
            self.max_priority = float(np.asarray(arrays["max_priority"]).reshape(-1)[0])
            self.tree.update(indices, np.where(sampleable, values, 0.0))
        else:
            self.max_priority = 1.0
            self.tree.update(indices, np.where(sampleable, self.max_priority ** self.alpha, 0.0))
