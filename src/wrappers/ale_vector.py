"""The ``"ale"`` backend of :func:`wrappers.atari_presets.make_atari_vector_env`: ale-py's C++ vector env.

ale-py >= 0.12 ships ``ale_py.vector_env.AtariVectorEnv``: N emulators stepped by C++ threads
(the GIL is released while they run), with the DQN preprocessing built in. :func:`make_ale_vector_env`
maps an :class:`~wrappers.atari_presets.AtariPreset` onto its arguments
(:func:`ale_vector_arguments`) and wraps it in :class:`AleVectorPreset`, which gives the
observations, rewards, flags and info of the Python chain's ``SyncVectorEnv``.

Identical to the Python chain (tests/test_ale_vector.py compares them step by step with
``noop_max=0, fire_reset=False`` and no sticky actions, where neither side draws a random number):

- every step of an episode: frame skip, max of the last two frames, ALE's gray palette, the
  ``cv2.INTER_AREA`` resize, the stack (oldest first; RGB frames channel-first, ``(3*k, H, W)``),
  dtype and layout, clipped rewards (float64), ``terminated``/``truncated``, the truncation frame;
- the first observation of an episode: every slot holds its first frame (ALE's C++ env pads with
  zeros; :class:`AleVectorPreset` repeats the frame, as :class:`~wrappers.frame_stack.FrameStackObservation` does);
- same-step autoreset: the new episode's observation, the ended one's in ``info["final_obs"]``
  (an object array with ``None`` for envs that go on, and the ``"_final_obs"`` mask); ``info``
  has ``lives``, ``episode_frame_number``, ``frame_number`` (int64) and, with episodic life,
  ``real_done``, each with its mask.

Different (ALE's C++ env has no setting for them):

- reset: C++ presses FIRE for one frame (in games with FIRE), then takes 0..noop_max-1 no-op
  frames (one fewer after FIRE), drawn by a ``std::mt19937`` seeded with the env's seed; the
  Python chain takes 1..noop_max no-op frames (NumPy draw), then FIRE and action 2 for a full
  step each (in games whose action 1 of 3 or more is FIRE). ``noop_max=0``: no no-ops on either side.
- a lost life (``episodic_life``): both report ``terminated`` (an episode end for the agents'
  statistics). The Python chain then takes one hidden NOOP step and its FIRE reset; the C++ env
  goes on from the frame after the loss (ALE's own ``episodic_life`` would restart the whole game,
  so it is not used; ``life_loss_info`` is). So the agent must press FIRE itself after a lost life,
  and the two backends part ways from that step on.
- an episode that ends by game over or truncation: the newest frame of ``info["final_obs"]`` is
  not the game's last screen (the C++ step stops before reading it; the older frames are right).
  Agents bootstrap only truncated episodes from it (108,000 frames).
- truncation counts frames from the end of the reset sequence, not from ``reset_game``.
- ``final_info`` holds only what survives the C++ reset: ``real_done`` of every ended env, and
  ``lives``/``episode_frame_number``/``frame_number`` of lives lost.
- sticky actions (``repeat_action_probability > 0``) and the no-op counts draw from other generators, so
  they match in distribution only.
- the env cannot be rendered or snapshotted for a resumed run (the emulators are C++ state).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from wrappers import image

try:  # gymnasium >= 1.1; ale-py >= 0.12 needs it too, so on 0.29 this backend is unavailable anyway
    from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
except ImportError:  # gymnasium 0.29
    AutoresetMode = VectorEnv = None  # type: ignore[assignment,misc]
    VectorWrapper = object  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    from wrappers.atari_presets import AtariPreset

MIN_ALE_PY = (0, 12)
"""ale-py's first release whose ``AtariVectorEnv`` resets ended episodes in the same step safely."""
_INT32_MAX = 2**31 - 1
_INFO_KEYS = ("lives", "episode_frame_number", "frame_number")


class AleVectorUnavailable(gym.error.DependencyNotInstalled):
    """ale-py's C++ vector env (``AtariVectorEnv``, ale-py >= 0.12) cannot be imported."""


