"""Soak benchmark: fill a 1M-transition Atari replay buffer, train DQN from it, report peak memory.

The buffer is our DQN's own (``FrameReplayBuffer``: each 84x84 frame stored once). Filling it by
playing Pong would take ~7 minutes per 100k steps on these machines, so the frames come from a
pool of recorded Pong frames cycled through real frame stacks (the buffer checks the stack
property on every add, so the data is laid out exactly as during training), with episodes of
varied length ending now and then. Then ``--phases`` training phases of ``--gradient-steps``
Nature-CNN updates each sample from the full buffer.

The memory bound checked: peak RSS <= buffer bytes + ``--overhead-gib`` (TF, the networks and
one training batch). SB3 would need ~56 KB per transition (~52 GiB for 1M) without
``optimize_memory_usage`` and ~28 KB with it.

    python benchmarks/bench_replay_soak.py                       # 1M transitions (needs ~8 GiB)
    python benchmarks/bench_replay_soak.py --transitions 100000  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
GIB = 2**30


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def record_frame_pool(n_frames: int, seed: int) -> np.ndarray:
    """Real 84x84 gray Pong frames from our DQN preset, one per step of a random policy."""
    import gymnasium as gym

    import wrappers  # noqa: F401 - registers agents_zoo/* ids

    env = gym.make("agents_zoo/Pong-dqn-v0")
    obs, _ = env.reset(seed=seed)
    frames = [obs[-1]]
    rng = np.random.default_rng(seed)
    while len(frames) < n_frames:
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        frames.append(obs[-1])
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return np.stack(frames)


def fill(replay, pool: np.ndarray, transitions: int, n_envs: int, seed: int) -> float:
    """Add ``transitions`` steps (over all envs) of well-formed frame stacks; returns seconds."""
    rng = np.random.default_rng(seed)
    stack = replay.stack
    pointer = rng.integers(0, len(pool), size=n_envs)
    episode_left = rng.integers(200, 2000, size=n_envs)

    def first_stack(frame_index: np.ndarray) -> np.ndarray:
        return np.repeat(pool[frame_index][:, None], stack, axis=1)  # padded as at reset

    observations = first_stack(pointer)
    start = time.perf_counter()
    for _ in range(transitions // n_envs):
        pointer = (pointer + 1) % len(pool)
        next_observations = np.concatenate([observations[:, 1:], pool[pointer][:, None]], axis=1)
        episode_left -= 1
        dones = episode_left <= 0
        terminations = dones & (rng.random(n_envs) < 0.5)
        replay.add(observations, rng.integers(0, 6, size=n_envs), rng.choice([-1.0, 0.0, 1.0], size=n_envs),
                   next_observations, terminations.astype(np.float32), dones)
        observations = next_observations
        if dones.any():
            pointer[dones] = rng.integers(0, len(pool), size=int(dones.sum()))
            observations[dones] = first_stack(pointer[dones])
            episode_left[dones] = rng.integers(200, 2000, size=int(dones.sum()))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transitions", type=int, default=1_000_000, help="replay capacity and fill (default 1M)")
    parser.add_argument("--n-envs", type=int, default=8, help="envs writing into the buffer (default 8)")
    parser.add_argument("--pool-frames", type=int, default=2000, help="recorded Pong frames to cycle (default 2000)")
    parser.add_argument("--phases", type=int, default=20, help="training phases after the fill (default 20)")
    parser.add_argument("--gradient-steps", type=int, default=8, help="updates per phase, one compiled call (default 8)")
    parser.add_argument("--batch-size", type=int, default=32, help="minibatch size (default 32, the DQN paper's)")
    parser.add_argument("--overhead-gib", type=float, default=3.0, help="allowed RSS beyond the buffer (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS / "replay_soak.json", help="where to write the JSON result")
    args = parser.parse_args(argv)
    if args.transitions < args.batch_size or args.n_envs < 1 or args.phases < 1:
        parser.error(f"need transitions >= batch size ({args.batch_size}), n_envs >= 1 and phases >= 1")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import agents_zoo
    from agents_zoo.core.serialization import atomic_write_text

    pool = record_frame_pool(args.pool_frames, args.seed)
    rss_before_agent = peak_rss_bytes()
    agent = agents_zoo.make("dqn", "agents_zoo/Pong-dqn-v0", seed=args.seed, n_envs=args.n_envs,
                            buffer_size=args.transitions, batch_size=args.batch_size, learning_starts=0)
    replay = agent.replay
    fill_seconds = fill(replay, pool, args.transitions, args.n_envs, args.seed)
    rss_after_fill = peak_rss_bytes()
    train_start = time.perf_counter()
    for _ in range(args.phases):
        agent._train(args.gradient_steps)
    train_seconds = time.perf_counter() - train_start
    peak = peak_rss_bytes()
    bound = replay.nbytes + args.overhead_gib * GIB
    result = {
        "transitions": args.transitions, "stored_transitions": len(replay), "n_envs": args.n_envs,
        "buffer_bytes": replay.nbytes, "bytes_per_transition": replay.bytes_per_transition,
        "sb3_bytes_per_transition": {"default": 2 * 4 * 84 * 84 + 13, "optimize_memory_usage": 4 * 84 * 84 + 13},
        "fill_seconds": fill_seconds, "fill_transitions_per_s": args.transitions / fill_seconds,
        "train_phases": args.phases, "gradient_steps_per_phase": args.gradient_steps, "batch_size": args.batch_size,
        "train_updates_per_s": args.phases * args.gradient_steps / train_seconds,
        "rss_before_agent_gib": rss_before_agent / GIB, "rss_after_fill_gib": rss_after_fill / GIB,
        "peak_rss_gib": peak / GIB, "bound_gib": bound / GIB, "within_bound": peak <= bound,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "tensorflow": tf.__version__, "numpy": np.__version__},
    }
    atomic_write_text(args.output, json.dumps(result, indent=2) + "\n")
    print(f"replay soak: {len(replay):,} transitions stored in {replay.nbytes / GIB:.2f} GiB "
          f"({replay.bytes_per_transition:,.0f} B/transition; SB3 {result['sb3_bytes_per_transition']['default']:,} "
          f"or {result['sb3_bytes_per_transition']['optimize_memory_usage']:,} with optimize_memory_usage)")
    print(f"fill {fill_seconds:.1f} s ({result['fill_transitions_per_s']:,.0f} transitions/s); "
          f"training {result['train_updates_per_s']:.1f} updates/s from the full buffer")
    print(f"peak RSS {peak / GIB:.2f} GiB, bound {bound / GIB:.2f} GiB: {'within' if result['within_bound'] else 'OVER'}")
    print(f"wrote {args.output}")
    return 0 if result["within_bound"] else 1


if __name__ == "__main__":
    sys.exit(main())
