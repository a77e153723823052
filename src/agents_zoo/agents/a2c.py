"""Advantage Actor-Critic (synchronous A3C, Mnih et al. 2016), in TF2.

    agent = A2C("CartPole-v1", n_envs=8, seed=0)   # SB3 defaults: n_steps 5, RMSprop 7e-4
    agent.learn(500_000); agent.evaluate(10)

One gradient step per rollout of ``n_steps * n_envs`` transitions on
``-mean(A * log pi) - ent_coef * mean(H) + vf_coef * mean((R - V)^2)``, where R and A come from
GAE (``gae_lambda=1``, SB3's default, gives the classic bootstrapped n-step returns). RMSprop
with PyTorch's formula (alpha 0.99, eps ``rms_prop_eps`` outside the square root) like SB3;
``rms_prop_tf_like=True`` is TF 1's (SB3's ``RMSpropTFLike``, which RL-Zoo's Atari settings use);
``use_rms_prop=False`` switches to Adam (eps 1e-5). Names and defaults are SB3's (the same from 2.2.1 through 2.9.2); see
``onpolicy.py`` for the mapping table and the ``reward_fn`` hook.

Speed on images (``reuse_acting_layers``, on by default): the gradient step starts from the weights
the rollout acted with, so the Nature CNN's layer outputs on every rollout frame were already
computed by the acting calls. They are kept (~43 KB per 84x84 frame in bf16, 86 KB in float32:
3.5 MB in bf16 for RL-Zoo's 16 envs x 5 steps, about what the recomputing update's forward pass
holds for its backward one) and the update runs only the CNN's backward pass on them
(``NatureCNN.features_from_layers``): one bf16 update on 80 Atari frames took 23 ms instead of
32 (one Zen 4 core). The losses and gradients are those of the recomputing update up to the
rounding of another batch size (acting runs n_envs frames per call), and equal on the same batch
(tests/test_a2c.py). The setting is read when the agent is built.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from agents_zoo.agents.onpolicy import OnPolicyAgent, OnPolicyConfig, unbiased_standardize
from agents_zoo.core.config import check_bool, check_positive, field
from agents_zoo.core.optimizers import TorchStyleOptimizer, clipped_step
from agents_zoo.core.policies import ActorCritic


@dataclasses.dataclass
class A2CConfig(OnPolicyConfig):
    """A2C settings; defaults are SB3's."""

    learning_rate: float = field(7e-4, doc="optimizer step size (SB3 learning_rate)")
    n_steps: int = field(5, doc="steps per env in each rollout (the n of n-step returns)")
    gae_lambda: float = field(1.0, doc="GAE lambda; 1 gives classic n-step returns")
    normalize_advantage: bool = field(False, doc="standardize advantages over the rollout")
    use_rms_prop: bool = field(True, doc="RMSprop (alpha 0.99) as in SB3/the A3C paper; false: Adam")
    rms_prop_eps: float = field(1e-5, doc="RMSprop epsilon, added to sqrt(v) as in PyTorch")
    rms_prop_tf_like: bool = field(False, doc="TF 1's RMSprop (SB3's RMSpropTFLike, RL-Zoo's Atari A2C): "
                                              "v starts at 1, epsilon inside the square root")
    reuse_acting_layers: bool = field(True, doc="images: the update's backward pass reads the CNN layer outputs the "
                                                "rollout's acting computed on the same weights instead of running "
                                                "the CNN forward again (keeps ~43 KB per frame in bf16)")

    def validate(self) -> None:
        super().validate()
        check_bool(self, "use_rms_prop")
        check_positive(self, "rms_prop_eps")
        check_bool(self, "rms_prop_tf_like")
        check_bool(self, "reuse_acting_layers")
        if self.rms_prop_tf_like and not self.use_rms_prop:
            raise ValueError("rms_prop_tf_like=True needs use_rms_prop=True (it is a form of RMSprop; "
                             "use_rms_prop=False selects Adam)")


