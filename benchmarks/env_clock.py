"""How much of a run's CPU time its training envs take: ``EnvCpuClock``.

A module of its own because it imports gymnasium (and so NumPy), which the runner must not
import before it sets the thread variables (``runner.set_thread_variables``); the trainers
import it when they build their envs. The count is ``progress.ENV_CPU_SECONDS``.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym

from benchmarks.progress import ENV_CPU_SECONDS


class EnvCpuClock(gym.Wrapper):
    """Times its env's ``step`` and ``reset`` in CPU seconds (``progress.ENV_CPU_SECONDS``).

    Both libraries' training envs get it in the single-thread protocol, so a record can say how
    much of a run's CPU time the env itself took: the part no learner can save, which bounds the
    speed ratio two libraries can reach on that env (an env taking E of the reference's T CPU
    seconds per step caps the ratio at T / E). Two ``process_time`` reads per call cost ~1 us,
    against 100s of us for an Atari or PyBullet step.
    """

    def step(self, action: Any) -> Any:
        began = time.process_time()
        result = self.env.step(action)
        ENV_CPU_SECONDS[0] += time.process_time() - began
        return result

    def reset(self, **kwargs: Any) -> Any:
        began = time.process_time()
        result = self.env.reset(**kwargs)
        ENV_CPU_SECONDS[0] += time.process_time() - began
        return result
