"""Agent plugin registry: entry points, in-process registration, broken and duplicate plugins."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

import agents_zoo
from agents_zoo import registry
from agents_zoo.agents.random_agent import RandomAgent
from agents_zoo.core.spaces import UnsupportedSpaceError

ROOT = Path(__file__).resolve().parents[1]


def test_builtin_random_agent_comes_from_our_entry_point():
    spec = registry.get_spec("random")
    assert spec.factory is RandomAgent
    assert spec.distribution == "agents-zoo"
    assert "random" in agents_zoo.list_agents()


def test_unknown_name_lists_known_names_and_closest_match():
    with pytest.raises(agents_zoo.UnknownAgentError) as info:
        agents_zoo.make("randon", "CartPole-v1")
    message = str(info.value)
    assert "'randon'" in message and "Did you mean 'random'?" in message and "random" in message.split("Known agents:")[1]


def test_register_in_process_and_duplicate_is_an_error():
    def factory(env, **config):
        return RandomAgent(env, **config)

    agents_zoo.register("my-random", factory)
    try:
        agent = agents_zoo.make("my-random", "CartPole-v1", seed=0)
        assert isinstance(agent, RandomAgent)
        with pytest.raises(agents_zoo.AgentRegistryError, match="already registered"):
            agents_zoo.register("my-random", factory)
        with pytest.raises(agents_zoo.AgentRegistryError, match="already registered"):
            agents_zoo.register("random", factory)  # clashes with an entry point
    finally:
        agents_zoo.unregister("my-random")


@pytest.mark.parametrize("bad", ["", "Upper", " spaced", 3])
def test_register_rejects_bad_names(bad):
    with pytest.raises(agents_zoo.AgentRegistryError, match="agent names"):
        agents_zoo.register(bad, RandomAgent)


def _write_distribution(site: Path, dist: str, entry_points: str, module: str = "", module_name: str = "") -> None:
    """A minimal installed distribution: a .dist-info folder is what pip leaves behind."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    if module_name:
        (site / f"{module_name}.py").write_text(module)


def _run_python(code: str, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120)


def test_broken_plugin_warns_and_others_still_load(tmp_path):
    _write_distribution(tmp_path, "broken-plugin", "[agents_zoo.agents]\nbroken = broken_plugin_mod:Agent\n",
                        "raise ImportError('missing dependency xyz')\n", "broken_plugin_mod")
    result = _run_python("""
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import agents_zoo
            names = agents_zoo.list_agents()
        print(names)
        print([str(w.message) for w in caught if "broken" in str(w.message)])
        try:
            agents_zoo.make("broken", "CartPole-v1")
        except Exception as exc:
            print("ERR", exc)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "'random'" in result.stdout and "'broken'" not in result.stdout.splitlines()[0]
    assert "agent plugin 'broken' from broken-plugin" in result.stdout and "missing dependency xyz" in result.stdout
    assert "ERR agent 'broken' from broken-plugin is installed but failed to load" in result.stdout


def test_duplicate_entry_point_names_are_an_error(tmp_path):
    _write_distribution(tmp_path, "clash-plugin", "[agents_zoo.agents]\nrandom = clash_mod:Agent\n",
                        "Agent = object\n", "clash_mod")
    result = _run_python("""
        import agents_zoo
        try:
            agents_zoo.list_agents()
        except agents_zoo.AgentRegistryError as exc:
            print("ERR", exc)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ERR agent name 'random' is declared twice" in result.stdout
    assert "clash-plugin" in result.stdout and "agents-zoo" in result.stdout


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """pip-install the worked example plugin (examples/plugin_agent) into a private folder."""
    target = tmp_path_factory.mktemp("plugin_site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT / "examples" / "plugin_agent")], check=True, timeout=300)
    return target


def test_worked_example_plugin_is_listed_and_trains_via_cli(installed_plugin, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed_plugin)}
    cli = [sys.executable, "-m", "agents_zoo.cli"]
    listing = subprocess.run([*cli, "list", "--what", "agents"], capture_output=True, text=True, env=env, timeout=120)
    assert listing.returncode == 0, listing.stderr
    line = next(l for l in listing.stdout.splitlines() if "hill-climbing" in l)
    assert "zoo-hill-climbing" in line and "zoo_hill_climbing:HillClimbing" in line
    model = tmp_path / "hill.zip"
    train = subprocess.run([*cli, "train", "hill-climbing", "CartPole-v1", "--steps", "3000", "--seed", "0",
                            "--save", str(model), "--no-progress", "--eval-episodes", "2"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert train.returncode == 0, train.stderr
    assert model.exists() and "evaluation over 2 episodes" in train.stdout
    evaluate = subprocess.run([*cli, "evaluate", str(model), "--episodes", "2"], capture_output=True, text=True,
                              env=env, timeout=120)
    assert evaluate.returncode == 0, evaluate.stderr
    assert "hill-climbing on CartPole-v1" in evaluate.stdout


def test_space_errors_name_registered_plugin_agents_that_fit():
    class BoxOnlyAgent(RandomAgent):
        name = "box-only"
        action_spaces = (gym.spaces.Box,)

    agents_zoo.register("box-only", BoxOnlyAgent)
    try:
        with pytest.raises(UnsupportedSpaceError, match=r"agents that support it: a2c, box-only, gail, ppo, random"):
            agents_zoo.make("dqn", "Pendulum-v1")
    finally:
        agents_zoo.unregister("box-only")
