"""Nothing saved is lost: a run killed with SIGKILL resumes from its last checkpoint and, with
op determinism on, ends exactly where an uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import agents_zoo
from agents_zoo.core.base import BaseAgent
from agents_zoo.core.env_state import NotSnapshotable, restore, snapshot
from agents_zoo.core.envs import make_vec_env

# (agent, env id, total steps, checkpoint every, config) — small budgets, several checkpoints.
CASES = {
    "random": ("CartPole-v1", 6000, 1000, {"n_envs": 2}),
    "ppo": ("CartPole-v1", 4096, 1024, {"n_envs": 2, "n_steps": 128, "batch_size": 64, "n_epochs": 2}),
    "a2c": ("CartPole-v1", 3000, 500, {"n_envs": 2}),
    "dqn": ("CartPole-v1", 3000, 500, {"learning_starts": 500, "buffer_size": 5000, "train_freq": 4}),
}
AVAILABLE = [name for name in CASES if name in agents_zoo.list_agents()]


def _fingerprint(agent: BaseAgent) -> dict:
    """What must match between a resumed and an uninterrupted run."""
    arrays = {}
    for prefix, obj in agent._trainables().items():
        for i, variable in enumerate(obj.variables):
            arrays[f"{prefix}/{i}"] = np.asarray(variable.numpy())
    return {"steps": agent.num_timesteps, "returns": list(agent._episode_returns),
            "last_obs": np.asarray(agent._last_obs), "rng": agent.rng.bit_generator.state["state"], "arrays": arrays}


def _assert_same(a: dict, b: dict) -> None:
    assert a["steps"] == b["steps"]
    assert a["returns"] == b["returns"]
    np.testing.assert_array_equal(a["last_obs"], b["last_obs"])
    assert a["rng"] == b["rng"]
    assert a["arrays"].keys() == b["arrays"].keys()
    for key in a["arrays"]:
        np.testing.assert_array_equal(a["arrays"][key], b["arrays"][key], err_msg=key)


def test_env_snapshot_roundtrip_continues_the_same_episode():
    env_a = make_vec_env("CartPole-v1", 2, seed=3)
    for _ in range(5):
        env_a.step(np.array([0, 1]))
    description, arrays = snapshot(env_a)
    env_b = make_vec_env("CartPole-v1", 2, seed=99)
    restore(env_b, description, arrays)
    for _ in range(30):  # across autoresets too: the env RNG was restored
        out_a, out_b = env_a.step(np.array([1, 0])), env_b.step(np.array([1, 0]))
        np.testing.assert_array_equal(out_a[0], out_b[0])
        np.testing.assert_array_equal(out_a[1], out_b[1])


def test_env_with_engine_state_is_reported_not_snapshotable():
    class Engine:
        pass

    env = make_vec_env("CartPole-v1", 1)
    env.envs[0].unwrapped.engine = Engine()
    with pytest.raises(NotSnapshotable, match="engine has type Engine"):
        snapshot(env)


@pytest.mark.parametrize("name", AVAILABLE)
def test_save_load_continue_matches_uninterrupted_in_process(name, tmp_path):
    env_id, total, every, config = CASES[name]
    half = (total // 2 // every) * every
    uninterrupted = agents_zoo.make(name, env_id, seed=5, deterministic_ops=True, **config)
    uninterrupted.learn(total, checkpoint_every=every, checkpoint_path=tmp_path / "u.zip", checkpoint_replay_buffer=True)
    first = agents_zoo.make(name, env_id, seed=5, deterministic_ops=True, **config)
    first.learn(total, checkpoint_every=every, checkpoint_path=tmp_path / "ck.zip", checkpoint_replay_buffer=True,
                callback=lambda agent: agent.num_timesteps < half)
    resumed = type(first).load(tmp_path / "ck.zip", env=env_id)
    assert resumed.num_timesteps <= half + every
    resumed.learn(total - resumed.num_timesteps, reset_num_timesteps=False)
    _assert_same(_fingerprint(resumed), _fingerprint(uninterrupted))


RUN_SCRIPT = textwrap.dedent("""
    import sys, time
    import agents_zoo
    name, env_id, total, every, path, slow, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6]), sys.argv[7] == "1"
    import json; config = json.loads(sys.argv[8])
    slow_down = lambda agent: time.sleep(slow) or True
    if resume:
        agent = agents_zoo.get_agent_class(name).load(path, env=env_id)
        print("resumed at", agent.num_timesteps, flush=True)
        agent.learn(total - agent.num_timesteps, reset_num_timesteps=False, checkpoint_every=every, checkpoint_path=path,
                    checkpoint_replay_buffer=True)
    else:
        agent = agents_zoo.make(name, env_id, seed=11, deterministic_ops=True, **config)
        agent.learn(total, checkpoint_every=every, checkpoint_path=path, callback=slow_down, checkpoint_replay_buffer=True)
    agent.save(path + ".final.zip", include_replay_buffer=True)
