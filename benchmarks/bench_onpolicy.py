"""Side-by-side benchmark: our TF2 A2C/PPO against Stable-Baselines3 2.2.1 (torch), same settings.

Every (library, algorithm, env, seed) run is its own subprocess, single-threaded on both sides
(``torch.set_num_threads(1)``; TF intra/inter-op threads 1 before any TF op; BLAS threads 1),
and the runs of the two libraries alternate so machine load drifts hit both alike. Each run
trains for the budget, times ``learn`` (wall clock and process CPU time) and then evaluates 10
deterministic episodes. Results go to ``benchmarks/results/onpolicy[_<tag>].{json,md}``.

Settings (identical hyperparameters for both libraries; names are ours, mapped to SB3's):

* ppo/CartPole-v1: RL-Zoo's (n_envs 8, 1e5 steps, n_steps 32, batch 256, gae 0.8, gamma 0.98,
  n_epochs 20, ent 0, lr lin 1e-3, clip lin 0.2).
* a2c/CartPole-v1: RL-Zoo's (n_envs 8, 5e5 steps, ent 0, otherwise SB3 defaults).
* ppo/Pendulum-v1: RL-Zoo's without gSDE, which we do not have: n_envs 4, 1e5 steps, n_steps 1024,
  gae 0.95, gamma 0.9, n_epochs 10, lr 1e-3, clip 0.2, ent 0, batch 64 and log_std_init 0
  (SB3 defaults).
* a2c/Pendulum-v1: a speed setting with VecNormalize-style obs + reward normalization
  (RL-Zoo's A2C Pendulum without gSDE, shorter): n_envs 8, n_steps 8, gae 0.9, lr lin 7e-4, 2e5 steps.

Examples::

    python benchmarks/bench_onpolicy.py                        # all four settings, 1 seed
    python benchmarks/bench_onpolicy.py --seeds 5 --tag learning   # the 5-seed learning check
    python benchmarks/bench_onpolicy.py --algos ppo --envs CartPole-v1 --scale 0.05   # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CARTPOLE_SOLVED = 475.0

SETTINGS: dict[tuple[str, str], dict[str, Any]] = {
    ("ppo", "CartPole-v1"): dict(timesteps=100_000, config=dict(
        n_envs=8, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate=1e-3, learning_rate_schedule="linear", clip_range=0.2, clip_range_schedule="linear")),
    ("a2c", "CartPole-v1"): dict(timesteps=500_000, config=dict(n_envs=8, ent_coef=0.0)),
    ("ppo", "Pendulum-v1"): dict(timesteps=100_000, config=dict(
        n_envs=4, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0, learning_rate=1e-3,
        clip_range=0.2, batch_size=64, log_std_init=0.0)),
    ("a2c", "Pendulum-v1"): dict(timesteps=200_000, config=dict(
        n_envs=8, n_steps=8, gae_lambda=0.9, gamma=0.99, ent_coef=0.0, max_grad_norm=0.5, learning_rate=7e-4,
        learning_rate_schedule="linear", normalize_observation=True, normalize_reward=True)),
}

OURS_ONLY = {"learning_rate_schedule", "clip_range_schedule", "policy_hidden_sizes", "activation", "log_std_init",
             "normalize_observation", "normalize_reward", "clip_observation", "clip_reward", "n_envs", "jit_compile"}


def sb3_arguments(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our config -> (SB3 algorithm kwargs, VecNormalize kwargs or {})."""
    kwargs = {k: v for k, v in config.items() if k not in OURS_ONLY}
    for name, schedule in (("learning_rate", "learning_rate_schedule"), ("clip_range", "clip_range_schedule")):
        if config.get(schedule) == "linear":
            start = config[name]
            kwargs[name] = lambda progress, start=start: progress * start  # RL-Zoo's lin_<value>
    hidden = list(config.get("policy_hidden_sizes", (64, 64)))
    import torch.nn as nn

    activation = {"tanh": nn.Tanh, "relu": nn.ReLU}[config.get("activation", "tanh")]
    kwargs["policy_kwargs"] = dict(net_arch=dict(pi=hidden, vf=hidden), activation_fn=activation,
                                   log_std_init=config.get("log_std_init", 0.0))
    normalize = {}
    if config.get("normalize_observation") or config.get("normalize_reward"):
        normalize = dict(norm_obs=config.get("normalize_observation", False),
                         norm_reward=config.get("normalize_reward", False),
                         clip_obs=config.get("clip_observation", 10.0), clip_reward=config.get("clip_reward", 10.0),
                         gamma=config.get("gamma", 0.99))
    return kwargs, normalize