class UnsupportedAtariSettings(ValueError):
    """Preset settings that ale-py's ``AtariVectorEnv`` has no argument for."""


def atari_vector_env_class() -> type:
    """``ale_py.vector_env.AtariVectorEnv``, or :class:`AleVectorUnavailable` saying what to install."""
    try:
        import ale_py
    except ImportError:
        installed = "ale-py is not installed"
    else:
        installed = f"ale-py {ale_py.__version__} is installed"
        numbers = re.match(r"(\d+)\.(\d+)", ale_py.__version__)
        if numbers and tuple(map(int, numbers.groups())) >= MIN_ALE_PY:
            try:
                from ale_py.vector_env import AtariVectorEnv
            except ImportError as error:
                installed += f" but its vector env does not import ({error})"
            else:
                return AtariVectorEnv
    need = ".".join(map(str, MIN_ALE_PY))
    raise AleVectorUnavailable(f"the 'ale' Atari vector backend needs ale-py >= {need} (ale_py.vector_env."
                               f"AtariVectorEnv) and gymnasium >= 1.1; {installed}: pip install 'ale-py>={need}' "
                               "or use backend='python'")


def _int32(name: str, value: Any, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if value > _INT32_MAX:
        raise UnsupportedAtariSettings(f"{name}={value} does not fit ALE's C++ vector env (at most {_INT32_MAX})")
    return int(value)


def ale_vector_arguments(settings: AtariPreset) -> dict[str, Any]:
    """``AtariVectorEnv`` keyword arguments for a preset (see the module docstring for what differs).

    Raises ``ValueError`` for invalid settings and :class:`UnsupportedAtariSettings` for settings
    the C++ env cannot take. ``scale`` is not an argument: :class:`AleVectorPreset` applies it.

    Example:
        >>> from wrappers.atari_presets import DQN_PRESET
        >>> arguments = ale_vector_arguments(DQN_PRESET)
        >>> arguments["stack_num"], arguments["img_height"], arguments["episodic_life"], arguments["life_loss_info"]
        (4, 84, False, True)
    """
    height, width = image._image_shape(settings.screen_size)
    frame_skip = _int32("frame_skip", settings.frame_skip, 1)
    max_frames = _int32("max_num_frames_per_episode", settings.max_num_frames_per_episode, 0)
    probability = float(settings.repeat_action_probability)
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"repeat_action_probability must be in [0, 1], got {settings.repeat_action_probability!r}")
    return {
        "frameskip": frame_skip,
        "maxpool": frame_skip > 1,  # the Python chain pools only when it skips frames
        "grayscale": bool(settings.grayscale),
        "img_height": _int32("screen height", height, 1),
        "img_width": _int32("screen width", width, 1),
        "stack_num": _int32("frame_stack", settings.frame_stack, 1),
        "noop_max": _int32("noop_max", settings.noop_max, 0),
        "use_fire_reset": bool(settings.fire_reset),
        # ALE's episodic_life restarts the whole game at every lost life; life_loss_info only
        # reports it (terminated) and the game goes on, as EpisodicLife does.
        "episodic_life": False,
        "life_loss_info": bool(settings.episodic_life),
        "reward_clipping": bool(settings.clip_reward),
        "repeat_action_probability": probability,
        "max_num_frames_per_episode": max_frames if max_frames > 0 else _INT32_MAX,  # 0: no limit, as in ALE
        "full_action_space": bool(settings.full_action_space),
    }