""")


@pytest.mark.parametrize("name", AVAILABLE)
def test_sigkilled_run_resumes_and_matches_uninterrupted(name, tmp_path):
    env_id, total, every, config = CASES[name]
    import json

    def start(path, slow, resume):
        return subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, name, env_id, str(total), str(every), str(path),
                                 str(slow), "1" if resume else "0", json.dumps(config)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    killed_path = tmp_path / "killed.zip"
    victim = start(killed_path, 0.002, resume=False)
    deadline = time.time() + 240
    # Kill once a checkpoint past the first one exists, mid-run.
    while time.time() < deadline and victim.poll() is None:
        if killed_path.exists() and agents_zoo.load(killed_path).num_timesteps >= 2 * every:
            break
        time.sleep(0.2)
    assert victim.poll() is None, f"run finished before it could be killed: {victim.communicate()[1][-2000:]}"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    checkpoint_steps = agents_zoo.load(killed_path).num_timesteps
    assert 0 < checkpoint_steps < total
    resumed = start(killed_path, 0.0, resume=True)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert f"resumed at {checkpoint_steps}" in out

    reference_path = tmp_path / "reference.zip"
    reference = start(reference_path, 0.0, resume=False)
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-3000:]
    final_resumed = agents_zoo.load(str(killed_path) + ".final.zip", env=env_id)
    final_reference = agents_zoo.load(str(reference_path) + ".final.zip", env=env_id)
    _assert_same(_fingerprint(final_resumed), _fingerprint(final_reference))


def test_a2c_on_frames_resumes_exactly_with_its_kept_layers(tmp_path):
    """A2C's update reads the CNN layer outputs its rollout's acting kept (``reuse_acting_layers``):
    they live within a rollout only, and checkpoints are taken between rollouts, so a resumed
    run on image frames still ends exactly where an uninterrupted one ends."""
    from wrappers.fake_envs import RandomImageEnv

    def make_env():
        return RandomImageEnv(shape=(4, 84, 84), episode_length=30)

    total, every, stop = 400, 100, 206  # stopped inside the rollout that starts at the checkpoint of step 200
    config = {"n_envs": 2, "compute_dtype": "bfloat16"}
    uninterrupted = agents_zoo.make("a2c", make_env, seed=5, deterministic_ops=True, **config)
    uninterrupted.learn(total)
    first = agents_zoo.make("a2c", make_env, seed=5, deterministic_ops=True, **config)
    first.learn(total, checkpoint_every=every, checkpoint_path=tmp_path / "ck.zip",
                callback=lambda agent: agent.num_timesteps < stop)
    assert first.num_timesteps == stop
    resumed = type(first).load(tmp_path / "ck.zip", env=make_env)
    assert resumed.config.reuse_acting_layers and resumed._layers_graph is not None
    assert resumed.num_timesteps == 200
    resumed.learn(total - resumed.num_timesteps, reset_num_timesteps=False)
    _assert_same(_fingerprint(resumed), _fingerprint(uninterrupted))
