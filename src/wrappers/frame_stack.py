"""Channel-first frame stacking with a ring buffer (and an optional lazy, frame-sharing output)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wrappers import _validation

PADDINGS = ("reset", "zero")


class LazyFrames:
    """A stack of frames that shares the frame arrays and concatenates only when read.

    Consecutive observations of a stack of 4 share 3 frames, so a replay buffer that keeps
    ``LazyFrames`` stores each frame once instead of four times. ``np.asarray(lazy)`` gives the
    stacked array.

    Example:
        >>> import numpy as np
        >>> lazy = LazyFrames((np.zeros((1, 2, 2), np.uint8), np.ones((1, 2, 2), np.uint8)))
        >>> lazy.shape, np.asarray(lazy)[:, 0, 0].tolist()
        ((2, 2, 2), [0, 1])
    """

    __slots__ = ("_frames", "shape", "dtype")

    def __init__(self, frames: tuple[np.ndarray, ...]):
        self._frames = frames
        first = frames[0]
        self.shape = (first.shape[0] * len(frames), *first.shape[1:])
        self.dtype = first.dtype

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        stacked = np.concatenate(self._frames, axis=0)
        return stacked if dtype is None else stacked.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.asarray(self)[index]

    def __eq__(self, other: object) -> bool:
        return bool(np.array_equal(np.asarray(self), np.asarray(other)))


class FrameStackObservation(gym.ObservationWrapper):
    """Stack the last ``num_stack`` frames along a leading channel axis, oldest first.

    Frames of shape ``(H, W)`` give ``(num_stack, H, W)``; channel-first frames ``(C, H, W)``
    give ``(num_stack * C, H, W)`` (apply :class:`~wrappers.image.ChannelFirstObservation`
    first to ``(H, W, C)`` images). At reset every slot holds the reset frame
    (``padding="reset"``, as gymnasium's ``FrameStack``) or zeros except the last
    (``padding="zero"``, as SB3's ``VecFrameStack``), so no frame of the previous episode leaks in.

    The frames live in one preallocated ring buffer; each step writes one frame and returns a
    new array in time order (one ``np.concatenate``), so returned observations are never
    overwritten later. ``lazy=True`` returns :class:`LazyFrames` instead (frames shared between
    consecutive observations, for memory-lean replay buffers).

    Example:
        >>> from wrappers.fake_envs import RandomImageEnv
        >>> env = FrameStackObservation(RandomImageEnv(shape=(84, 84)), num_stack=4)
        >>> env.observation_space.shape
        (4, 84, 84)
        >>> obs, info = env.reset(seed=0)
        >>> [int(frame[0, 0]) for frame in obs]
        [0, 0, 0, 0]
        >>> obs, *_ = env.step(0)
        >>> [int(frame[0, 0]) for frame in obs]
        [0, 0, 0, 1]
    """

    def __init__(self, env: gym.Env, num_stack: int = 4, padding: str = "reset", lazy: bool = False):
        super().__init__(env)
        if isinstance(num_stack, bool) or not isinstance(num_stack, (int, np.integer)) or num_stack < 1:
            raise ValueError(f"num_stack must be a positive int (frames to stack), got {num_stack!r}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        space = _validation.image_box("FrameStackObservation", env.observation_space)
        if len(space.shape) == 3 and space.shape[-1] in (1, 3, 4) and space.shape[0] not in (1, 3, 4):
            raise TypeError(
                f"FrameStackObservation stacks channel-first frames (C, H, W) or (H, W); got shape "
                f"{space.shape}, which looks channel-last: wrap with ChannelFirstObservation first"
            )
        self.num_stack = int(num_stack)
        self.padding = padding
        self.lazy = bool(lazy)
        # (H, W) frames are stored as (1, H, W) so both cases stack by concatenation.
        self._frame_shape = (1, *space.shape) if len(space.shape) == 2 else tuple(space.shape)
        self._frames = np.zeros((self.num_stack, *self._frame_shape), dtype=space.dtype)
        self._lazy_frames: list[np.ndarray] = []
        self._next = 0  # ring index of the slot the next frame goes to (= the oldest frame)
        low = np.concatenate([np.asarray(space.low).reshape(self._frame_shape)] * self.num_stack)
        high = np.concatenate([np.asarray(space.high).reshape(self._frame_shape)] * self.num_stack)
        if padding == "zero":  # zero frames appear right after reset, so 0 must be in bounds
            low = np.minimum(low, 0).astype(low.dtype)
        self.observation_space = gym.spaces.Box(low=low, high=high, dtype=space.dtype)
        self._zero_frame = np.zeros(self._frame_shape, dtype=space.dtype)

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        frame = np.asarray(obs).reshape(self._frame_shape)
        if self.lazy:
            frame = frame.copy()
        fill = frame if self.padding == "reset" else self._zero_frame
        if self.lazy:
            self._lazy_frames = [fill] * (self.num_stack - 1) + [frame]
        else:
            self._frames[:] = fill
            self._frames[-1] = frame
            self._next = 0
        return self._stacked(), info

    def observation(self, observation: np.ndarray) -> Any:
        frame = np.asarray(observation).reshape(self._frame_shape)
        if self.lazy:
            self._lazy_frames = self._lazy_frames[1:] + [frame.copy()]
        else:
            self._frames[self._next] = frame
            self._next = (self._next + 1) % self.num_stack
        return self._stacked()

    def _stacked(self) -> Any:
        if self.lazy:
            return LazyFrames(tuple(self._lazy_frames))
        frames, split, shape = self._frames, self._next, self.observation_space.shape
        if split == 0:  # the ring is in time order already; copy so callers own what they get
            return frames.reshape(shape).copy()
        return np.concatenate((frames[split:], frames[:split])).reshape(shape)


def gymnasium_frame_stack(env: gym.Env, num_stack: int) -> gym.Env:
    """gymnasium's own frame stack, the reference ours is compared with in tests and benchmarks.

    gymnasium 0.29 calls it ``FrameStack`` (LazyFrames observations); 1.x renamed it
    ``FrameStackObservation`` (arrays, ``stack_size=``). Both stack on a new first axis.
    """
    if hasattr(gym.wrappers, "FrameStackObservation"):  # gymnasium >= 1.0
        return gym.wrappers.FrameStackObservation(env, stack_size=num_stack)
    return gym.wrappers.FrameStack(env, num_stack=num_stack)  # gymnasium 0.29
