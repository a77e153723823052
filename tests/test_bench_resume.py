"""A sweep killed with SIGKILL in the middle of a run continues that run from its last in-run
checkpoint, keeps every finished run, and ends with the records of an uninterrupted sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import harness

BUDGET = 60_000
CHECKPOINT_EVERY = 8_000


def sweep_file(tmp_path: Path, library: str) -> Path:
    config = {
        "name": f"resume_{library}", "seeds": [0, 1], "random_baseline": False, "checkpoint_every": CHECKPOINT_EVERY,
        "evaluation": {"eval_every": 20_000, "n_eval_episodes": 2, "n_final_episodes": 3},
        "experiments": [{"algo": "ppo", "env": "CartPole-v1", "budget": BUDGET, "libraries": [library],
                         "hyperparameters": {"n_envs": 8, "n_steps": 32, "batch_size": 256, "n_epochs": 4}}],
    }
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(config))
    return path


def start_sweep(config: Path, output: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.cli", "--config", str(config), "--output", str(output),
                             "--no-plots", "--reps", "100"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def checkpoint_steps(output: Path, seed: int = 1) -> list[int]:
    folder = output / harness.CHECKPOINTS_FOLDER
    if not folder.is_dir():
        return []
    return [int(p.name[5:]) for run in folder.iterdir() if f"__seed{seed}__" in run.name
            for p in run.iterdir() if p.name.startswith("step-")]


@pytest.mark.parametrize("library", ["ours", pytest.param("sb3", marks=pytest.mark.bench)])
def test_sigkilled_sweep_resumes_the_interrupted_run(tmp_path, library):
    if library == "sb3":
        pytest.importorskip("stable_baselines3")
    config, output = sweep_file(tmp_path, library), tmp_path / "out"
    process = start_sweep(config, output)
    deadline = time.monotonic() + 300
    try:
        # Wait until seed 0 has finished and seed 1 has checkpointed past ~40% of its budget.
        while time.monotonic() < deadline:
            records = harness.load_records(output / harness.RESULTS_FILE)
            if len(records) == 1 and any(step >= 0.4 * BUDGET for step in checkpoint_steps(output)):
                break
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.2)
        else:
            pytest.fail("the sweep never reached a mid-run checkpoint")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed_at = max(checkpoint_steps(output))
    assert killed_at < BUDGET

    rerun = subprocess.run([sys.executable, "-m", "benchmarks.cli", "--config", str(config), "--output", str(output),
                            "--no-plots", "--reps", "100"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 already finished" in rerun.stdout and "continues from its last checkpoint" in rerun.stdout
    records = sorted(harness.load_records(output / harness.RESULTS_FILE), key=lambda r: r["key"]["seed"])
    assert [r["key"]["seed"] for r in records] == [0, 1]  # nothing lost, nothing run twice
    assert records[0]["resumed_from_step"] is None
    assert records[1]["resumed_from_step"] >= killed_at and records[1]["num_timesteps"] >= BUDGET
    # The curve survived: one point per eval_every, with the points from before the kill.
    assert records[1]["curve"]["steps"] == [0, 20_000, 40_000, 60_000][:len(records[1]["curve"]["steps"])]
    assert len(records[1]["curve"]["steps"]) >= 3
    assert records[1]["timing"]["train_time_s"] > 0
    assert not list((output / harness.CHECKPOINTS_FOLDER).glob("*"))  # cleaned after the record


def test_a_second_sweep_on_the_same_folder_is_refused(tmp_path):
    """Two writers would each rewrite runs.jsonl from their own read and drop the other's records."""
    output = tmp_path / "out"
    output.mkdir()
    with harness.exclusive_results_folder(output):
        result = subprocess.run([sys.executable, "-m", "benchmarks.cli", "--config", "quick", "--output", str(output)],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"another sweep (pid {os.getpid()}) is writing to {output}" in result.stderr
    assert "Traceback" not in result.stderr
    with harness.exclusive_results_folder(output):  # released: the next sweep may run
        pass
