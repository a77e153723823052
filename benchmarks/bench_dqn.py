"""DQN side by side with SB3 2.2.1: speed, replay memory and CartPole returns in one run.

Every run is a fresh subprocess pinned to one thread (TF intra/inter-op threads set before any
TF op, ``torch.set_num_threads(1)``), runs alternate between libraries so that load on a
shared machine hits both alike, and both wall-clock and process-CPU steps/s are reported (the
CPU figure is the fairer one when other jobs share the cores). SB3's DQN is vanilla (no Double
DQN, no dueling); ours runs both with ``double_q=True`` (our default) and ``double_q=False``.

* CartPole-v1 with the RL-Zoo settings (50k steps, [256, 256], train_freq 256, 128 gradient
  steps, ...) over ``--seeds`` seeds: steps/s, the final deterministic evaluation return of
  each seed, and the IQM (mean of the middle half) over seeds.
* PongNoFrameskip-v4 with the RL-Zoo Atari settings except ``learning_starts`` (shortened so a
  short run trains): SB3 with its ``AtariWrapper`` + ``VecFrameStack(4)``, ours with
  ``agents_zoo/Pong-dqn-v0`` (the same preprocessing); steps/s and replay bytes per transition.

Examples:
    python benchmarks/bench_dqn.py                        # everything (~15-25 min on 2 cores)
    python benchmarks/bench_dqn.py --envs cartpole --seeds 2
    python benchmarks/bench_dqn.py --tiny --out-dir /tmp/bench   # end-to-end smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ALGOS = ("ours-double", "ours-vanilla", "sb3")
ENVS = ("cartpole", "pong")
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# rl-baselines3-zoo hyperparams/dqn.yml
CARTPOLE = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
                target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                exploration_final_eps=0.04)
CARTPOLE_NET = (256, 256)
ATARI = dict(buffer_size=100_000, learning_rate=1e-4, batch_size=32, learning_starts=100_000,
             target_update_interval=1000, train_freq=4, gradient_steps=1, exploration_fraction=0.1,
             exploration_final_eps=0.01)


# ---------------------------------------------------------------------- worker (one run, one process)
def _run_ours(spec: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from agents_zoo.agents.dqn import DQN

    extra = {"policy_hidden_sizes": CARTPOLE_NET} if spec["env"] == "cartpole" else {}
    env_id = "CartPole-v1" if spec["env"] == "cartpole" else "agents_zoo/Pong-dqn-v0"
    agent = DQN(env_id, seed=spec["seed"], double_q=spec["algo"] == "ours-double", **spec["hyper"], **extra)
    wall, cpu = time.perf_counter(), time.process_time()
    agent.learn(spec["steps"])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {"steps": agent.num_timesteps, "wall_s": wall, "cpu_s": cpu,
              "replay_bytes_per_transition": agent.replay.nbytes / agent.replay.capacity
              if hasattr(agent.replay, "nbytes") else _replay_bytes(agent.replay) / agent.replay.capacity}
    if spec["eval_episodes"]:
        result["eval_return"] = agent.evaluate(spec["eval_episodes"], deterministic=True, seed=10_000 + spec["seed"]).mean
    return result


def _replay_bytes(buffer: Any) -> int:
    return sum(array.nbytes for array in vars(buffer).values() if hasattr(array, "nbytes"))


def _run_sb3(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.buffers import ReplayBuffer
    from stable_baselines3.common.evaluation import evaluate_policy

    if spec["env"] == "cartpole":
        env: Any = "CartPole-v1"
        policy, kwargs = "MlpPolicy", {"policy_kwargs": {"net_arch": list(CARTPOLE_NET)}}
    else:
        import ale_py  # noqa: F401  (registers PongNoFrameskip-v4)
        from stable_baselines3.common.env_util import make_atari_env
        from stable_baselines3.common.vec_env import VecFrameStack

        env = VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=1, seed=spec["seed"]), n_stack=4)
        policy, kwargs = "CnnPolicy", {}
    model = DQN(policy, env, seed=spec["seed"], **spec["hyper"], **kwargs)
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(spec["steps"])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    lean = ReplayBuffer(spec["hyper"]["buffer_size"], model.observation_space, model.action_space, device="cpu",
                        optimize_memory_usage=True, handle_timeout_termination=False)
    result = {"steps": model.num_timesteps, "wall_s": wall, "cpu_s": cpu,
              "replay_bytes_per_transition": _replay_bytes(model.replay_buffer) / model.replay_buffer.buffer_size,
              "replay_bytes_per_transition_optimize_memory_usage": _replay_bytes(lean) / lean.buffer_size}
    if spec["eval_episodes"]:
        eval_env = gym.make("CartPole-v1")
        eval_env.reset(seed=10_000 + spec["seed"])
        result["eval_return"] = float(np.mean(evaluate_policy(model, eval_env, spec["eval_episodes"],
                                                              deterministic=True)[0]))
    return result


def worker(spec_json: str) -> None:
    spec = json.loads(spec_json)
    result = _run_sb3(spec) if spec["algo"] == "sb3" else _run_ours(spec)
    print("RESULT " + json.dumps({**spec, **result}))


# ---------------------------------------------------------------------- driver
def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    completed = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                               capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark run {spec} failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def iqm(values: list[float]) -> float:
    """Interquartile mean (Agarwal et al. 2021): the mean of the middle 50% (scipy trim_mean 0.25)."""
    ordered = sorted(values)
    cut = int(0.25 * len(ordered))
    middle = ordered[cut:len(ordered) - cut] or ordered
    return sum(middle) / len(middle)


def summarize(runs: list[dict[str, Any]], algos: list[str], envs: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for env in envs:
        rows = {}
        for algo in algos:
            mine = [r for r in runs if r["env"] == env and r["algo"] == algo]
            if not mine:
                continue
            steps = sum(r["steps"] for r in mine)
            row = {"runs": len(mine), "steps_per_s_wall": steps / sum(r["wall_s"] for r in mine),
                   "steps_per_s_cpu": steps / sum(r["cpu_s"] for r in mine),
                   "replay_bytes_per_transition": mine[0]["replay_bytes_per_transition"]}
            if "replay_bytes_per_transition_optimize_memory_usage" in mine[0]:
                row["replay_bytes_per_transition_optimize_memory_usage"] = \
                    mine[0]["replay_bytes_per_transition_optimize_memory_usage"]
            returns = [r["eval_return"] for r in mine if "eval_return" in r]
            if returns:
                row.update(returns=returns, iqm_return=iqm(returns), solved_seeds=sum(x >= 475 for x in returns))
            rows[algo] = row
        if "sb3" in rows:
            for algo, row in rows.items():
                if algo != "sb3":
                    row["speedup_wall"] = row["steps_per_s_wall"] / rows["sb3"]["steps_per_s_wall"]
                    row["speedup_cpu"] = row["steps_per_s_cpu"] / rows["sb3"]["steps_per_s_cpu"]
        summary[env] = rows
    return summary


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    status = "" if meta.get("complete", True) else " (partial: the benchmark was stopped or is still running)"
    lines = [f"# DQN vs SB3 2.2.1{status}", "",
             f"{meta['date']}, {meta['cpus']} CPU core(s), load average {meta['load_before']:.1f} -> "
             f"{meta['load_after']:.1f}; one thread per run. SB3's DQN is vanilla (no Double DQN, no dueling): "
             "compare it with `ours-vanilla`; `ours-double` is our default.", ""]
    for env, rows in summary.items():
        lines += [f"## {env}: {meta['settings'][env]}", "",
                  "| algo | runs | steps/s (wall) | steps/s (CPU) | x SB3 (wall) | x SB3 (CPU) | replay B/transition "
                  "| eval returns | IQM | seeds >= 475 |", "|---|---|---|---|---|---|---|---|---|---|"]
        for algo, row in rows.items():
            replay = f"{row['replay_bytes_per_transition']:,.0f}"
            if "replay_bytes_per_transition_optimize_memory_usage" in row:
                replay += f" ({row['replay_bytes_per_transition_optimize_memory_usage']:,.0f} optimized)"
            returns = ", ".join(f"{x:.0f}" for x in row.get("returns", [])) or "-"
            lines.append(f"| {algo} | {row['runs']} | {row['steps_per_s_wall']:,.0f} | {row['steps_per_s_cpu']:,.0f} "
                         f"| {row.get('speedup_wall', 1.0):.2f} | {row.get('speedup_cpu', 1.0):.2f} | {replay} "
                         f"| {returns} | {row['iqm_return']:.1f} | {row['solved_seeds']} |" if "returns" in row else
                         f"| {algo} | {row['runs']} | {row['steps_per_s_wall']:,.0f} | {row['steps_per_s_cpu']:,.0f} "
                         f"| {row.get('speedup_wall', 1.0):.2f} | {row.get('speedup_cpu', 1.0):.2f} | {replay} "
                         f"| - | - | - |")
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", choices=ENVS, default=list(ENVS), help="which benchmarks to run")
    parser.add_argument("--algos", nargs="+", choices=ALGOS, default=list(ALGOS),
                        help="ours-double: double_q=True (default); ours-vanilla: double_q=False, SB3's target")
    parser.add_argument("--seeds", type=int, default=5, help="CartPole seeds per algo (returns, IQM)")
    parser.add_argument("--cartpole-steps", type=int, default=50_000, help="env steps per CartPole run (RL-Zoo: 50k)")
    parser.add_argument("--pong-steps", type=int, default=6_000, help="env steps per Pong run")
    parser.add_argument("--pong-learning-starts", type=int, default=1_000,
                        help="learning_starts for Pong (RL-Zoo: 100k; shortened so a short run trains)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="deterministic CartPole evaluation episodes")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where dqn_<env>.{json,md} go")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke run: 1 seed, 1,500 CartPole and 300 Pong steps (numbers meaningless)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.seeds, args.cartpole_steps, args.pong_steps, args.pong_learning_starts = 1, 1_500, 300, 100
        args.eval_episodes = 2
    for name in ("seeds", "cartpole_steps", "pong_steps", "eval_episodes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker:
        worker(args.worker)
        return {}
    cartpole = dict(CARTPOLE, learning_starts=min(CARTPOLE["learning_starts"], args.cartpole_steps // 2))
    pong = dict(ATARI, learning_starts=args.pong_learning_starts)
    specs = []
    if "cartpole" in args.envs:
        specs += [{"env": "cartpole", "algo": algo, "seed": seed, "steps": args.cartpole_steps, "hyper": cartpole,
                   "eval_episodes": args.eval_episodes} for seed in range(args.seeds) for algo in args.algos]
    if "pong" in args.envs:
        specs += [{"env": "pong", "algo": algo, "seed": 0, "steps": args.pong_steps, "hyper": pong,
                   "eval_episodes": 0} for algo in args.algos]
    load_before = os.getloadavg()[0]
    settings = {"cartpole": f"CartPole-v1, {args.cartpole_steps} steps, RL-Zoo settings {cartpole}, "
                            f"net {list(CARTPOLE_NET)}",
                "pong": f"PongNoFrameskip-v4, {args.pong_steps} steps, RL-Zoo Atari settings {pong}"}
    runs: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for i, spec in enumerate(specs, 1):
        result = run_one(spec)
        runs.append(result)
        extra = f", eval {result['eval_return']:.1f}" if "eval_return" in result else ""
        print(f"[{i}/{len(specs)}] {spec['env']} {spec['algo']} seed {spec['seed']}: "
              f"{result['steps'] / result['wall_s']:,.0f} steps/s wall, {result['steps'] / result['cpu_s']:,.0f} CPU"
              f"{extra}", flush=True)
        # Rewrite the results after every run: a long benchmark stopped early still leaves its numbers.
        summary = write_results(args.out_dir, runs, args.algos, load_before, settings, done=i == len(specs))
    print(markdown(summary, _meta(load_before, settings, True)))
    return summary


def _meta(load_before: float, settings: dict[str, str], done: bool) -> dict[str, Any]:
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "load_before": load_before,
            "load_after": os.getloadavg()[0], "python": sys.version.split()[0], "complete": done,
            "settings": settings}


def write_results(out_dir: Path, runs: list[dict[str, Any]], algos: list[str], load_before: float,
                  settings: dict[str, str], done: bool) -> dict[str, Any]:
    from agents_zoo.core.serialization import atomic_write_text

    meta = _meta(load_before, settings, done)
    summary = summarize(runs, list(algos), [e for e in ENVS if any(r["env"] == e for r in runs)])
    out_dir.mkdir(parents=True, exist_ok=True)
    # One file pair per env (dqn_cartpole.*, dqn_pong.*), so benchmarks run separately do not overwrite each other.
    for env in summary:
        env_meta = {**meta, "settings": {env: meta["settings"][env]}}
        atomic_write_text(out_dir / f"dqn_{env}.json", json.dumps(
            {"meta": env_meta, "summary": {env: summary[env]}, "runs": [r for r in runs if r["env"] == env]},
            indent=2) + "\n")
        atomic_write_text(out_dir / f"dqn_{env}.md", markdown({env: summary[env]}, env_meta) + "\n")
    return summary


if __name__ == "__main__":
    main()
