"""DQN learns CartPole-v1 with the RL-Zoo settings (slow).

The 5-seed comparison with SB3 (IQM, seeds solved, speed) lives in benchmarks/bench_dqn.py;
CI runs this bounded subset: one seed of our default (Double DQN).
"""

from __future__ import annotations

import json

import pytest

from agents_zoo.agents.dqn import DQN

pytestmark = pytest.mark.slow

# rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1 (see /work/shared/REFERENCE.md)
RL_ZOO_CARTPOLE = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
                       target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                       exploration_final_eps=0.04, policy_hidden_sizes=(256, 256))


def test_cartpole_rl_zoo_settings_reach_475():
    agent = DQN("CartPole-v1", seed=0, **RL_ZOO_CARTPOLE)  # our default: Double DQN
    agent.learn(50_000)
    result = agent.evaluate(10, deterministic=True, seed=10_000)
    assert result.mean >= 475, f"mean evaluation return {result.mean:.1f} < 475"


def test_benchmark_script_runs_end_to_end(tmp_path):
    from benchmarks import bench_dqn

    summary = bench_dqn.main(["--envs", "cartpole", "--algos", "ours-vanilla", "--seeds", "1",
                              "--cartpole-steps", "600", "--eval-episodes", "1", "--out-dir", str(tmp_path)])
    assert summary["cartpole"]["ours-vanilla"]["runs"] == 1
    saved = json.loads((tmp_path / "dqn_cartpole.json").read_text())
    assert saved["runs"][0]["steps"] >= 600 and (tmp_path / "dqn_cartpole.md").exists()
