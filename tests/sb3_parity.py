"""Helpers of the parity tests against SB3: an SB3 actor-critic's parameters (or their
gradients) in our flat policy's piece order, so the same weights can be loaded on both sides."""

from __future__ import annotations

import numpy as np


def sb3_pieces_for_ours(sb3_policy) -> list[np.ndarray]:
    """SB3's separate pi and vf MLPs, heads and gSDE log_std in our flat policy's piece order
    (``ActorCritic._piece_shapes``): first layers side by side, then each later layer's pi and vf."""
    extractor = sb3_policy.mlp_extractor
    pi = [layer for layer in extractor.policy_net if hasattr(layer, "weight")] + [sb3_policy.action_net]
    vf = [layer for layer in extractor.value_net if hasattr(layer, "weight")] + [sb3_policy.value_net]
    # Copies: .numpy() shares the tensor's memory, which sb3_gradient_pieces overwrites and restores.
    weight = lambda layer: layer.weight.detach().numpy().T.copy()  # noqa: E731 (torch keeps (out, in))
    bias = lambda layer: layer.bias.detach().numpy().copy()  # noqa: E731
    pieces = [np.concatenate([weight(pi[0]), weight(vf[0])], axis=1), np.concatenate([bias(pi[0]), bias(vf[0])])]
    for pi_layer, vf_layer in zip(pi[1:], vf[1:]):
        pieces += [weight(pi_layer), bias(pi_layer), weight(vf_layer), bias(vf_layer)]
    return pieces + [sb3_policy.log_std.detach().numpy().copy()]


def sb3_gradient_pieces(sb3_policy) -> list[np.ndarray]:
    """``sb3_pieces_for_ours`` of the gradients SB3's last step left in ``.grad``."""
    saved = {name: parameter.detach().clone() for name, parameter in sb3_policy.named_parameters()}
    try:
        for parameter in sb3_policy.parameters():
            parameter.data.copy_(parameter.grad)
        return sb3_pieces_for_ours(sb3_policy)
    finally:
        for name, parameter in sb3_policy.named_parameters():
            parameter.data.copy_(saved[name])


def load_sb3_weights(agent, sb3_policy) -> None:
    """Give our on-policy ``agent`` the SB3 policy's weights, in training and in acting."""
    pieces = sb3_pieces_for_ours(sb3_policy)
    assert [piece.shape for piece in pieces] == [tuple(shape) for shape in agent.policy.piece_shapes]
    agent.policy.params.assign(np.concatenate([piece.reshape(-1) for piece in pieces]))
    agent._refresh_numpy_policy(agent.policy.acting_weights())
