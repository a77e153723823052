"""Register our preprocessed Atari ids and the PyBullet ids with gymnasium, cheaply.

gymnasium 0.29 calls :func:`register_envs` at ``import gymnasium`` through the
``gymnasium.envs`` entry point declared in pyproject.toml; ``import wrappers`` calls it too, for
gymnasium 1.x where that entry-point group is gone. Because it runs inside ``import gymnasium``
it must be cheap and must never raise: only string entry points are registered (ale_py, cv2,
pybullet and tensorflow are imported when an env is *made*, not here), already registered ids
are skipped (idempotent, no "Overriding environment" warnings), and any failure becomes a
warning.

Id scheme (one pair per ALE ROM, names as ale-py spells them, e.g. ``SpaceInvaders``):

- ``agents_zoo/<Game>-dqn-v0``: DQN-paper preprocessing, uint8 observations of shape (4, 84, 84).
- ``agents_zoo/<Game>-gan-v0``: frames for the Atari GAN, float32 in [0, 1] of shape (3, 64, 64).
- ``<Name>BulletEnv-v0``: the pybullet_envs_gymnasium ids, usable without importing that package.

Keyword arguments given to ``gym.make`` override the preset, e.g.
``gym.make("agents_zoo/Pong-dqn-v0", noop_max=0, frame_stack=2)``.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from typing import Any, Iterator

NAMESPACE = "agents_zoo"
PRESET_VERSION = "v0"
PRESETS = ("dqn", "gan")

# The ROM ids of ale-py 0.9.1 (``ale_py.roms.get_all_rom_ids()``), kept static so registration
# never imports ale_py; tests/test_env_registration.py checks it against the installed ale-py.
ATARI_ROM_IDS = (
    "adventure", "air_raid", "alien", "amidar", "assault", "asterix", "asteroids", "atlantis2",
    "atlantis", "backgammon", "bank_heist", "basic_math", "battle_zone", "beam_rider", "berzerk",
    "blackjack", "bowling", "boxing", "breakout", "carnival", "casino", "centipede",
    "chopper_command", "combat", "crazy_climber", "crossbow", "darkchambers", "defender",
    "demon_attack", "donkey_kong", "double_dunk", "earthworld", "elevator_action", "enduro",
    "entombed", "et", "fishing_derby", "flag_capture", "freeway", "frogger", "frostbite",
    "galaxian", "gopher", "gravitar", "hangman", "haunted_house", "hero", "human_cannonball",
    "ice_hockey", "jamesbond", "journey_escape", "joust", "kaboom", "kangaroo", "keystone_kapers",
    "king_kong", "klax", "koolaid", "krull", "kung_fu_master", "laser_gates", "lost_luggage",
    "mario_bros", "maze_craze", "miniature_golf", "montezuma_revenge", "mr_do", "ms_pacman",
    "name_this_game", "othello", "pacman", "phoenix", "pitfall2", "pitfall", "pong", "pooyan",
    "private_eye", "qbert", "riverraid", "road_runner", "robotank", "seaquest", "sir_lancelot",
    "skiing", "solaris", "space_invaders", "space_war", "star_gunner", "superman", "surround",
    "tennis", "tetris", "tic_tac_toe_3d", "time_pilot", "trondead", "turmoil", "tutankham",
    "up_n_down", "venture", "video_checkers", "video_chess", "video_cube", "video_pinball",
    "warlords", "wizard_of_wor", "word_zapper", "yars_revenge", "zaxxon",
)

# pybullet_envs_gymnasium 0.4/0.5 registrations: id -> (module, class, max_episode_steps,
# reward_threshold). Copied so that ``gym.make("HopperBulletEnv-v0")`` works without the user
# importing pybullet_envs_gymnasium; a test checks the copy against that package's registry.
PYBULLET_ENVS: dict[str, tuple[str, str, int, float | None]] = {
    "InvertedPendulumBulletEnv-v0": ("gym_pendulum_envs", "InvertedPendulumBulletEnv", 1000, 950.0),
    "InvertedDoublePendulumBulletEnv-v0": (
        "gym_pendulum_envs", "InvertedDoublePendulumBulletEnv", 1000, 9100.0),
    "InvertedPendulumSwingupBulletEnv-v0": (
        "gym_pendulum_envs", "InvertedPendulumSwingupBulletEnv", 1000, 800.0),
    "ReacherBulletEnv-v0": ("gym_manipulator_envs", "ReacherBulletEnv", 150, 18.0),
    "PusherBulletEnv-v0": ("gym_manipulator_envs", "PusherBulletEnv", 150, 18.0),
    "ThrowerBulletEnv-v0": ("gym_manipulator_envs", "ThrowerBulletEnv", 100, 18.0),
    "Walker2DBulletEnv-v0": ("gym_locomotion_envs", "Walker2DBulletEnv", 1000, 2500.0),
    "HalfCheetahBulletEnv-v0": ("gym_locomotion_envs", "HalfCheetahBulletEnv", 1000, 3000.0),
    "AntBulletEnv-v0": ("gym_locomotion_envs", "AntBulletEnv", 1000, 2500.0),
    "HopperBulletEnv-v0": ("gym_locomotion_envs", "HopperBulletEnv", 1000, 2500.0),
    "HumanoidBulletEnv-v0": ("gym_locomotion_envs", "HumanoidBulletEnv", 1000, None),
    "HumanoidFlagrunBulletEnv-v0": (
        "gym_locomotion_envs", "HumanoidFlagrunBulletEnv", 1000, 2000.0),
    "HumanoidFlagrunHarderBulletEnv-v0": (
        "gym_locomotion_envs", "HumanoidFlagrunHarderBulletEnv", 1000, None),
}

_PRESET_ENTRY_POINT = "wrappers.atari_presets:make_atari_env"
_PYBULLET_ENTRY_POINT = "wrappers.registration:make_pybullet_env"


def rom_id_to_game_name(rom_id: str) -> str:
    """``space_invaders`` -> ``SpaceInvaders``, the way ale-py names its gymnasium ids."""
    return rom_id.title().replace("_", "")


def atari_env_id(game_name: str, preset: str) -> str:
    """Our id for one game and preset, e.g. ``atari_env_id("Pong", "dqn") == "agents_zoo/Pong-dqn-v0"``."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    return f"{NAMESPACE}/{game_name}-{preset}-{PRESET_VERSION}"


