"""The benchmark harness's experiment-level ``env_wrapper``: validated, hashed only when set, and
applied to the training and evaluation envs of both libraries."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from benchmarks import config, harness, translate
from benchmarks.config import ConfigError


def wrapped_config(**experiment_changes):
    """The quick config (PPO on CartPole-v1, ours vs SB3) shrunk to seconds, its envs time-featured."""
    data = json.loads(config.resolve_config_path("quick").read_text())
    data.update(name="time-feature", seeds=[0], random_baseline=False, headline=False,
                evaluation={"eval_every": 256, "n_eval_episodes": 1, "n_final_episodes": 2})
    experiment = data["experiments"][0]
    experiment.update({"budget": 256, "env_wrapper": "time_feature", **experiment_changes})
    experiment["hyperparameters"] = {**experiment["hyperparameters"], "n_envs": 2, "n_steps": 64, "batch_size": 64,
                                     "n_epochs": 1}
    return data


def test_a_misspelt_wrapper_is_one_line_with_the_closest_name():
    with pytest.raises(ConfigError, match=r"^<dict>: experiments\[0\]\.env_wrapper must be one of 'time_feature', "
                                          r"got 'timefeature'; did you mean 'time_feature'\?$"):
        config.parse_config(wrapped_config(env_wrapper="timefeature"), check_envs=False)


def test_gail_experiments_refuse_a_wrapper():
    with pytest.raises(ValueError, match="expert demonstrations are recorded on the unwrapped env"):
        translate.check_env_wrapper("time_feature", "gail")


def test_the_wrapper_changes_the_run_key_and_no_wrapper_keeps_the_old_hash():
    wrapped = config.parse_config(wrapped_config(), check_envs=False).runs[0]
    data = wrapped_config()
    del data["experiments"][0]["env_wrapper"]
    plain = config.parse_config(data, check_envs=False).runs[0]
    assert wrapped.env_wrapper == "time_feature" and plain.env_wrapper is None
    assert wrapped.hyperparameter_hash != plain.hyperparameter_hash
    # The hash of a run without a wrapper is the one computed before the key existed.
    legacy_payload = {"hyperparameters": plain.hyperparameters, "evaluation": dataclasses.asdict(plain.evaluation),
                      "env_kwargs": plain.env_kwargs, "demonstrations": plain.demonstrations}
    assert plain.hyperparameter_hash == hashlib.sha256(config.canonical_json(legacy_payload).encode()).hexdigest()[:16]
    assert config.RunSpec.from_json(wrapped.to_json()) == wrapped


def test_ortho_init_is_our_network_init():
    assert translate.to_ours("ppo", {"ortho_init": True, "gamma": 0.9}) == {"network_init": "orthogonal", "gamma": 0.9}
    assert translate.to_ours("a2c", {"ortho_init": False}) == {"network_init": "torch"}
    with pytest.raises(ValueError, match="ortho_init must be true or false, got 'no'"):
        translate.to_ours("ppo", {"ortho_init": "no"})
    kwargs, _ = translate.to_sb3("ppo", {"ortho_init": False})
    assert kwargs["policy_kwargs"] == {"ortho_init": False}


@pytest.mark.bench
def test_a_wrapped_sweep_gives_both_libraries_the_time_feature(tmp_path):
    """CartPole's 4 numbers become 5 for both libraries' training; the evaluations (on wrapped envs
    too, or the policies would refuse the observations) finish, and the record names the wrapper."""
    pytest.importorskip("stable_baselines3")
    sweep = config.parse_config(wrapped_config())
    outcome = harness.run_sweep(sweep, tmp_path, workers=2, log=lambda line: None)
    assert not outcome.failed, outcome.failed
    records = {record["key"]["library"]: record for record in harness.load_records(tmp_path / harness.RESULTS_FILE)}
    assert sorted(records) == ["ours", "sb3"]
    for library, record in records.items():
        assert record["spec"]["env_wrapper"] == "time_feature", library
        assert record["library_arguments"]["observation_shape"] == [5], library
        assert len(record["final"]["returns"]) == 2 and record["curve"]["steps"] == [0, 256], library
