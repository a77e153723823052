"""Wrappers: exact spaces, bad input, equivalence with gymnasium's and SB3's Atari chains, frame stack properties."""

from __future__ import annotations

import inspect

import ale_py.env
import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wrappers
from wrappers import atari, atari_presets, frame_stack, image, registration, time_feature
from wrappers.fake_envs import RandomImageEnv
from wrappers.frame_stack import gymnasium_frame_stack

EQUIVALENCE_GAMES = ("Pong", "Breakout")
EQUIVALENCE_STEPS = 400


def make_reference_base(game: str) -> gym.Env:
    """The base env both reference chains expect: ``<Game>NoFrameskip-v4`` (RGB, no sticky actions)."""
    return gym.make(f"{game}NoFrameskip-v4")


def rollout(env: gym.Env, actions: np.ndarray, seed: int):
    """Observations, rewards and end flags along a fixed action sequence, resetting on episode end.

    Observations at the step that ends the *game* are left out (None): there gymnasium and SB3
    return a stale pooled frame while ours returns the final frame (documented choice).
    """
    observations, rewards, dones = [], [], []
    obs, _ = env.reset(seed=seed)
    observations.append(np.asarray(obs).reshape(-1, 84, 84))
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(int(action))
        game_over = env.unwrapped.ale.game_over()
        observations.append(None if game_over else np.asarray(obs).reshape(-1, 84, 84))
        rewards.append(float(reward))
        dones.append(bool(terminated or truncated))
        if terminated or truncated:
            obs, _ = env.reset()
            observations.append(np.asarray(obs).reshape(-1, 84, 84))
    return observations, rewards, dones


def assert_same_rollouts(ours, reference, max_gray_difference: int) -> None:
    our_obs, our_rewards, our_dones = ours
    ref_obs, ref_rewards, ref_dones = reference
    assert our_rewards == ref_rewards
    assert our_dones == ref_dones
    assert len(our_obs) == len(ref_obs)
    compared = 0
    for step, (mine, theirs) in enumerate(zip(our_obs, ref_obs)):
        if mine is None or theirs is None:
            continue
        difference = np.abs(mine.astype(np.int16) - theirs.astype(np.int16)).max()
        assert difference <= max_gray_difference, f"observation {step} differs by {difference} gray levels"
        compared += 1
    assert compared >= len(our_obs) - 5


def random_actions(env: gym.Env, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, env.action_space.n, size=EQUIVALENCE_STEPS)


# ------------------------------------------------------------------------------ equivalence
@pytest.mark.parametrize("game", EQUIVALENCE_GAMES)
def test_dqn_preset_matches_gymnasium_atari_preprocessing_exactly(game):
    """Both read gray screens from ALE and resize with INTER_AREA, so observations are identical.

    gymnasium's chain has no FIRE reset, no episodic life and no reward clipping; those are
    turned off in ours. noop_max=30 in both: the no-op counts come from the same RNG draw.
    """
    reference_env = gymnasium_frame_stack(gym.wrappers.AtariPreprocessing(make_reference_base(game), noop_max=30), 4)
    ours_env = atari_presets.make_atari_env(game, episodic_life=False, fire_reset=False, clip_reward=False)
    actions = random_actions(ours_env, seed=1)
    assert_same_rollouts(rollout(ours_env, actions, 7), rollout(reference_env, actions, 7), max_gray_difference=0)


@pytest.mark.parametrize("game", EQUIVALENCE_GAMES)
def test_dqn_preset_matches_sb3_atari_wrapper(game):
    """Same wrapper order as SB3's AtariWrapper (noop, skip, life, fire, warp, clip) plus a stack of 4.

    On an RGB base env our chain converts with cv2 like SB3 and matches exactly; the preset
    proper takes gray screens from the emulator, which differ from cv2's RGB2GRAY by at most
    one gray level (rounding of the luminance weights).
    """
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.atari_wrappers import AtariWrapper

    def sb3_env():
        return gymnasium_frame_stack(AtariWrapper(make_reference_base(game)), 4)

    actions = random_actions(sb3_env(), seed=2)
    reference = rollout(sb3_env(), actions, 11)
    ours_from_rgb = rollout(atari_presets.wrap_atari(make_reference_base(game), "dqn"), actions, 11)
    assert_same_rollouts(ours_from_rgb, reference, max_gray_difference=0)
    ours_preset = rollout(atari_presets.make_atari_env(game, "dqn"), actions, 11)
    assert_same_rollouts(ours_preset, reference, max_gray_difference=1)


