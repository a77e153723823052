"""Proximal Policy Optimization (Schulman et al. 2017), clipped-surrogate variant, in TF2.

    agent = PPO("CartPole-v1", n_envs=8, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98,
                gae_lambda=0.8, learning_rate=1e-3, learning_rate_schedule="linear",
                clip_range_schedule="linear", seed=0)
    agent.learn(100_000); agent.evaluate(10)

Hyperparameters are SB3's (2.2.1 through 2.9.2) by name and default; see ``onpolicy.py`` for the mapping
table and for ``reward_fn``, the hook that lets GAIL train PPO on a discriminator reward:
``PPO(env, reward_fn=lambda obs, acts, next_obs, dones: my_rewards)``.

An update is ``n_epochs`` passes over the rollout in shuffled minibatches, one gradient step per
minibatch on ``ppo_loss`` (``PPO._update``, ``PPO._minibatch_step``). It runs as ONE compiled
graph call per rollout (a call per minibatch would cost more than CartPole's minibatch steps
themselves); the permutations come from the agent's NumPy generator so runs are seeded.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from agents_zoo.agents.onpolicy import SCHEDULES, OnPolicyAgent, OnPolicyConfig, scheduled, unbiased_standardize
from agents_zoo.core.config import check_choice, check_int, check_optional, check_positive, field
from agents_zoo.core.optimizers import clipped_step
from agents_zoo.core.policies import ActorCritic


@dataclasses.dataclass
class PPOConfig(OnPolicyConfig):
    """PPO settings; defaults are SB3's."""

    learning_rate: float = field(3e-4, doc="Adam step size (SB3 learning_rate)")
    n_steps: int = field(2048, doc="steps per env in each rollout")
    gae_lambda: float = field(0.95, doc="GAE lambda in [0, 1]")
    batch_size: int = field(64, doc="minibatch size; at most n_steps * n_envs")
    n_epochs: int = field(10, doc="passes over each rollout")
    clip_range: float = field(0.2, doc="PPO ratio clip epsilon (eq. 7 of Schulman et al. 2017)")
    clip_range_schedule: str = field("constant", doc="constant, or linear: clip_range * progress_remaining (RL-Zoo lin_<clip>)")
    clip_range_vf: float | None = field(None, doc="clip value predictions to old value +- this; None: no value clipping")
    target_kl: float | None = field(None, doc="stop the epochs once a minibatch's approx KL exceeds 1.5 * target_kl")
    normalize_advantage: bool = field(True, doc="standardize advantages per minibatch")

    def validate(self) -> None:
        super().validate()
        check_int(self, "batch_size", minimum=2 if self.normalize_advantage else 1)
        check_int(self, "n_epochs", minimum=1)
        if self.batch_size > self.rollout_size:
            raise ValueError(f"batch_size must be <= n_steps * n_envs = {self.n_steps} * {self.n_envs} = "
                             f"{self.rollout_size}, got {self.batch_size}")
        check_positive(self, "clip_range")
        check_choice(self, "clip_range_schedule", SCHEDULES)
        check_optional(self, "clip_range_vf", check_positive)
        check_optional(self, "target_kl", check_positive)


class PPOLoss(NamedTuple):
    total: tf.Tensor
    policy_loss: tf.Tensor
    value_loss: tf.Tensor
    entropy_loss: tf.Tensor
    approx_kl: tf.Tensor
    clip_fraction: tf.Tensor


