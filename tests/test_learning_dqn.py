"""DQN learns CartPole-v1 with the RL-Zoo settings (slow).

The 10-seed comparison with SB3 (benchmarks/configs/dqn-defaults.json, results in
benchmarks/results/) uses the same settings, read from the shipped config; CI runs this bounded
subset: seeds of our default (vanilla targets, torch.nn's default init, as SB3's DQN). With
these settings the greedy policy can swing between ~500 and ~100 from one training phase to the
next (a learning rate of 2.3e-3 over 128 gradient steps per hard target refresh); with the
default 9 of seeds 0-9 end at >= 475 (SB3 2.9.2: 7), with orthogonal init or Double DQN 4-5.
Which seeds those are depends on the CPU: float32 sums round differently with AVX2 and AVX-512
kernels, and on an AVX2 Zen 3 seed 0 ended at 161.7 (it had ended at 498.7 on the sweep's
AVX-512 EPYC), seeds 1 and 2 at 500. So the test asks for 2 of seeds 0-2, as the sweep's 9 of 10
would, and stops as soon as the answer is known.
"""

from __future__ import annotations

import pytest

from agents_zoo.agents.dqn import DQN
from benchmarks.config import shipped_experiment

pytestmark = pytest.mark.slow


def test_cartpole_rl_zoo_settings_reach_475_on_two_of_three_seeds():
    # rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1, as the shipped benchmark runs it
    budget, settings = shipped_experiment("dqn-defaults", "dqn", "CartPole-v1", variant="default")
    returns = {}
    for seed in (0, 1, 2):
        agent = DQN("CartPole-v1", seed=seed, **settings)  # double_q=False, network_init="torch": our defaults
        agent.learn(budget)
        returns[seed] = agent.evaluate(10, deterministic=True, seed=10_000).mean
        reached = sum(value >= 475 for value in returns.values())
        if reached == 2 or len(returns) - reached == 2:
            break
    assert reached == 2, f"mean evaluation returns by seed {returns}: fewer than 2 of 3 reach 475"