class A2CLoss(NamedTuple):
    total: tf.Tensor
    policy_loss: tf.Tensor
    value_loss: tf.Tensor
    entropy_loss: tf.Tensor


def a2c_loss(policy: ActorCritic, observations: tf.Tensor, actions: tf.Tensor, advantages: tf.Tensor,
             returns: tf.Tensor, ent_coef: float, vf_coef: float, normalize_advantage: bool,
             layers_out: Sequence[tf.Tensor] = ()) -> A2CLoss:
    """The A2C objective on the whole rollout, term for term as SB3 (2.2.1 through 2.9.2) computes it;
    ``layers_out``: the CNN layer outputs acting computed on these observations and weights
    (``ActorCritic.call_on_layers``), or empty to run the policy on the observations."""
    policy_output, values = policy.call_on_layers(observations, layers_out) if layers_out else policy(observations)
    log_probs, entropy = policy.log_prob_and_entropy(policy_output, actions)
    if normalize_advantage:
        advantages = unbiased_standardize(advantages)
    # Policy gradient theorem with the advantage as baseline-corrected return (Mnih et al. 2016, Alg. S3).
    policy_loss = -tf.reduce_mean(advantages * log_probs)
    value_loss = tf.reduce_mean(tf.square(returns - values))
    entropy_loss = -tf.reduce_mean(entropy)
    # With ent_coef 0 the entropy term is left out of the total (its gradient would be exactly 0):
    # the same numbers, fewer graph ops; the entropy is still reported.
    total = policy_loss + vf_coef * value_loss if ent_coef == 0 else policy_loss + ent_coef * entropy_loss + vf_coef * value_loss
    return A2CLoss(total, policy_loss, value_loss, entropy_loss)


class A2C(OnPolicyAgent):
    name = "a2c"
    config_class = A2CConfig
    config: A2CConfig

    def _make_optimizer(self) -> TorchStyleOptimizer:
        if self.config.use_rms_prop:
            return TorchStyleOptimizer(self.policy.trainable_variables, "rmsprop", epsilon=self.config.rms_prop_eps,
                                       rms_alpha=0.99, rms_prop_tf_like=self.config.rms_prop_tf_like)
        return TorchStyleOptimizer(self.policy.trainable_variables, "adam", epsilon=1e-5)

    def _reuses_acting_layers(self) -> bool:
        # One gradient step per rollout, taken from the weights the rollout acted with.
        return self.config.reuse_acting_layers

    def _train(self) -> dict[str, float]:
        learning_rate = self._current_learning_rate()
        rollout = self.buffer.get()
        stats, flat_weights = self._call_update(rollout.observations, rollout.actions, rollout.advantages,
                                                 rollout.returns, np.float32(learning_rate),
                                                 *self._take_rollout_layers())
        self._refresh_numpy_policy(flat_weights)
        policy_loss, value_loss, entropy_loss = stats.numpy().tolist()
        return {"policy_loss": policy_loss, "value_loss": value_loss, "entropy_loss": entropy_loss,
                "learning_rate": learning_rate, "n_updates": self._iteration}

    def _update(self, observations, actions, advantages, returns, learning_rate, *layers_out):
        """One gradient step on ``a2c_loss`` over the whole rollout, clipped by the global gradient norm;
        returns the loss terms and the policy's acting weights (one compiled call per rollout).
        ``layers_out``: the rollout's CNN layer outputs (``_take_rollout_layers``), or none."""
        cfg = self.config
        with tf.GradientTape() as tape:
            loss = a2c_loss(self.policy, observations, actions, advantages, returns, cfg.ent_coef, cfg.vf_coef,
                            cfg.normalize_advantage, layers_out)
        clipped_step(self.optimizer, tape, loss.total, self.policy.trainable_variables, learning_rate, cfg.max_grad_norm)
        return tf.stack([loss.policy_loss, loss.value_loss, loss.entropy_loss]), self.policy.acting_weights()
