"""DQN's ``network_init``: torch.nn's default initialization, which SB3's DQN starts from."""

from __future__ import annotations

import numpy as np
import pytest

import agents_zoo


def test_dqn_torch_init_draws_torch_nn_default_bounds():
    agent = agents_zoo.make("dqn", "CartPole-v1", seed=0, network_init="torch", policy_hidden_sizes=(256, 256))
    kernels = [v.numpy() for v in agent.q_net.variables if v.name == "kernel"]
    assert [k.shape for k in kernels] == [(4, 256), (256, 256), (256, 2)]
    for kernel in kernels:
        bound = 1.0 / np.sqrt(kernel.shape[0])
        assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.9 * bound  # uniform, filling the range
    for target, online in zip(agent.q_net_target.variables, agent.q_net.variables):
        np.testing.assert_array_equal(target.numpy(), online.numpy())
    again = agents_zoo.make("dqn", "CartPole-v1", seed=0, network_init="torch", policy_hidden_sizes=(256, 256))
    np.testing.assert_array_equal(again.q_net.variables[0].numpy(), kernels[0])
    with pytest.raises(ValueError, match="network_init must be one of"):
        agents_zoo.make("dqn", "CartPole-v1", network_init="xavier")