# ----------------------------------------------------------------------------- one run (subprocess)
def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    library, algo, env_id, seed = spec["library"], spec["algo"], spec["env"], spec["seed"]
    config, timesteps, eval_episodes = spec["config"], spec["timesteps"], spec["eval_episodes"]
    if library == "ours":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from agents_zoo.agents.a2c import A2C
        from agents_zoo.agents.ppo import PPO

        agent = {"ppo": PPO, "a2c": A2C}[algo](env_id, config, seed=seed)
        wall, cpu = time.perf_counter(), time.process_time()
        agent.learn(timesteps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        result = agent.evaluate(eval_episodes, deterministic=True, seed=10_000 + seed)
        mean_return, std_return = result.mean, result.std
    else:
        import torch
        from stable_baselines3 import A2C as SB3A2C, PPO as SB3PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.evaluation import evaluate_policy
        from stable_baselines3.common.vec_env import VecNormalize

        torch.set_num_threads(1)
        kwargs, normalize = sb3_arguments(config)
        env = make_vec_env(env_id, n_envs=config.get("n_envs", 1), seed=seed)
        eval_env = make_vec_env(env_id, n_envs=1, seed=10_000 + seed)
        if normalize:
            env = VecNormalize(env, **normalize)
            eval_env = VecNormalize(eval_env, training=False, norm_reward=False, clip_obs=normalize["clip_obs"])
        model = {"ppo": SB3PPO, "a2c": SB3A2C}[algo]("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
        wall, cpu = time.perf_counter(), time.process_time()
        model.learn(timesteps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if normalize:
            eval_env.obs_rms = env.obs_rms
        mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True)
    return dict(library=library, algo=algo, env=env_id, seed=seed, timesteps=timesteps, wall_s=wall, cpu_s=cpu,
                steps_per_s=timesteps / wall, cpu_steps_per_s=timesteps / cpu,
                eval_return=float(mean_return), eval_return_std=float(std_return))


def run_in_subprocess(spec: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    completed = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                               capture_output=True, text=True)
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"run {spec} failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}")


# ----------------------------------------------------------------------------- summary
def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a 95% t-interval (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    t95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}.get(n, 1.96)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t95 * std / math.sqrt(n)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for algo, env_id in dict.fromkeys((r["algo"], r["env"]) for r in runs):
        group = {lib: sorted((r for r in runs if (r["algo"], r["env"], r["library"]) == (algo, env_id, lib)),
                             key=lambda r: r["seed"]) for lib in ("ours", "sb3")}
        row: dict[str, Any] = dict(algo=algo, env=env_id, seeds=len(group["ours"]) or len(group["sb3"]))
        for lib, lib_runs in group.items():
            if not lib_runs:
                continue
            row[f"{lib}_steps_per_s"] = sum(r["steps_per_s"] for r in lib_runs) / len(lib_runs)
            row[f"{lib}_cpu_steps_per_s"] = sum(r["cpu_steps_per_s"] for r in lib_runs) / len(lib_runs)
            row[f"{lib}_return"], row[f"{lib}_return_ci95"] = mean_ci([r["eval_return"] for r in lib_runs])
            row[f"{lib}_returns"] = [round(r["eval_return"], 1) for r in lib_runs]
            if env_id.startswith("CartPole"):
                row[f"{lib}_solved"] = sum(r["eval_return"] >= CARTPOLE_SOLVED for r in lib_runs)
        if group["ours"] and group["sb3"]:
            row["speedup_wall"] = row["ours_steps_per_s"] / row["sb3_steps_per_s"]
            row["speedup_cpu"] = row["ours_cpu_steps_per_s"] / row["sb3_cpu_steps_per_s"]
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], header: str) -> str:
    lines = [header, "",
             "| algo | env | seeds | ours steps/s (wall / cpu) | SB3 steps/s (wall / cpu) | speedup wall | speedup cpu "
             "| ours return | SB3 return | solved (ours / SB3) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        def cell(lib: str) -> str:
            if f"{lib}_steps_per_s" not in row:
                return "-"
            return f"{row[f'{lib}_steps_per_s']:,.0f} / {row[f'{lib}_cpu_steps_per_s']:,.0f}"

        def ret(lib: str) -> str:
            if f"{lib}_return" not in row:
                return "-"
            return f"{row[f'{lib}_return']:.1f} ± {row[f'{lib}_return_ci95']:.1f}"

        solved = (f"{row.get('ours_solved', '-')} / {row.get('sb3_solved', '-')}" if row["env"].startswith("CartPole")
                  else "n/a")
        lines.append(f"| {row['algo']} | {row['env']} | {row['seeds']} | {cell('ours')} | {cell('sb3')} | "
                     f"{row.get('speedup_wall', float('nan')):.2f}x | {row.get('speedup_cpu', float('nan')):.2f}x | "
                     f"{ret('ours')} | {ret('sb3')} | {solved} |")
    lines += ["", "Returns: mean of 10 deterministic evaluation episodes per seed, then mean ± 95% t-interval "
              "over seeds. Speedup = ours / SB3 steps/s (mean over seeds) measured in the same run, both "
              "single-threaded; cpu = process CPU time, robust to other load on a shared machine."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=["ppo", "a2c"], choices=["ppo", "a2c"])
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Pendulum-v1"],
                        choices=["CartPole-v1", "Pendulum-v1"])
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds (0, 1, ...) per setting; 5 for learning checks")
    parser.add_argument("--libraries", nargs="+", default=["ours", "sb3"], choices=["ours", "sb3"])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every step budget by this (e.g. 0.02 for a smoke run)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="deterministic evaluation episodes per run")
    parser.add_argument("--tag", default="", help="suffix of the result files: onpolicy_<tag>.json/.md")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(run_one(json.loads(args.worker))), flush=True)
        return 0
    if args.seeds < 1 or args.scale <= 0 or args.eval_episodes < 1:
        parser.error(f"--seeds, --scale and --eval-episodes must be positive, got {args.seeds}, {args.scale}, "
                     f"{args.eval_episodes}")

    from agents_zoo.core.serialization import atomic_write_text

    runs = []
    for seed in range(args.seeds):
        for algo in args.algos:
            for env_id in args.envs:
                setting = SETTINGS[(algo, env_id)]
                timesteps = max(int(setting["timesteps"] * args.scale), 1)
                # Alternate which library goes first, so slow drifts in machine load cancel out.
                libraries = args.libraries if seed % 2 == 0 else list(reversed(args.libraries))
                for library in libraries:
                    spec = dict(library=library, algo=algo, env=env_id, seed=seed, config=setting["config"],
                                timesteps=timesteps, eval_episodes=args.eval_episodes)
                    run = run_in_subprocess(spec)
                    runs.append(run)
                    print(f"{library:>4} {algo} {env_id:<12} seed {seed}: {run['steps_per_s']:8,.0f} steps/s wall, "
                          f"{run['cpu_steps_per_s']:8,.0f} cpu, return {run['eval_return']:8.1f}", flush=True)
    rows = summarize(runs)
    stem = "onpolicy" + (f"_{args.tag}" if args.tag else "")
    header = (f"# On-policy benchmark: agents-zoo vs Stable-Baselines3 ({time.strftime('%Y-%m-%d %H:%M')}, "
              f"{os.cpu_count()} CPUs, scale {args.scale})")
    text = markdown(rows, header)
    print("\n" + text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output_dir / f"{stem}.json", json.dumps(
        dict(settings={f"{a}/{e}": SETTINGS[(a, e)] for a in args.algos for e in args.envs}, scale=args.scale,
             summary=rows, runs=runs), indent=2))
    atomic_write_text(args.output_dir / f"{stem}.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