def test_fast_ale_path_equals_generic_path():
    """Stepping the ALE directly (fast path) gives what stepping through env.step gives."""

    def chain(opaque: bool):
        base = ale_py.env.AtariEnv("breakout", obs_type="grayscale", frameskip=1, repeat_action_probability=0.0)
        # Any wrapper that is not known to be transparent disables the fast path.
        base = gym.wrappers.TimeLimit(base, max_episode_steps=10**9) if opaque else base
        return atari_presets.wrap_atari(base, "dqn")

    fast, generic = chain(opaque=False), chain(opaque=True)
    fast_skip = fast.get_wrapper_attr("_ale")
    assert fast_skip is not None
    actions = random_actions(fast, seed=3)
    fast_run, generic_run = rollout(fast, actions, 5), rollout(generic, actions, 5)
    assert_same_rollouts(fast_run, generic_run, max_gray_difference=0)


def test_max_and_skip_pools_the_last_two_frames_and_sums_rewards():
    base = ale_py.env.AtariEnv("breakout", obs_type="grayscale", frameskip=1, repeat_action_probability=0.0)
    twin = ale_py.env.AtariEnv("breakout", obs_type="grayscale", frameskip=1, repeat_action_probability=0.0)
    env = atari.MaxAndSkipObservation(base, skip=4)
    env.reset(seed=0)
    twin.reset(seed=0)
    for action in [1, 2, 3, 2, 2, 3]:
        obs, reward, *_ = env.step(action)
        frames, rewards = [], []
        for _ in range(4):
            frame, frame_reward, *_ = twin.step(action)
            frames.append(frame)
            rewards.append(frame_reward)
        np.testing.assert_array_equal(obs, np.maximum(frames[-2], frames[-1]))
        assert reward == sum(rewards)


# ------------------------------------------------------------------------------ spaces
@pytest.mark.parametrize(
    "preset, shape, dtype, high",
    [("dqn", (4, 84, 84), np.uint8, 255), ("gan", (3, 64, 64), np.float32, 1.0)],
)
def test_preset_spaces_are_exact(preset, shape, dtype, high):
    env = atari_presets.make_atari_env("Breakout", preset)
    space = env.observation_space
    assert (space.shape, space.dtype) == (shape, dtype)
    assert np.all(space.low == 0) and np.all(space.high == high)
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        assert obs.shape == shape and obs.dtype == dtype and space.contains(obs)
        obs, reward, *_ = env.step(env.action_space.sample())
        if preset == "dqn":
            assert reward in (-1.0, 0.0, 1.0)
        else:  # the game's own points: Breakout scores 0, 1, 4 or 7 per brick
            assert isinstance(reward, float) and reward >= 0 and reward.is_integer()


def test_gan_preset_keeps_the_game_score_that_clipping_would_change():
    """Same seed and actions: the gan preset's rewards are the game's points, clipping gives their sign."""
    raw_env = atari_presets.make_atari_env("SpaceInvaders", "gan")
    clipped_env = atari_presets.make_atari_env("SpaceInvaders", "gan", clip_reward=True)
    actions = np.random.default_rng(0).integers(0, raw_env.action_space.n, size=200)
    raw_env.reset(seed=0)
    clipped_env.reset(seed=0)
    raw, clipped = [], []
    for action in actions:
        raw.append(raw_env.step(int(action))[1])
        clipped.append(clipped_env.step(int(action))[1])
    assert max(raw) > 1.0  # Space Invaders aliens are worth 5 to 30 points
    assert clipped == [float(np.sign(reward)) for reward in raw]