def make_ale_vector_env(rom_id: str, num_envs: int, settings: AtariPreset,
                        num_threads: int | None = None) -> AleVectorPreset:
    """``num_envs`` copies of the ALE game ``rom_id`` (``"pong"``) preprocessed by ``settings``, in C++.

    ``num_threads``: the emulator threads (default: ale-py's, one per env up to the CPU count).
    Raises :class:`AleVectorUnavailable` or :class:`UnsupportedAtariSettings` before building anything.
    """
    vector_class = atari_vector_env_class()
    arguments = ale_vector_arguments(settings)
    threads = 0 if num_threads is None else _int32("num_threads", num_threads, 1)
    # AtariVectorEnv stores its autoreset mode in gymnasium's class-level VectorEnv.metadata,
    # which every vector env class without its own metadata shares: keep it as it was.
    shared_metadata = VectorEnv.metadata
    saved_metadata = dict(shared_metadata)
    try:
        vector_env = vector_class(rom_id, num_envs, num_threads=threads,
                                  autoreset_mode=AutoresetMode.SAME_STEP, **arguments)
    finally:
        shared_metadata.clear()
        shared_metadata.update(saved_metadata)
    vector_env.metadata = {**saved_metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
    return AleVectorPreset(vector_env, episodic_life=arguments["life_loss_info"],
                           fire_reset=arguments["use_fire_reset"], scale=bool(settings.scale))


class AleVectorPreset(VectorWrapper):
    """Ale-py's ``AtariVectorEnv`` (same-step autoreset) with the outputs of the Python chain's vector env.

    Per step: frames of a new episode or life fill every stack slot (C++ pads with zeros, or
    keeps the frames before a lost life); RGB stacks become channel-first ``(3*k, H, W)``;
    ``scale`` gives float32 in [0, 1]; rewards are float64; a lost life (C++ ``life_loss_info``,
    the game goes on) gets its ``final_obs`` like an episode end; ``info`` keys are those of
    ``SyncVectorEnv`` over our wrappers. Build it with :func:`make_ale_vector_env`.

    ``step`` is :meth:`send` then :meth:`recv`; calling them apart lets the C++ threads step the
    emulators while Python does other work (one ``recv`` per ``send``).
    """

    def __init__(self, env: Any, episodic_life: bool, fire_reset: bool, scale: bool):
        super().__init__(env)
        # The emulators are C++ state: holding them here also makes core.env_state refuse to
        # snapshot this env (a resumed run starts fresh episodes instead of half-restored ones).
        self._emulators = env.ale
        self._episodic_life = episodic_life
        # SyncVectorEnv over our wrappers reports `real_done` of a reset env only when FireReset's
        # steps made that reset (FIRE is action 1 of 3 or more).
        from ale_py import Action

        actions = env.ale.get_action_set()
        self._fire_reset = fire_reset and len(actions) >= 3 and actions[1] == Action.FIRE
        self._scale = scale
        space = env.single_observation_space
        self._stack = space.shape[0]
        self._rgb = len(space.shape) == 4
        shape = (self._stack * 3, *space.shape[1:3]) if self._rgb else space.shape
        if scale:
            self.single_observation_space = gym.spaces.Box(0.0, 1.0, shape, np.float32)
        else:
            self.single_observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, env.num_envs)
        self.metadata = {**env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        n = env.num_envs
        self._ages = np.zeros(n, dtype=np.int64)  # frames pushed since each env's episode (or life) began
        self._frame_numbers = np.zeros(n, dtype=np.int64)
        self._episode_frame_numbers = np.zeros(n, dtype=np.int64)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        which = np.ones(self.num_envs, dtype=bool)
        if options and "reset_mask" in options:
            which = np.asarray(options["reset_mask"], dtype=bool)
        count = int(which.sum())
        if seed is not None:
            seeds = np.arange(seed, seed + count) if isinstance(seed, (int, np.integer)) else np.asarray(seed)
            if seeds.shape != (count,) or seeds.dtype.kind not in "iu" or (seeds < 0).any():
                raise ValueError(f"seed must be a non-negative int or {count} of them, got {seed!r}")
            # C++ seeds are non-negative int32 (-1 means unseeded).
            seed = (seeds % (_INT32_MAX + 1)).astype(np.int64)
        obs, info = self.env.reset(seed=seed, options=options)
        self._ages[which] = 0
        self._remember_frames(info)
        self._pad(obs, self._ages)
        return self._observations(obs), self._info(info, ended=None)

    def step(self, actions: Any):
        self.send(actions)
        return self.recv()

    def send(self, actions: Any) -> None:
        """Start a step: the C++ threads step the emulators while Python goes on (e.g. to learn)."""
        self.env.send(self._checked_actions(actions))

    def recv(self):
        """Wait for the step :meth:`send` started; returns what :meth:`step` returns."""
        obs, rewards, terminated, truncated, info = self.env.recv()
        frames = info["frame_number"].astype(np.int64)
        episode_frames = info["episode_frame_number"].astype(np.int64)
        # A game the C++ env restarted counts its episode frames from 0 again; a game that went on
        # counted them with its total frames.
        ended = terminated | truncated
        restarted = ended & (episode_frames - self._episode_frame_numbers != frames - self._frame_numbers)
        finals = None
        if ended.any():
            ages = self._ages + 1
            finals = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                final = info["final_obs"][i] if restarted[i] else obs[i].copy()
                self._pad(final[None], ages[i:i + 1])
                finals[i] = self._observations(final[None])[0]
        self._ages = np.where(ended, 0, self._ages + 1)
        self._remember_frames(info)
        self._pad(obs, self._ages)
        return (self._observations(obs), rewards.astype(np.float64), terminated.astype(bool),
                truncated.astype(bool), self._info(info, ended, finals, restarted))

    def _checked_actions(self, actions: Any) -> np.ndarray:
        # The C++ env checks actions inside a worker thread, where an error would hang recv().
        actions = np.asarray(actions)
        count = self.single_action_space.n
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu" \
                or (actions < 0).any() or (actions >= count).any():
            raise ValueError(f"actions must be {self.num_envs} ints in [0, {count}), got {actions!r}")
        return actions.astype(np.int32)

    def _remember_frames(self, info: dict[str, np.ndarray]) -> None:
        self._frame_numbers = info["frame_number"].astype(np.int64)
        self._episode_frame_numbers = info["episode_frame_number"].astype(np.int64)

    def _pad(self, obs: np.ndarray, ages: np.ndarray) -> None:
        """In place: the slots older than each env's first frame repeat that frame."""
        for i in np.flatnonzero(ages < self._stack - 1):
            first = self._stack - 1 - ages[i]
            obs[i, :first] = obs[i, first]

    def _observations(self, obs: np.ndarray) -> np.ndarray:
        if self._rgb:  # (N, k, H, W, 3) -> (N, 3*k, H, W), each frame channel-first, oldest first
            n, stack, height, width, _ = obs.shape
            obs = np.ascontiguousarray(obs.transpose(0, 1, 4, 2, 3)).reshape(n, stack * 3, height, width)
        if self._scale:
            return np.multiply(obs, np.float32(1.0 / 255.0), dtype=np.float32)
        return obs

    def _info(self, info: dict[str, np.ndarray], ended: np.ndarray | None, finals: np.ndarray | None = None,
              restarted: np.ndarray | None = None) -> dict[str, Any]:
        """``info`` as SyncVectorEnv gives it over our wrappers; ``ended`` is None after ``reset``."""
        everyone = np.ones(self.num_envs, dtype=bool)
        out: dict[str, Any] = {}
        if finals is not None:
            out["final_obs"], out["_final_obs"] = finals, ended
            details: dict[str, np.ndarray] = {}
            life_lost = ended & ~restarted
            for key in _INFO_KEYS:  # known only where the game went on (C++ reports the restarted game)
                details[key], details[f"_{key}"] = np.where(life_lost, info[key], 0).astype(np.int64), life_lost
            if self._episodic_life:
                details["real_done"], details["_real_done"] = restarted, ended
            out["final_info"], out["_final_info"] = details, ended
        for key in _INFO_KEYS:
            out[key], out[f"_{key}"] = info[key].astype(np.int64), everyone
        if self._episodic_life:
            # EpisodicLife's step reports real_done (False where the episode goes on); an ended env
            # reports its reset instead, which has the key only when FireReset stepped.
            reported = np.full(self.num_envs, self._fire_reset) if ended is None else ~ended | self._fire_reset
            if reported.any():
                out["real_done"], out["_real_done"] = np.zeros(self.num_envs, dtype=bool), reported
        return out