def ppo_loss(policy: ActorCritic, observations: tf.Tensor, actions: tf.Tensor, old_values: tf.Tensor,
             old_log_probs: tf.Tensor, advantages: tf.Tensor, returns: tf.Tensor, clip_range: tf.Tensor,
             clip_range_vf: tf.Tensor | None, ent_coef: float, vf_coef: float, normalize_advantage: bool) -> PPOLoss:
    """The PPO objective on one minibatch, term for term as SB3 (2.2.1 through 2.9.2) computes it."""
    policy_output, values = policy(observations)
    log_probs, entropy = policy.log_prob_and_entropy(policy_output, actions)
    if normalize_advantage:
        advantages = unbiased_standardize(advantages)
    # Clipped surrogate, L^CLIP of eq. (7): min(r A, clip(r, 1 - eps, 1 + eps) A).
    log_ratio = log_probs - old_log_probs
    ratio = tf.exp(log_ratio)
    surrogate = tf.minimum(ratio * advantages, tf.clip_by_value(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages)
    policy_loss = -tf.reduce_mean(surrogate)
    if clip_range_vf is not None:
        # Value clipping as in OpenAI baselines / SB3: keep predictions near the rollout's values.
        values = old_values + tf.clip_by_value(values - old_values, -clip_range_vf, clip_range_vf)
    value_loss = tf.reduce_mean(tf.square(returns - values))
    entropy_loss = -tf.reduce_mean(entropy)
    # ent_coef 0: no entropy term in the total (its gradient would be exactly 0); still reported.
    total = policy_loss + vf_coef * value_loss if ent_coef == 0 else policy_loss + ent_coef * entropy_loss + vf_coef * value_loss
    # Diagnostics: the low-variance KL estimator E[(r - 1) - log r] (Schulman 2020, "Approximating
    # KL divergence", k3) and the fraction of samples whose ratio was clipped.
    approx_kl = tf.reduce_mean((ratio - 1.0) - log_ratio)
    clip_fraction = tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip_range, tf.float32))
    return PPOLoss(total, policy_loss, value_loss, entropy_loss, approx_kl, clip_fraction)