@pytest.mark.parametrize("size", [84, 64, (50, 40), 1])
@pytest.mark.parametrize("input_shape", [(210, 160), (210, 160, 3), (210, 160, 1)])
def test_resize_any_size(size, input_shape):
    env = image.ResizeObservation(RandomImageEnv(shape=input_shape), shape=size)
    height, width = (size, size) if isinstance(size, int) else size
    assert env.observation_space.shape == (height, width, *input_shape[2:])
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and obs.dtype == np.uint8


def test_channel_first_and_scale_and_grayscale_spaces():
    env = image.ChannelFirstObservation(RandomImageEnv(shape=(6, 5, 3), low=10, high=20))
    assert env.observation_space.shape == (3, 6, 5) and env.observation_space.low.min() == 10
    obs, _ = env.reset(seed=0)
    assert obs.flags["C_CONTIGUOUS"] and env.observation_space.contains(obs)
    assert image.ChannelFirstObservation(RandomImageEnv(shape=(6, 5))).observation_space.shape == (1, 6, 5)
    scaled = image.ScaleObservation(RandomImageEnv(shape=(4, 4)))
    obs, _ = scaled.reset(seed=0)
    assert obs.dtype == np.float32 and 0.0 <= obs.min() and obs.max() <= 1.0
    assert image.ScaleObservation(RandomImageEnv(shape=(1,), low=255)).reset()[0][0] == 1.0
    gray = image.GrayscaleObservation(RandomImageEnv(shape=(6, 5, 3)), keep_dim=True)
    assert gray.observation_space.shape == (6, 5, 1) and gray.reset()[0].shape == (6, 5, 1)


# ------------------------------------------------------------------------------ bad input
def test_image_wrappers_reject_non_image_spaces():
    cartpole = gym.make("CartPole-v1")
    for wrapper in (image.ResizeObservation, image.GrayscaleObservation, image.ChannelFirstObservation,
                    frame_stack.FrameStackObservation):
        with pytest.raises(TypeError, match=r"image observation space.*(Box|shape)"):
            wrapper(cartpole)
    with pytest.raises(TypeError, match="Discrete"):
        image.ResizeObservation(gym.make("FrozenLake-v1"))
    with pytest.raises(TypeError, match="uint8"):
        image.ScaleObservation(cartpole)
    with pytest.raises(TypeError, match=r"\(H, W, 3\)"):
        image.GrayscaleObservation(RandomImageEnv(shape=(8, 8, 1)))
    with pytest.raises(TypeError, match="channel-last"):
        frame_stack.FrameStackObservation(RandomImageEnv(shape=(84, 84, 3)))


@pytest.mark.parametrize("bad_size", [0, -84, (84, 0), (84,), 8.5, True])
def test_resize_rejects_non_positive_sizes(bad_size):
    with pytest.raises(ValueError, match=re_escape(repr(bad_size))):
        image.ResizeObservation(RandomImageEnv(shape=(8, 8)), shape=bad_size)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("bad_count", [0, -1, 2.0, True])
def test_frame_stack_rejects_bad_counts(bad_count):
    with pytest.raises(ValueError, match=rf"num_stack must be a positive int.*{re_escape(repr(bad_count))}"):
        frame_stack.FrameStackObservation(RandomImageEnv(shape=(8, 8)), num_stack=bad_count)
    with pytest.raises(ValueError, match="padding"):
        frame_stack.FrameStackObservation(RandomImageEnv(shape=(8, 8)), padding="edge")


