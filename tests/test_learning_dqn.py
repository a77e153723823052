"""DQN learns CartPole-v1 with the RL-Zoo settings (slow).

The 10-seed comparison with SB3 (benchmarks/configs/dqn-defaults.json, results in
benchmarks/results/) uses the same settings, read from the shipped config; CI runs this bounded
subset: one seed of our default (vanilla targets, torch.nn's default init, as SB3's DQN). With
these settings the greedy policy can swing between ~500 and ~100 from one training phase to the
next (a learning rate of 2.3e-3 over 128 gradient steps per hard target refresh); with the
default 9 of seeds 0-9 end at >= 475 (SB3 2.9.2: 7), with orthogonal init or Double DQN 4-5.
"""

from __future__ import annotations

import pytest

from agents_zoo.agents.dqn import DQN
from benchmarks.config import shipped_experiment

pytestmark = pytest.mark.slow


def test_cartpole_rl_zoo_settings_reach_475():
    # rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1, as the shipped benchmark runs it
    budget, settings = shipped_experiment("dqn-defaults", "dqn", "CartPole-v1", variant="default")
    agent = DQN("CartPole-v1", seed=0, **settings)  # double_q=False, network_init="torch": our defaults
    agent.learn(budget)
    result = agent.evaluate(10, deterministic=True, seed=10_000)
    assert result.mean >= 475, f"mean evaluation return {result.mean:.1f} < 475"
