"""CPU time of one Nature-CNN train step on 256 frames, per kernel library and dtype, in one run.

What an Atari learner spends its time on (a PPO minibatch is 256 frames), one thread, measured
for each way this machine can run it:

- TF float32 on oneDNN's kernels (``TF_ENABLE_ONEDNN_OPTS=1``: what ``import agents_zoo`` sets on x86)
- TF float32 on Eigen's kernels (``TF_ENABLE_ONEDNN_OPTS=0``: TF's own default on x86 CPUs without
  AVX512_VNNI, AVX512_BF16 or AMX)
- TF bf16 (``compute_dtype="bfloat16"``, Keras' ``mixed_bfloat16``) on oneDNN's kernels: native on
  CPUs with AVX512_BF16 or AMX-BF16, emulated elsewhere
- torch float32 (skipped if SB3 is missing): SB3's ``NatureCNN``

The step is ours: the NatureCNN forward on uint8 frames (``NatureCNN.encode``), a linear head, a
squared loss, the gradients and an Adam update. Each setting runs in a fresh process (TF reads
``TF_ENABLE_ONEDNN_OPTS`` once, when it loads), the processes interleaved across repeats so that
a drift of the machine's speed hits every setting alike; the table gives the median of the
repeats' medians. Results go atomically to ``benchmarks/results/cnn_step/<cpu>.{json,md}``, one
pair per CPU (named by its model, family and model numbers).

Example:
    python benchmarks/bench_cnn_step.py --steps 10 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results" / "cnn_step"
FRAMES = 256
SETTINGS = {
    "tf-float32-onednn": ("TF float32, oneDNN kernels", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
    "tf-float32-eigen": ("TF float32, Eigen kernels", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "tf-bfloat16-onednn": ("TF bf16 (mixed_bfloat16), oneDNN kernels", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
    "torch-float32": ("torch float32 (SB3's NatureCNN layers)", {}),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the CPU time of one Nature-CNN train step on 256 frames (one thread) for TF "
        "float32 on oneDNN's and on Eigen's kernels, TF bf16 and torch float32, interleaved repeats.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=10, help="timed train steps per process (after 3 untimed)")
    parser.add_argument("--repeats", type=int, default=3, help="processes per setting, interleaved")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS),
                        help="settings to measure")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR, help="where the JSON and markdown go")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        parser.error(f"--steps and --repeats must be positive, got {args.steps} and {args.repeats}")
    return args


def tensorflow_step(setting: str):
    import numpy as np
    import tensorflow as tf
    from gymnasium import spaces

    from agents_zoo.core.networks import NatureCNN, build

    space = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    network = NatureCNN(space, dtype_policy="mixed_bfloat16" if "bfloat16" in setting else "float32")
    build(network, space)
    head = tf.Variable(tf.random.normal((512, 1), seed=0) * 0.01)
    optimizer = tf.keras.optimizers.Adam(1e-4)
    frames = tf.constant(np.random.default_rng(0).integers(0, 256, (FRAMES, *space.shape), dtype=np.uint8))
    variables = [*network.float32_weights(), head]

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            weights = [tf.cast(weight, network.compute) for weight in network.float32_weights()]
            features = tf.cast(network.encode(frames, weights), tf.float32)
            loss = tf.reduce_mean(tf.square(tf.matmul(features, head)))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return lambda: step().numpy()


def torch_step():
    import numpy as np
    import torch
    from gymnasium import spaces
    from stable_baselines3.common.torch_layers import NatureCNN
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    network = nn.Sequential(NatureCNN(spaces.Box(0, 255, (4, 84, 84), np.uint8), features_dim=512), nn.Linear(512, 1))
    optimizer = torch.optim.Adam(network.parameters(), 1e-4)
    frames = torch.randint(0, 256, (FRAMES, 4, 84, 84), dtype=torch.uint8)

    def step():
        loss = network(frames.float() / 255.0).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def run_child(setting: str, steps: int) -> None:
    """Time ``steps`` train steps in this process and print them as JSON (milliseconds of CPU)."""
    step = torch_step() if setting.startswith("torch") else tensorflow_step(setting)
    for _ in range(3):  # tracing, kernel selection, allocator warm-up
        step()
    cpu_ms = []
    for _ in range(steps):
        started = time.process_time()
        step()
        cpu_ms.append(1000 * (time.process_time() - started))
    print(json.dumps({"cpu_ms": cpu_ms}))


def measure(setting: str, steps: int) -> float | None:
    """Median CPU milliseconds per step of one fresh process, or None if the setting cannot run here."""
    from benchmarks.config import THREAD_VARIABLES

    one_thread = {name: "1" for name in THREAD_VARIABLES}
    environment = {**os.environ, **one_thread, **SETTINGS[setting][1], "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run([sys.executable, __file__, "--child", setting, "--steps", str(steps)],
                               env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        if re.search(r"No module named '(torch|stable_baselines3)'", completed.stderr):
            return None
        raise RuntimeError(f"{setting} failed:\n{completed.stderr[-2000:]}")
    return statistics.median(json.loads(completed.stdout.strip().splitlines()[-1])["cpu_ms"])


def machine_name() -> tuple[str, str]:
    """The CPU in words (``machine.machine_text``) and as a file name."""
    from benchmarks.machine import cpu_description, machine_text

    description = cpu_description()
    text = machine_text({**description, "cpu_count": os.cpu_count()})
    slug = re.sub(r"[^a-z0-9]+", "-", f"{description['cpu_model']} {description['cpu_id'] or ''}".lower()).strip("-")
    return text, slug


def render_markdown(result: dict) -> str:
    float32 = result["settings"].get("tf-float32-onednn", {}).get("median_ms")
    lines = [
        f"# Nature-CNN train step on {FRAMES} frames: {result['machine']}",
        "",
        f"CPU milliseconds per step, one thread, median over {result['repeats']} fresh processes per setting "
        f"(each the median of {result['steps']} steps after 3 untimed ones), processes interleaved. "
        "`python benchmarks/bench_cnn_step.py` re-makes it.",
        "",
        "| setting | CPU ms per step | each process | against TF float32 on oneDNN |",
        "|---|---:|---|---:|",
    ]
    for row in result["settings"].values():
        if row["median_ms"] is None:
            lines.append(f"| {row['label']} | not installed | | |")
            continue
        each = ", ".join(f"{value:,.1f}" for value in row["repeats_ms"])
        ratio = "" if float32 is None else f"{row['median_ms'] / float32:.2f}x"
        lines.append(f"| {row['label']} | {row['median_ms']:,.1f} | {each} | {ratio} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.child:
        run_child(args.child, args.steps)
        return None
    samples: dict[str, list[float | None]] = {setting: [] for setting in args.settings}
    for _ in range(args.repeats):
        for setting in args.settings:
            samples[setting].append(measure(setting, args.steps))
    text, slug = machine_name()
    result = {
        "benchmark": "cnn_step",
        "machine": text,
        "frames": FRAMES,
        "steps": args.steps,
        "repeats": args.repeats,
        "settings": {
            setting: {"label": SETTINGS[setting][0], "environment": SETTINGS[setting][1],
                      "repeats_ms": None if None in values else values,
                      "median_ms": None if None in values else statistics.median(values)}
            for setting, values in samples.items()
        },
    }
    markdown = render_markdown(result)
    print(markdown)
    if not args.no_write:
        from benchmarks.report import write_result_files

        write_result_files(args.output_dir / slug, result, markdown)
    return result


if __name__ == "__main__":
    main()
