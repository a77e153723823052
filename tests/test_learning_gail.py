"""GAIL learns: on seals/CartPole-v0 with demonstrations from a PPO expert it reaches 475 of 500.

Slow (a few minutes): the expert is trained here, then GAIL on one seed. The expert, its
demonstrations and our GAIL's settings are those of the shipped ``gail`` sweep (variant
``tuned``), read from benchmarks/configs/gail.json, where the 5-seed run and the comparison
with imitation live (``agents-zoo bench --config gail``).
"""

from __future__ import annotations

import pytest

from benchmarks.config import shipped_experiment, shipped_run

pytestmark = pytest.mark.slow
ENV_ID = "seals/CartPole-v0"


@pytest.fixture(scope="module")
def expert_demonstrations(tmp_path_factory):
    pytest.importorskip("seals")
    from benchmarks.runner import ensure_demonstrations

    # The sweep's own code makes them, from the config's expert settings, into a cache of this test's.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGENTS_ZOO_CACHE", str(tmp_path_factory.mktemp("cache")))
        demos = ensure_demonstrations(ENV_ID, shipped_run("gail", "gail", ENV_ID, variant="tuned").demonstrations)
    assert demos.episode_returns.mean() >= 475, "the PPO expert itself did not learn"
    return demos


@pytest.mark.parametrize("seed", [0])
def test_gail_reaches_expert_level_on_cartpole(expert_demonstrations, seed):
    from agents_zoo.agents.gail import GAIL

    _, settings = shipped_experiment("gail", "gail", ENV_ID, variant="tuned")
    agent = GAIL(ENV_ID, demonstrations=expert_demonstrations, seed=seed, **settings)
    best = -1.0
    while agent.num_timesteps < 150_000 and best < 475:  # seeds 0-4 reach 475 within ~55k steps
        agent.learn(4_096, reset_num_timesteps=False)
        best = max(best, agent.evaluate(10).mean)
    assert best >= 475, f"GAIL seed {seed} reached only {best:.1f} of 500 in {agent.num_timesteps} steps"
    logged = agent.logger.history[-1]
    assert 0.0 <= logged["disc/expert_acc"] <= 1.0 and 0.0 <= logged["disc/gen_acc"] <= 1.0
