"""The "ale" backend of make_atari_vector_env (ale-py's C++ AtariVectorEnv) against the Python chain.

With ``noop_max=0``, ``fire_reset=False`` and no sticky actions neither backend draws a random
number, so the same actions must give the same observations (pixel for pixel: both resize with
OpenCV's INTER_AREA), rewards, flags and info, across game overs, truncations and resets. The
differences wrappers/ale_vector.py documents (reset sequences, the step after a lost life, the
newest frame of a final observation) are pinned here too.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from wrappers import ale_vector, atari_presets

try:
    ale_vector.atari_vector_env_class()
    UNAVAILABLE = ""
except ale_vector.AleVectorUnavailable as error:
    UNAVAILABLE = str(error)
needs_ale_vector = pytest.mark.skipif(bool(UNAVAILABLE), reason=f"no C++ Atari vector env: {UNAVAILABLE}")

NO_RANDOMNESS = dict(noop_max=0, fire_reset=False, repeat_action_probability=0.0)


def both_backends(game: str, num_envs: int = 2, **settings):
    python = atari_presets.make_atari_vector_env(game, num_envs, backend="python", **settings)
    ale = atari_presets.make_atari_vector_env(game, num_envs, backend="ale", num_threads=1, **settings)
    return python, ale


def assert_same_info(python_info: dict, ale_info: dict, keys=("lives", "episode_frame_number", "frame_number")):
    for key in keys:
        np.testing.assert_array_equal(ale_info[key], python_info[key], err_msg=key)
        np.testing.assert_array_equal(ale_info[f"_{key}"], python_info[f"_{key}"], err_msg=key)


# ------------------------------------------------------------------ the backend choice (every venv)
def test_backend_and_num_threads_are_checked():
    with pytest.raises(ValueError, match=r"backend must be one of \('auto', 'python', 'ale'\), got 'cpp'"):
        atari_presets.make_atari_vector_env("Pong", 1, backend="cpp")
    with pytest.raises(ValueError, match="num_threads sets the threads of the 'ale' backend"):
        atari_presets.make_atari_vector_env("Pong", 1, backend="python", num_threads=2)


def test_too_old_ale_py_is_one_clear_error_and_auto_falls_back(monkeypatch):
    import ale_py

    if not UNAVAILABLE:  # pretend the installed ale-py predates the vector env
        monkeypatch.setattr(ale_py, "__version__", "0.11.2")
    with pytest.raises(ale_vector.AleVectorUnavailable) as caught:
        atari_presets.make_atari_vector_env("Pong", 2, backend="ale")
    message = str(caught.value)
    assert "needs ale-py >= 0.12" in message and "backend='python'" in message and "\n" not in message
    assert isinstance(atari_presets.make_atari_vector_env("Pong", 2, backend="auto"), gym.vector.SyncVectorEnv)


def test_settings_the_cpp_env_cannot_take_are_refused_and_auto_falls_back(monkeypatch):
    too_long = dataclasses.replace(atari_presets.DQN_PRESET, max_num_frames_per_episode=2**31)
    with pytest.raises(ale_vector.UnsupportedAtariSettings, match=r"max_num_frames_per_episode=2147483648 does not"):
        ale_vector.ale_vector_arguments(too_long)

    def refuse(settings):
        raise ale_vector.UnsupportedAtariSettings("not this one")

    monkeypatch.setattr(ale_vector, "ale_vector_arguments", refuse)
    assert isinstance(atari_presets.make_atari_vector_env("Pong", 1, backend="auto"), gym.vector.SyncVectorEnv)
    if not UNAVAILABLE:
        with pytest.raises(ale_vector.UnsupportedAtariSettings, match="not this one"):
            atari_presets.make_atari_vector_env("Pong", 1, backend="ale")


def test_every_preset_setting_reaches_the_cpp_arguments_or_the_wrapper():
    base = ale_vector.ale_vector_arguments(atari_presets.DQN_PRESET)
    changed = {"noop_max": 7, "frame_skip": 3, "screen_size": (80, 72), "grayscale": False, "episodic_life": False,
               "fire_reset": False, "clip_reward": False, "frame_stack": 2, "repeat_action_probability": 0.25,
               "max_num_frames_per_episode": 0, "full_action_space": True}
    assert set(changed) | {"scale"} == {field.name for field in dataclasses.fields(atari_presets.AtariPreset)}
    for name, value in changed.items():
        arguments = ale_vector.ale_vector_arguments(dataclasses.replace(atari_presets.DQN_PRESET, **{name: value}))
        assert arguments != base, name
    assert base == {"frameskip": 4, "maxpool": True, "grayscale": True, "img_height": 84, "img_width": 84,
                    "stack_num": 4, "noop_max": 30, "use_fire_reset": True, "episodic_life": False,
                    "life_loss_info": True, "reward_clipping": True, "repeat_action_probability": 0.0,
                    "max_num_frames_per_episode": 108_000, "full_action_space": False}


# ------------------------------------------------------------------ the C++ env (ale-py >= 0.12)
@needs_ale_vector
@pytest.mark.parametrize("preset", ["dqn", "gan"])
def test_auto_and_ale_pick_the_cpp_env_with_the_python_chains_spaces(preset):
    from gymnasium.vector import AutoresetMode, VectorEnv

    from agents_zoo.core.envs import check_same_step_autoreset

    shared_metadata = dict(VectorEnv.metadata)
    python = atari_presets.make_atari_vector_env("Breakout", 3, preset, backend="python")
    assert not isinstance(atari_presets.make_atari_vector_env("Breakout", 2, preset), ale_vector.AleVectorPreset)
    assert isinstance(atari_presets.make_atari_vector_env("Breakout", 2, preset, backend="auto"), ale_vector.AleVectorPreset)
    ale = atari_presets.make_atari_vector_env(f"agents_zoo/Breakout-{preset}-v0", 3, backend="ale")
    assert isinstance(ale, ale_vector.AleVectorPreset)
    assert VectorEnv.metadata == shared_metadata  # ale-py's write to the class-level dict was undone
    assert ale.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    check_same_step_autoreset(ale)
    for name in ("single_observation_space", "observation_space", "single_action_space", "action_space"):
        assert getattr(ale, name) == getattr(python, name), name
    obs, info = ale.reset(seed=0)
    assert obs.shape == python.reset(seed=0)[0].shape and obs.dtype == python.single_observation_space.dtype
    assert ale.single_observation_space.contains(obs[0]) and info["lives"].tolist() == [5, 5, 5]


@needs_ale_vector
@pytest.mark.parametrize("game, settings, steps", [
    ("Pong", dict(max_num_frames_per_episode=600), 400),  # truncated every 150 steps
    ("Breakout", dict(episodic_life=False), 400),  # game overs at steps 172 and 177
    ("Pong", dict(preset="gan", frame_stack=2, max_num_frames_per_episode=400), 150),  # RGB, float32
], ids=["pong-truncations", "breakout-game-overs", "pong-rgb"])
def test_same_observations_rewards_and_flags_as_the_python_chain(game, settings, steps):
    python, ale = both_backends(game, **NO_RANDOMNESS, **settings)
    python_obs, python_info = python.reset(seed=0)
    ale_obs, ale_info = ale.reset(seed=0)
    np.testing.assert_array_equal(ale_obs, python_obs)
    assert_same_info(python_info, ale_info)
    frame = 3 if settings.get("preset") == "gan" else 1  # channels per frame
    rng = np.random.default_rng(0)
    episode_ends = 0
    for step in range(steps):
        actions = rng.integers(0, python.single_action_space.n, size=2)
        python_out, ale_out = python.step(actions), ale.step(actions)
        for index, name in enumerate(("observations", "rewards", "terminated", "truncated")):
            assert ale_out[index].dtype == python_out[index].dtype, name
            np.testing.assert_array_equal(ale_out[index], python_out[index], err_msg=f"{name} at step {step}")
        python_info, ale_info = python_out[4], ale_out[4]
        assert sorted(ale_info) == sorted(python_info)
        assert_same_info(python_info, ale_info)
        ended = python_out[2] | python_out[3]
        if ended.any():
            episode_ends += int(ended.sum())
            np.testing.assert_array_equal(ale_info["_final_obs"], python_info["_final_obs"])
            for i in np.flatnonzero(ended):
                python_final, ale_final = python_info["final_obs"][i], ale_info["final_obs"][i]
                assert ale_final.shape == python_final.shape and ale_final.dtype == python_final.dtype
                # All but the newest frame: the C++ step stops before it reads the last screen.
                np.testing.assert_array_equal(ale_final[:-frame], python_final[:-frame])
    assert episode_ends >= 2


@needs_ale_vector
def test_a_lost_life_ends_the_episode_and_the_game_goes_on():
    python, ale = both_backends("Breakout", **NO_RANDOMNESS)  # episodic life, as the DQN preset
    np.testing.assert_array_equal(ale.reset(seed=0)[0], python.reset(seed=0)[0])
    rng = np.random.default_rng(0)
    for step in range(500):
        actions = rng.integers(0, 4, size=2)
        python_out, ale_out = python.step(actions), ale.step(actions)
        for index in (1, 2, 3):
            np.testing.assert_array_equal(ale_out[index], python_out[index])
        if python_out[2].any():
            break
        np.testing.assert_array_equal(ale_out[0], python_out[0])
    else:
        pytest.fail("a random Breakout policy loses a life within 500 steps")
    (lost,) = np.flatnonzero(python_out[2])
    python_info, ale_info = python_out[4], ale_out[4]
    np.testing.assert_array_equal(ale_info["final_obs"][lost], python_info["final_obs"][lost])
    assert not ale_info["final_info"]["real_done"][lost] and not python_info["final_info"]["real_done"][lost]
    assert ale_info["lives"][lost] == python_info["lives"][lost] == 4
    # Both start the new life with a stack of one frame; the Python chain took a hidden NOOP step
    # first (EpisodicLife), the C++ env starts from the frame after the loss.
    new_life = ale_out[0][lost]
    assert (new_life == new_life[-1]).all() and (new_life[-1] == ale_info["final_obs"][lost][-1]).all()
    assert (python_out[0][lost] == python_out[0][lost][-1]).all()
    assert python_info["episode_frame_number"][lost] == ale_info["episode_frame_number"][lost] + 4
    # The game goes on to a real game over, where the C++ env restarts it.
    frames = ale_info["episode_frame_number"][lost]
    for _ in range(2000):
        obs, _, terminated, truncated, info = ale.step(rng.integers(0, 4, size=2))
        if (terminated | truncated)[lost] and info["final_info"]["real_done"][lost]:
            break
        assert info["episode_frame_number"][lost] > frames
        frames = info["episode_frame_number"][lost]
    else:
        pytest.fail("a random Breakout policy loses the game within 2000 steps")
    assert info["lives"][lost] == 5 and info["episode_frame_number"][lost] < frames
    assert (obs[lost] == obs[lost][-1]).all()


@needs_ale_vector
def test_same_seed_same_episodes_with_noops_and_fire_and_send_recv_is_step():
    runs = []
    for split in (False, True):
        envs = atari_presets.make_atari_vector_env("Breakout", 2, backend="ale")
        observations = [envs.reset(seed=2**32 - 1)[0]]  # seeds up to derive_seed's uint32 range
        rng = np.random.default_rng(1)
        for _ in range(60):
            actions = rng.integers(0, 4, size=2)
            if split:
                envs.send(actions)
                observations.append(envs.recv()[0])
            else:
                observations.append(envs.step(actions)[0])
        runs.append(np.stack(observations))
    np.testing.assert_array_equal(runs[0], runs[1])


@needs_ale_vector
def test_bad_actions_raise_and_the_env_cannot_be_snapshotted():
    from agents_zoo.core import env_state

    envs = atari_presets.make_atari_vector_env("Pong", 2, backend="ale")
    envs.reset(seed=0)
    for actions in (np.array([0, 6]), np.array([0.0, 1.0]), np.array([0, 1, 2])):
        with pytest.raises(ValueError, match=r"actions must be 2 ints in \[0, 6\)"):
            envs.step(actions)
    envs.step(np.array([1, 2]))  # still working
    with pytest.raises(env_state.NotSnapshotable):
        env_state.snapshot(envs)


@needs_ale_vector
def test_a_reset_mask_restarts_only_the_masked_envs():
    envs = atari_presets.make_atari_vector_env("Pong", 3, backend="ale", **NO_RANDOMNESS)
    envs.reset(seed=0)
    for _ in range(10):
        envs.step(np.array([2, 3, 4]))
    obs, info = envs.reset(seed=5, options={"reset_mask": np.array([False, True, False])})
    assert info["episode_frame_number"].tolist() == [40, 0, 40] and (obs[1] == obs[1][-1]).all()
    obs, *_, info = envs.step(np.array([2, 3, 4]))
    assert info["episode_frame_number"].tolist() == [44, 4, 44] and (obs[1][:3] == obs[1][0]).all()


@needs_ale_vector
@pytest.mark.parametrize("agent_name, config", [
    ("ppo", dict(n_steps=32, batch_size=32, n_epochs=1)),
    ("a2c", dict(n_steps=8)),
    ("dqn", dict(learning_starts=100, buffer_size=1000, batch_size=8, target_update_interval=50)),
])
def test_agents_learn_on_the_cpp_env(agent_name, config):
    import agents_zoo

    envs = atari_presets.make_atari_vector_env("Breakout", 2, backend="ale", num_threads=1)
    agent = agents_zoo.make(agent_name, envs, n_envs=2, seed=0, **config)
    agent.learn(300)
    assert agent.num_timesteps >= 300 and agent._episode_returns  # lives were lost: episodes ended
    actions, _ = agent.predict(envs.reset(seed=1)[0], deterministic=True)
    assert actions.shape == (2,) and envs.single_action_space.contains(actions[0])
