"""Registration: plain gym.make finds our ids after install, cheaply, idempotently, for every ALE ROM."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wrappers import registration


# gymnasium 0.29 loads the `gymnasium.envs` entry points at `import gymnasium`, so a plain
# gym.make finds our ids in a fresh process; gymnasium 1.x dropped that plugin loading, and there
# importing `wrappers` (or `agents_zoo`) registers them.
GYMNASIUM_LOADS_PLUGINS = int(gym.__version__.split(".")[0]) < 1
REGISTERING_IMPORT = "" if GYMNASIUM_LOADS_PLUGINS else "import wrappers\n"


def run_fresh_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_plain_gym_make_works_in_a_fresh_process_without_importing_our_packages():
    code = (
        "import sys, gymnasium as gym\n"
        + REGISTERING_IMPORT +
        "hopper = gym.make('HopperBulletEnv-v0')\n"
        "pong = gym.make('agents_zoo/Pong-dqn-v0')\n"
        "breakout = gym.make('agents_zoo/Breakout-gan-v0')\n"
        "print(pong.observation_space.shape, pong.observation_space.dtype, breakout.observation_space.shape, "
        "breakout.observation_space.dtype, hopper.observation_space.shape)\n"
        "print('agents_zoo' in sys.modules)\n"
    )
    result = run_fresh_python(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == "(4, 84, 84) uint8 (3, 64, 64) float32 (15,)"
    assert lines[-1] == "False"  # only the light `wrappers` package was loaded, by gymnasium itself


def test_import_gymnasium_stays_cheap():
    """Registration at `import gymnasium` must not need the emulator, OpenCV, PyBullet or TF.

    gymnasium itself imports cv2 when it can, so the heavy modules are blocked outright
    (``sys.modules[name] = None`` makes importing them fail): registration must still succeed.
    """
    code = (
        "import sys, json, warnings\n"
        "heavy = ('ale_py', 'cv2', 'pybullet', 'pybullet_envs_gymnasium', 'tensorflow', 'torch')\n"
        "for name in heavy: sys.modules[name] = None\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import gymnasium as gym\n"
        + "".join(f"    {line}\n" for line in REGISTERING_IMPORT.splitlines()) +
        "ours = [i for i in gym.registry if i.startswith('agents_zoo/')]\n"
        "print(json.dumps({'warnings': [str(w.message) for w in caught if 'agents_zoo' in str(w.message)], "
        "'ours': len(ours), 'hopper': 'HopperBulletEnv-v0' in gym.registry}))\n"
    )
    result = run_fresh_python(code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"warnings": [], "ours": 2 * len(registration.ATARI_ROM_IDS), "hopper": True}


def test_registration_is_idempotent_and_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an "Overriding environment" warning would fail here
        assert registration.register_envs() == 0
        assert registration.register_envs() == 0
    assert set(registration.list_env_ids()) <= set(gym.registry)


def test_registration_failure_warns_instead_of_raising(monkeypatch):
    def broken():
        raise RuntimeError("simulated")

    monkeypatch.setattr(registration, "_register_all", broken)
    with pytest.warns(RuntimeWarning, match="simulated"):
        assert registration.register_envs() == 0


def test_static_rom_list_matches_installed_ale_py():
    import ale_py.roms as roms

    assert sorted(registration.ATARI_ROM_IDS) == sorted(roms.get_all_rom_ids())


def test_static_pybullet_table_matches_pybullet_envs_gymnasium():
    """The copied specs equal the package's own registrations (checked in a clean process)."""
    code = (
        "import json, gymnasium as gym\n"
        "from wrappers import registration\n"
        "import pybullet_envs_gymnasium\n"
        "specs = {i: [gym.spec(i).entry_point, gym.spec(i).max_episode_steps, gym.spec(i).reward_threshold] "
        "for i in registration.PYBULLET_ENVS}\n"
        "print(json.dumps(specs))\n"
    )
    result = run_fresh_python(code)
    assert result.returncode == 0, result.stderr
    specs = json.loads(result.stdout.strip().splitlines()[-1])
    for env_id, (module, class_name, max_steps, threshold) in registration.PYBULLET_ENVS.items():
        assert specs[env_id] == [f"pybullet_envs_gymnasium.{module}:{class_name}", max_steps, threshold]


def test_id_scheme_and_list():
    ids = registration.list_env_ids()
    assert len(ids) == len(set(ids)) == 2 * len(registration.ATARI_ROM_IDS) + len(registration.PYBULLET_ENVS)
    assert "agents_zoo/SpaceInvaders-dqn-v0" in ids and "agents_zoo/TicTacToe3D-gan-v0" in ids
    with pytest.raises(ValueError, match="preset must be one of.*'ppo'"):
        registration.atari_env_id("Pong", "ppo")


ATARI_SAMPLE = ["agents_zoo/Pong-dqn-v0", "agents_zoo/Breakout-dqn-v0", "agents_zoo/SpaceInvaders-gan-v0",
                "agents_zoo/MsPacman-gan-v0"]


@pytest.mark.parametrize("env_id", ATARI_SAMPLE)
def test_check_env_passes_on_registered_atari_ids(env_id):
    # Checked wrapped on purpose (gymnasium warns about that): the wrappers are what we ship.
    env = gym.make(env_id)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    space = env.observation_space
    for _ in range(10):
        assert obs.shape == space.shape and obs.dtype == space.dtype and space.contains(obs)
        obs, *_ = env.step(env.action_space.sample())


def test_check_env_passes_on_a_registered_pybullet_id():
    env = gym.make("HopperBulletEnv-v0")
    # check_env wants the bare env (the spec's PassiveEnvChecker/OrderEnforcing are gym.make's own).
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert env.spec.max_episode_steps == 1000
    env.close()


def test_gym_make_kwargs_override_the_preset():
    env = gym.make("agents_zoo/Pong-dqn-v0", frame_stack=2, screen_size=64, noop_max=0)
    assert env.observation_space.shape == (2, 64, 64)
    first, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(first, again)