class PPO(OnPolicyAgent):
    name = "ppo"
    config_class = PPOConfig
    config: PPOConfig

    STAT_NAMES = ("policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl", "clip_fraction")

    def _uses_jit(self) -> bool:
        # XLA needs static shapes: a smaller last minibatch (batch_size not dividing the rollout) is not one.
        return self.config.jit_compile and self.config.rollout_size % self.config.batch_size == 0

    def _train(self) -> dict[str, float]:
        cfg = self.config
        learning_rate = self._current_learning_rate()
        clip_range = scheduled(cfg.clip_range, cfg.clip_range_schedule, self.progress_remaining)
        rollout = self.buffer.get()
        permutations = np.stack([self.rng.permutation(cfg.rollout_size) for _ in range(cfg.n_epochs)]).astype(np.int32)
        stat_sums, last_epoch_kl, last_loss, n_minibatches, flat_weights = self._call_update(
            rollout.observations, rollout.actions, rollout.old_values, rollout.old_log_probs, rollout.advantages,
            rollout.returns, permutations, np.float32(learning_rate), np.float32(clip_range),
            np.float32(cfg.clip_range_vf if cfg.clip_range_vf is not None else 0.0))
        self._refresh_numpy_policy(flat_weights)
        means = stat_sums.numpy() / max(int(n_minibatches), 1)
        # SB3's log semantics, so that curves compare with its own: train/n_updates counts epochs
        # (the one target_kl stopped included) and train/approx_kl is the mean over the last epoch's
        # minibatches (``approx_kl_divs`` is reset at each epoch in SB3's PPO.train); the other
        # statistics are means over every minibatch of every epoch.
        epochs = -(-int(n_minibatches) // self.minibatches_per_epoch)
        self._n_updates = getattr(self, "_n_updates", 0) + epochs
        logged = dict(zip(self.STAT_NAMES, means.tolist()))
        logged["approx_kl"] = float(last_epoch_kl)
        logged.update(loss=float(last_loss), learning_rate=learning_rate, clip_range=clip_range,
                      n_updates=self._n_updates)
        return logged

    def _update(self, observations, actions, old_values, old_log_probs, advantages, returns, permutations,
                learning_rate, clip_range, clip_range_vf):
        """``n_epochs`` passes over the rollout in shuffled minibatches, one ``_minibatch_step`` each.

        SB3's and CleanRL's two loops (epochs, then minibatches) run as ONE graph loop over their
        steps, step ``s`` being minibatch ``s % minibatches_per_epoch`` of epoch
        ``s // minibatches_per_epoch``: nested graph loops cost ~15% more per CartPole update, and
        autograph's Python-loop conversion ~0.2 s of tracing per process. Returns the sums of the
        minibatches' ``STAT_NAMES``, the mean approx KL of the last epoch's minibatches, the last
        loss, the number of minibatch steps taken (target_kl may stop early) and the policy's
        acting weights.
        """
        cfg = self.config
        rollout = (observations, actions, old_values, old_log_probs, advantages, returns)
        minibatches_per_epoch = self.minibatches_per_epoch
        compiled = self._uses_jit()  # every minibatch full (see _uses_jit)

        def minibatch(step, keep_training, stat_sums, epoch_kl_sum, last_loss):
            epoch, position = step // minibatches_per_epoch, step % minibatches_per_epoch
            start = position * cfg.batch_size
            if compiled:
                # A slice of static size: XLA turned the strided slice below (bounds known only at
                # run time) into work over the whole rollout at every minibatch: Hopper at RL-Zoo's
                # settings (8,192 steps, 1,280 minibatches) took ~70 s per compiled update, ~1 s plain.
                indices = tf.slice(permutations, [epoch, start], [1, cfg.batch_size])[0]
            else:
                # Plain graphs keep the strided slice (SB3's smaller last minibatch fits it): with the
                # static slice, the same indices gave weights ~3e-8 apart after 4 CartPole updates,
                # enough to change where a seed's training goes.
                indices = permutations[epoch, start:start + cfg.batch_size]
            loss, keep_training = self._minibatch_step(*[tf.gather(x, indices) for x in rollout], learning_rate,
                                                       clip_range, clip_range_vf)
            stats = tf.stack([loss.policy_loss, loss.value_loss, loss.entropy_loss, loss.approx_kl, loss.clip_fraction])
            epoch_kl_sum = tf.where(position == 0, 0.0, epoch_kl_sum) + loss.approx_kl
            return step + 1, keep_training, stat_sums + stats, epoch_kl_sum, loss.total

        n_minibatches, _, stat_sums, epoch_kl_sum, last_loss = tf.while_loop(
            lambda step, keep_training, *_: tf.logical_and(keep_training, step < cfg.n_epochs * minibatches_per_epoch),
            minibatch, (tf.constant(0), tf.constant(True), tf.zeros([len(self.STAT_NAMES)]), tf.constant(0.0),
                        tf.constant(0.0)))
        minibatches_in_last_epoch = (n_minibatches - 1) % minibatches_per_epoch + 1
        last_epoch_kl = epoch_kl_sum / tf.cast(tf.maximum(minibatches_in_last_epoch, 1), tf.float32)
        return stat_sums, last_epoch_kl, last_loss, n_minibatches, self.policy.acting_weights()

    @property
    def minibatches_per_epoch(self) -> int:
        return -(-self.config.rollout_size // self.config.batch_size)  # SB3 keeps a smaller last minibatch

    def _minibatch_step(self, observations, actions, old_values, old_log_probs, advantages, returns, learning_rate,
                        clip_range, clip_range_vf) -> tuple[PPOLoss, tf.Tensor]:
        """One gradient step on ``ppo_loss``, clipped by the global gradient norm; returns the loss
        and whether to go on.

        With ``target_kl``, SB3 checks the minibatch's approx KL before its step: the minibatch
        that crosses 1.5 * target_kl is not applied, and the update stops there.
        """
        cfg = self.config
        with tf.GradientTape() as tape:
            loss = ppo_loss(self.policy, observations, actions, old_values, old_log_probs, advantages, returns,
                            clip_range, clip_range_vf if cfg.clip_range_vf is not None else None,
                            cfg.ent_coef, cfg.vf_coef, cfg.normalize_advantage)
        variables = self.policy.trainable_variables

        def step() -> tf.Tensor:
            clipped_step(self.optimizer, tape, loss.total, variables, learning_rate, cfg.max_grad_norm)
            return tf.constant(True)

        if cfg.target_kl is None:
            return loss, step()
        return loss, tf.cond(loss.approx_kl <= 1.5 * cfg.target_kl, step, lambda: tf.constant(False))
