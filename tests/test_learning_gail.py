"""GAIL learns: on seals/CartPole-v0 with demonstrations from a PPO expert it reaches 475 of 500,
and with its defaults it imitates a Pendulum-v1 expert.

Slow (a few minutes): the expert is trained here, then GAIL on one seed. The expert, its
demonstrations and our GAIL's settings are those of the shipped ``gail`` sweep (variant
``tuned``), read from benchmarks/configs/gail.json, where the 5-seed run and the comparison
with imitation live (``agents-zoo bench --config gail``).
"""

from __future__ import annotations

from pathlib import Path

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


# Pendulum-v1: the shipped demonstrations of the gail sweep's PPO expert (60 episodes, -196.9);
# a random policy scores about -1290 there.
PENDULUM_DEMOS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "gail_demos_Pendulum-v1.npz"
PENDULUM_RANDOM_RETURN = -1290.0


def test_gail_with_its_defaults_imitates_a_pendulum_expert():
    """GAIL's defaults (those of `agents-zoo train gail`) on 1M steps, about a minute of training.

    Measured runs (benchmarks/results/gail_tuning_Pendulum-v1.md) end at 0.76-0.88 of the
    expert's return and pass 0.8 on the way; this seed reaches 0.99 by 550k steps and ends
    at 0.76, so the test asks for 0.8 at the best evaluation and 0.6 at the end.
    """
    from agents_zoo.agents.gail import GAIL
    from agents_zoo.core.callbacks import EvalCallback
    from agents_zoo.demonstrations import load_demonstrations

    demos = load_demonstrations(PENDULUM_DEMOS)
    expert = float(demos.episode_returns.mean())

    def fraction(value: float) -> float:
        return (value - PENDULUM_RANDOM_RETURN) / (expert - PENDULUM_RANDOM_RETURN)

    agent = GAIL("Pendulum-v1", demonstrations=demos, seed=0)
    evaluations = EvalCallback(100_000, n_eval_episodes=20)
    agent.learn(1_000_000, callback=evaluations)
    best = max(fraction(mean) for _, mean, _ in evaluations.curve)
    final = fraction(agent.evaluate(50).mean)
    assert best >= 0.8 and final >= 0.6, f"best {best:.2f}, final {final:.2f} of the expert's return"