def test_atari_wrappers_reject_bad_settings():
    pong = ale_py.env.AtariEnv("pong", frameskip=1)
    with pytest.raises(ValueError, match="-1"):
        atari.NoopReset(pong, noop_max=-1)
    with pytest.raises(ValueError, match="skip.*0"):
        atari.MaxAndSkipObservation(pong, skip=0)
    with pytest.raises(ValueError, match="bound.*0"):
        atari.ClipReward(pong, bound=0)
    with pytest.raises(TypeError, match="ALE"):
        atari.EpisodicLife(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="FIRE"):
        atari.FireReset(ale_py.env.AtariEnv("freeway"))
    with pytest.raises(TypeError, match="unknown preset settings.*screensize"):
        atari_presets.make_atari_env("Pong", screensize=64)
    with pytest.raises(ValueError, match="unknown Atari game 'Pongg'"):
        atari_presets.make_atari_env("Pongg")


# ------------------------------------------------------------------------------ episodic life
def test_episodic_life_soft_resets_after_a_lost_life_only():
    env = atari_presets.make_atari_env("Breakout", noop_max=0)
    env.reset(seed=0)
    life_lost = False
    for _ in range(2000):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated:
            life_lost = not info["real_done"]
            break
    assert life_lost, "a random Breakout policy loses a life within 2000 steps"
    frame_before = env.unwrapped.ale.getEpisodeFrameNumber()
    env.reset()
    assert env.unwrapped.ale.getEpisodeFrameNumber() > frame_before  # the game went on
    env.reset(seed=0)
    assert env.unwrapped.ale.getEpisodeFrameNumber() < frame_before  # a seeded reset restarts


# ------------------------------------------------------------------------------ vector envs
def test_vector_env_of_presets():
    envs = atari_presets.make_atari_vector_env("Pong", num_envs=2, preset="gan")
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 3, 64, 64) and obs.dtype == np.float32
    obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
    assert obs.shape == (2, 3, 64, 64) and rewards.shape == (2,)
    with pytest.raises(ValueError, match="num_envs.*0"):
        atari_presets.make_atari_vector_env("Pong", num_envs=0)


# name -> (defining module, what it is): a wrapper class (its gymnasium base), another class, a
# preset, or a function.
PUBLIC_NAMES = {
    "NoopReset": (atari, gym.Wrapper),
    "MaxAndSkipObservation": (atari, gym.Wrapper),
    "EpisodicLife": (atari, gym.Wrapper),
    "FireReset": (atari, gym.Wrapper),
    "ClipReward": (atari, gym.RewardWrapper),
    "ResizeObservation": (image, gym.ObservationWrapper),
    "GrayscaleObservation": (image, gym.ObservationWrapper),
    "ChannelFirstObservation": (image, gym.ObservationWrapper),
    "ScaleObservation": (image, gym.ObservationWrapper),
    "FrameStackObservation": (frame_stack, gym.ObservationWrapper),
    "TimeFeatureWrapper": (time_feature, gym.ObservationWrapper),
    "LazyFrames": (frame_stack, type),
    "AtariPreset": (atari_presets, type),
    "DQN_PRESET": (atari_presets, atari_presets.AtariPreset),
    "GAN_PRESET": (atari_presets, atari_presets.AtariPreset),
    "make_atari_env": (atari_presets, "function"),
    "make_atari_vector_env": (atari_presets, "function"),
    "wrap_atari": (atari_presets, "function"),
    "register_envs": (registration, "function"),
    "list_env_ids": (registration, "function"),
}


def test_public_names_are_the_objects_their_modules_define():
    assert wrappers.__all__ == sorted(PUBLIC_NAMES)
    for name, (module, kind) in PUBLIC_NAMES.items():
        value = getattr(wrappers, name)
        assert value is getattr(module, name), name
        if kind == "function":
            assert inspect.isfunction(value) and value.__module__ == module.__name__, name
        elif kind is type:
            assert inspect.isclass(value) and value.__module__ == module.__name__, name
        elif issubclass(kind, gym.Wrapper):
            assert inspect.isclass(value) and issubclass(value, kind) and value.__module__ == module.__name__, name
        else:
            assert isinstance(value, kind), name
    assert (wrappers.DQN_PRESET, wrappers.GAN_PRESET) == (atari_presets.PRESETS["dqn"], atari_presets.PRESETS["gan"])
    with pytest.raises(AttributeError, match="no attribute 'NoSuchWrapper'"):
        wrappers.NoSuchWrapper


