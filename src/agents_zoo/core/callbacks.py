"""Callbacks with a small lifecycle (SB3 style): returning False from ``on_step`` stops training.

``on_step`` runs after every vector-env step; ``agent.num_timesteps`` counts env steps over all
envs, so frequencies here are in env steps too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from agents_zoo.core.base import BaseAgent


class BaseCallback:
    def __init__(self) -> None:
        self.agent: "BaseAgent | None" = None

    def init_callback(self, agent: "BaseAgent") -> None:
        self.agent = agent

    @property
    def num_timesteps(self) -> int:
        return 0 if self.agent is None else self.agent.num_timesteps

    def on_training_start(self, total_timesteps: int) -> None:
        pass

    def on_rollout_start(self) -> None:
        pass

    def on_step(self) -> bool:
        return True

    def on_rollout_end(self) -> None:
        pass

    def on_training_end(self) -> None:
        pass


class CallbackList(BaseCallback):
    def __init__(self, callbacks: Sequence[BaseCallback]):
        super().__init__()
        self.callbacks = list(callbacks)

    def init_callback(self, agent: "BaseAgent") -> None:
        super().init_callback(agent)
        for callback in self.callbacks:
            callback.init_callback(agent)

    def on_training_start(self, total_timesteps: int) -> None:
        for callback in self.callbacks:
            callback.on_training_start(total_timesteps)

    def on_rollout_start(self) -> None:
        for callback in self.callbacks:
            callback.on_rollout_start()

    def on_step(self) -> bool:
        # Every callback sees every step, even after one asked to stop.
        return all([callback.on_step() for callback in self.callbacks])

    def on_rollout_end(self) -> None:
        for callback in self.callbacks:
            callback.on_rollout_end()

    def on_training_end(self) -> None:
        for callback in self.callbacks:
            callback.on_training_end()


class FunctionCallback(BaseCallback):
    """Wrap ``fn(agent) -> bool | None`` (None means continue)."""

    def __init__(self, fn: Callable[["BaseAgent"], Any]):
        super().__init__()
        self.fn = fn

    def on_step(self) -> bool:
        return self.fn(self.agent) is not False


def as_callback(callback: "BaseCallback | Callable | Sequence | None") -> BaseCallback:
    if callback is None:
        return CallbackList([])
    if isinstance(callback, BaseCallback):
        return callback
    if isinstance(callback, (list, tuple)):
        return CallbackList([as_callback(c) for c in callback])
    if callable(callback):
        return FunctionCallback(callback)
    raise TypeError(f"callback must be a BaseCallback, a function or a list of them, got {callback!r}")


class EveryNSteps(BaseCallback):
    """Calls ``_on_event`` each time ``every`` more env steps have passed; False from it stops training.

    With ``between_rollouts``, for agents that update only at rollout ends
    (``checkpoint_between_rollouts_only``), the call waits for the start of the next rollout: the
    update of the rollout just collected is done and the buffer is empty.
    """

    def __init__(self, every: int, what: str, between_rollouts: bool = False):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"{what} must be a positive number of env steps, got {every!r}")
        self.every = every
        self._next = every
        self.between_rollouts = between_rollouts
        self._pending = False
        self._keep_training = True

    def on_training_start(self, total_timesteps: int) -> None:
        self._next = (self.num_timesteps // self.every + 1) * self.every

    def on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next = (self.num_timesteps // self.every + 1) * self.every
            assert self.agent is not None
            if self.between_rollouts and self.agent.checkpoint_between_rollouts_only:
                self._pending = True
            elif self._on_event() is False:
                return False
        return self._keep_training

    def on_rollout_start(self) -> None:
        if self._pending:
            self._pending = False
            self._keep_training = self._on_event() is not False

    def _on_event(self) -> bool | None:
        raise NotImplementedError


class ProgressBarCallback(BaseCallback):
    """A tqdm bar over the env steps ``learn`` will take: whole iterations (``planned_steps``)."""

    def __init__(self) -> None:
        super().__init__()
        self.bar = None
        self._shown = 0

    def on_training_start(self, total_timesteps: int) -> None:
        from tqdm.auto import tqdm

        self._shown = self.num_timesteps
        self.bar = tqdm(total=self.agent.planned_steps(total_timesteps), initial=0, unit="step", dynamic_ncols=True,
                        desc=getattr(self.agent, "name", "train"))

    def on_step(self) -> bool:
        if self.bar is not None:
            self.bar.update(self.num_timesteps - self._shown)
            self._shown = self.num_timesteps
        return True

    def on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class CheckpointCallback(EveryNSteps):
    """Every ``save_every`` env steps, atomically overwrite ``path`` with a resumable checkpoint.

    For agents that hold a half-filled rollout (on-policy), the save waits for the start of the
    next rollout (the update is done, the buffer empty), so a checkpoint never misses state
    that the file cannot hold.
    """

    def __init__(self, path: str | Path, save_every: int, include_replay_buffer: bool = False):
        super().__init__(save_every, "checkpoint_every", between_rollouts=True)
        self.path = Path(path)
        self.include_replay_buffer = include_replay_buffer

    def _on_event(self) -> None:
        assert self.agent is not None
        self.agent.save(self.path, include_replay_buffer=self.include_replay_buffer)

    def on_training_end(self) -> None:
        # A run that a callback stopped mid-rollout keeps its last periodic checkpoint: saving
        # now would drop the half-filled rollout and break an exact resume.
        assert self.agent is not None
        stopped_mid_rollout = self.agent.num_timesteps < self.agent._total_timesteps
        if not (self.agent.checkpoint_between_rollouts_only and stopped_mid_rollout):
            self.agent.save(self.path, include_replay_buffer=self.include_replay_buffer)


class StopTrainingOnRewardThreshold(BaseCallback):
    """Used as ``EvalCallback(callback_on_new_eval=...)``: stop once the mean eval return reaches the threshold."""

    def __init__(self, reward_threshold: float):
        super().__init__()
        self.reward_threshold = float(reward_threshold)
        self.last_mean: float | None = None

    def on_step(self) -> bool:
        return self.last_mean is None or self.last_mean < self.reward_threshold


class EvalCallback(EveryNSteps):
    """Evaluate every ``eval_every`` env steps; keep the curve; optionally save the best model."""

    def __init__(self, eval_every: int, n_eval_episodes: int = 10, deterministic: bool = True,
                 eval_env: Any = None, best_model_path: str | Path | None = None,
                 callback_on_new_eval: StopTrainingOnRewardThreshold | None = None, verbose: int = 0):
        super().__init__(eval_every, "eval_every")
        self.n_eval_episodes = n_eval_episodes
        self.deterministic = deterministic
        self.eval_env = eval_env
        self.best_model_path = Path(best_model_path) if best_model_path else None
        self.callback_on_new_eval = callback_on_new_eval
        self.verbose = verbose
        self.best_mean = -np.inf
        self.curve: list[tuple[int, float, float]] = []  # (timesteps, mean, std)

    def _on_event(self) -> bool:
        assert self.agent is not None
        result = self.agent.evaluate(self.n_eval_episodes, deterministic=self.deterministic, env=self.eval_env)
        self.curve.append((self.num_timesteps, result.mean, result.std))
        self.agent.logger.record("eval/mean_reward", result.mean)
        self.agent.logger.record("eval/std_reward", result.std)
        if self.verbose:
            print(f"eval at {self.num_timesteps} steps: {result.mean:.2f} +/- {result.std:.2f}")
        if result.mean > self.best_mean:
            self.best_mean = result.mean
            if self.best_model_path is not None:
                self.agent.save(self.best_model_path)
        if self.callback_on_new_eval is not None:
            self.callback_on_new_eval.last_mean = result.mean
            return self.callback_on_new_eval.on_step()
        return True