def list_env_ids() -> list[str]:
    """All ids this package registers: the Atari presets (sorted by game) then the PyBullet ids.

    >>> ids = list_env_ids()
    >>> "agents_zoo/Pong-dqn-v0" in ids and "agents_zoo/Pong-gan-v0" in ids
    True
    >>> "HopperBulletEnv-v0" in ids
    True
    """
    games = sorted(rom_id_to_game_name(rom_id) for rom_id in ATARI_ROM_IDS)
    atari = [atari_env_id(game, preset) for game in games for preset in PRESETS]
    return atari + sorted(PYBULLET_ENVS)


def make_pybullet_env(*, env_id: str, **kwargs: Any):
    """Entry point of our PyBullet ids: import pybullet_envs_gymnasium lazily, build its env class.

    Importing that package re-registers its own (identical) specs, which gymnasium would report
    as "Overriding environment ..." for every id; that noise is expected here, so it is silenced.
    """
    module_name, class_name, _, _ = PYBULLET_ENVS[env_id]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*Overriding environment")
            module = importlib.import_module(f"pybullet_envs_gymnasium.{module_name}")
    except ImportError as error:
        raise ImportError(
            f"{env_id} needs pybullet_envs_gymnasium: pip install pybullet pybullet_envs_gymnasium"
        ) from error
    return getattr(module, class_name)(**kwargs)


@contextlib.contextmanager
def _root_namespace() -> Iterator[None]:
    """Register outside the plugin namespace that gymnasium 0.29 sets while it loads plugins.

    gymnasium prefixes every id registered by the ``agents_zoo`` plugin with ``agents_zoo/``;
    the PyBullet ids must stay at the root so that ``gym.make("HopperBulletEnv-v0")`` works.
    """
    from gymnasium.envs import registration as gym_registration

    previous = getattr(gym_registration, "current_namespace", None)
    gym_registration.current_namespace = None
    try:
        yield
    finally:
        gym_registration.current_namespace = previous


def _register_all() -> int:
    from gymnasium.envs.registration import register, registry

    registered = 0
    with _root_namespace():
        for rom_id in ATARI_ROM_IDS:
            game_name = rom_id_to_game_name(rom_id)
            for preset in PRESETS:
                env_id = atari_env_id(game_name, preset)
                if env_id in registry:
                    continue
                register(
                    id=env_id,
                    entry_point=_PRESET_ENTRY_POINT,
                    kwargs={"game_or_id": rom_id, "preset": preset},
                    # ALE truncates at 108,000 frames itself (max_num_frames_per_episode),
                    # so no TimeLimit on top.
                    max_episode_steps=None,
                )
                registered += 1
        for env_id, (_, _, max_episode_steps, reward_threshold) in PYBULLET_ENVS.items():
            # Skip ids pybullet_envs_gymnasium registered itself (it was imported first).
            if env_id in registry:
                continue
            register(
                id=env_id,
                entry_point=_PYBULLET_ENTRY_POINT,
                kwargs={"env_id": env_id},
                max_episode_steps=max_episode_steps,
                reward_threshold=reward_threshold,
            )
            registered += 1
    return registered


def register_envs() -> int:
    """Register every id of :func:`list_env_ids` that gymnasium does not know yet.

    Returns the number of ids registered by this call (0 when called again). Never raises:
    a failure here must not break ``import gymnasium``, so it is reported as a warning.
    """
    try:
        return _register_all()
    except Exception as error:  # noqa: BLE001 - see docstring: never break `import gymnasium`
        warnings.warn(
            f"agents_zoo could not register its gymnasium ids ({type(error).__name__}: {error}); "
            "gym.make('agents_zoo/...') will not find them",
            RuntimeWarning,
            stacklevel=2,
        )
        return 0