# ------------------------------------------------------------------------------ frame stack properties
frame_shapes = st.one_of(
    st.tuples(st.integers(1, 6), st.integers(1, 6)),
    st.tuples(st.sampled_from([1, 3]), st.integers(1, 5), st.integers(1, 5)),
)


@settings(max_examples=60, deadline=None)
@given(
    shape=frame_shapes,
    num_stack=st.integers(1, 5),
    episode_length=st.integers(1, 7),
    num_steps=st.integers(0, 20),
    padding=st.sampled_from(frame_stack.PADDINGS),
    lazy=st.booleans(),
    low=st.integers(0, 100),
    seed=st.integers(0, 2**16),
)
def test_frame_stack_properties(shape, num_stack, episode_length, num_steps, padding, lazy, low, seed):
    """Shapes, dtypes and bounds hold; each step shifts the stack by one frame; resets never leak."""
    base = RandomImageEnv(shape=shape, episode_length=episode_length, low=low, high=255)
    env = frame_stack.FrameStackObservation(base, num_stack=num_stack, padding=padding, lazy=lazy)
    channels = 1 if len(shape) == 2 else shape[0]
    frame_shape = (channels, *shape[-2:])
    assert env.observation_space.shape == (num_stack * channels, *shape[-2:])
    assert env.observation_space.dtype == np.uint8

    def check(obs, newest):
        array = np.asarray(obs)
        assert array.shape == env.observation_space.shape and array.dtype == np.uint8
        frames = array.reshape(num_stack, *frame_shape)
        np.testing.assert_array_equal(frames[-1], np.asarray(newest).reshape(frame_shape))
        return frames

    obs, _ = env.reset(seed=seed)
    frames = check(obs, np.asarray(obs)[-channels:])
    fill = frames[-1] if padding == "reset" else np.zeros(frame_shape, np.uint8)
    for older in frames[:-1]:
        np.testing.assert_array_equal(older, fill)
    assert env.observation_space.contains(np.asarray(obs))
    steps_in_episode = 0
    for _ in range(num_steps):
        previous = frames
        obs, _, terminated, truncated, _ = env.step(0)
        steps_in_episode += 1
        frames = check(obs, np.asarray(obs).reshape(num_stack, *frame_shape)[-1])
        np.testing.assert_array_equal(frames[:-1], previous[1:])  # shifted by exactly one frame
        # the newest frame is the base env's frame of this step (its number is in pixel 0)
        assert int(frames[-1].flat[0]) == max(min(steps_in_episode % 256, 255), low)
        assert env.observation_space.contains(np.asarray(obs))
        if terminated or truncated:
            obs, _ = env.reset()
            steps_in_episode = 0
            frames = check(obs, np.asarray(obs)[-channels:])
            # nothing of the finished episode survives a reset
            fill = frames[-1] if padding == "reset" else np.zeros(frame_shape, np.uint8)
            for older in frames[:-1]:
                np.testing.assert_array_equal(older, fill)


def test_frame_stack_outputs_are_not_overwritten_later():
    env = frame_stack.FrameStackObservation(RandomImageEnv(shape=(3, 3)), num_stack=3)
    first, _ = env.reset(seed=0)
    kept = first.copy()
    for _ in range(5):
        env.step(0)
    np.testing.assert_array_equal(first, kept)


def test_benchmark_script_runs_on_a_tiny_budget(tmp_path):
    from benchmarks import bench_wrappers

    result = bench_wrappers.main(
        ["--steps", "20", "--repeats", "1", "--chains", "emulator", "ours", "--output-dir", str(tmp_path)]
    )
    assert set(result["chains"]) == {"emulator limit (env.step)", "ours: agents_zoo DQN preset"}
    assert (tmp_path / "wrappers_pong.json").exists() and (tmp_path / "wrappers_pong.md").exists()
