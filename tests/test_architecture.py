"""The layers of ARCHITECTURE.md, checked on the import statements of every module under src/.

Every module is placed in one component below, and every component in one layer:

    applications  the ``agents_zoo`` facade, the CLIs (and benchmarks/, outside src/)
    libraries     agents | wrappers | generative       (generative may use wrappers)
    neural        TensorFlow/Keras building blocks: networks, distributions, optimizers, adversarial
    foundation    TensorFlow-free: file format, atomic IO, seeding, validators, argparse types,
                  did-you-mean, spaces, env construction, buffers, the registries

An import may go to its own component, to any lower layer, or sideways along an edge listed in
SIDEWAYS; nothing goes up. A new module must be added to MODULES, or the test names it.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path


SRC = Path(__file__).resolve().parents[1] / "src"
BENCHMARKS = SRC.parent / "benchmarks"
FIRST_PARTY = ("agents_zoo", "wrappers", "generative", "benchmarks")

LAYERS = ("foundation", "neural", "libraries", "applications")  # bottom to top
COMPONENT_LAYER = {
    "foundation": "foundation",
    "neural": "neural",
    "agents": "libraries",
    "wrappers": "libraries",
    "generative": "libraries",
    "applications": "applications",
}
# Imports between different components of one layer that are allowed (importer, imported).
SIDEWAYS = {
    ("generative", "wrappers"),  # generative.data collects Atari frames through the "gan" preset
}

MODULES = {
    # ---------------------------------------------------------------- foundation (no TensorFlow)
    "agents_zoo.core": "foundation",
    "agents_zoo.core.serialization": "foundation",   # the archive format
    "agents_zoo.core.atomic_files": "foundation",    # atomic writes
    "agents_zoo.core.bounded_zip": "foundation",     # zips and .npy read within a byte budget, no pickle
    "agents_zoo.core.saved_variables": "foundation",  # variables saved by name; old positional files
    "agents_zoo.core.temporary": "foundation",
    "agents_zoo.core.load_limits": "foundation",
    "agents_zoo.core.restore_checks": "foundation",
    "agents_zoo.core.config": "foundation",          # typed configs and their validators
    "agents_zoo.core.cli_args": "foundation",        # argparse types
    "agents_zoo.core.suggest": "foundation",         # did-you-mean hints
    "agents_zoo.core.seeding": "foundation",
    "agents_zoo.core.quiet_startup": "foundation",
    "agents_zoo.core.logger": "foundation",
    "agents_zoo.core.normalization": "foundation",
    "agents_zoo.core.spaces": "foundation",
    "agents_zoo.core.envs": "foundation",
    "agents_zoo.core.env_state": "foundation",
    "agents_zoo.core.episodes": "foundation",        # the episode loop of evaluate and rollout
    "agents_zoo.core.buffers": "foundation",
    "agents_zoo.core.prioritized_replay": "foundation",  # sum tree and proportional priorities
    "agents_zoo.registry": "foundation",             # entry point group agents_zoo.agents
    "wrappers.registration": "foundation",           # our gymnasium ids; runs inside `import gymnasium`
    "wrappers.autoreset": "foundation",              # same-step autoreset on every gymnasium
    # ---------------------------------------------------------------- neural (TensorFlow / Keras)
    "agents_zoo.core.networks": "neural",
    "agents_zoo.core.policies": "neural",            # actor-critic, Q-network, their NumPy acting path
    "agents_zoo.core.distributions": "neural",
    "agents_zoo.core.optimizers": "neural",
    "agents_zoo.core.adversarial": "neural",         # GAN/GAIL losses, the MLP discriminator
    # ---------------------------------------------------------------- libraries
    "agents_zoo.core.base": "agents",
    "agents_zoo.core.callbacks": "agents",
    "agents_zoo.demonstrations": "agents",
    "agents_zoo.agents": "agents",
    "agents_zoo.agents.random_agent": "agents",
    "agents_zoo.agents.qlearning": "agents",
    "agents_zoo.agents.onpolicy": "agents",
    "agents_zoo.agents.a2c": "agents",
    "agents_zoo.agents.ppo": "agents",
    "agents_zoo.agents.replay": "agents",
    "agents_zoo.agents.dqn": "agents",
    "agents_zoo.agents.gail": "agents",
    "wrappers": "wrappers",
    "wrappers._validation": "wrappers",
    "wrappers.atari": "wrappers",
    "wrappers.image": "wrappers",
    "wrappers.frame_stack": "wrappers",
    "wrappers.atari_presets": "wrappers",
    "wrappers.ale_vector": "wrappers",
    "wrappers.fake_envs": "wrappers",
    "wrappers.time_feature": "wrappers",
    "generative": "generative",
    "generative.adversarial": "generative",
    "generative.common": "generative",
    "generative.data": "generative",
    "generative.gan": "generative",
    "generative.vae": "generative",
    "generative.dbvae": "generative",
    "generative.cyclegan": "generative",
    "generative.plots": "generative",
    # ---------------------------------------------------------------- applications
    "agents_zoo": "applications",                    # the facade: make, load, list_agents
    "agents_zoo.cli": "applications",
    "agents_zoo.expert_cli": "applications",
    "generative.cli": "applications",
}
NO_TENSORFLOW_AT_IMPORT = ("tensorflow", "keras", "torch")


def layer_of(component: str) -> int:
    return LAYERS.index(COMPONENT_LAYER[component])


def module_files() -> dict[str, Path]:
    files = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[0].endswith(".egg-info"):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = path
    return files


FILES = module_files()
# benchmarks/ is no part of the layers (it sits on top of everything in src/), but its imports count
# for the cycle between top-level packages and for the one home of shared pieces.
BENCHMARK_FILES = {f"benchmarks.{path.stem}" if path.stem != "__init__" else "benchmarks": path
                   for path in sorted(BENCHMARKS.glob("*.py"))}
SOURCE_FILES = {**FILES, **BENCHMARK_FILES}


def component_of(module: str) -> str | None:
    if module.split(".")[0] == "benchmarks":
        return "applications"  # benchmarks/ sits on top of everything in src/
    return MODULES.get(module)


def _resolve(name: str) -> str:
    """The module an import statement loads: the longest known module prefix of ``name``."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in FILES or candidate.split(".")[0] == "benchmarks":
            return candidate
    return name


class _Imports(ast.NodeVisitor):
    """Every import of one module as (line, module, made at import time, i.e. outside a function).

    First-party names are resolved to the module they load (``from agents_zoo.core import base``
    loads ``agents_zoo.core.base``).
    """

    def __init__(self, module: str, is_package: bool):
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[int, str, bool]] = []
        self._depth = 0

    def _nested(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = _nested

    def _add(self, node: ast.stmt, name: str) -> None:
        resolved = _resolve(name) if name.split(".")[0] in FIRST_PARTY else name
        self.found.append((node.lineno, resolved, self._depth == 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.package.split(".")[: len(self.package.split(".")) - (node.level - 1)]
            base = ".".join([*package, *([node.module] if node.module else [])])
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self._add(node, submodule if submodule in FILES else base)


@functools.lru_cache(maxsize=None)
def all_imports_of(module: str) -> tuple[tuple[int, str, bool], ...]:
    path = SOURCE_FILES[module]
    visitor = _Imports(module, path.name == "__init__.py")
    visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return tuple(visitor.found)


def imports_of(module: str) -> list[tuple[int, str, bool]]:
    """The first-party imports of ``module``."""
    return [found for found in all_imports_of(module) if found[1].split(".")[0] in FIRST_PARTY]


def tensorflow_at_import(module: str) -> list[tuple[int, str]]:
    """Imports of NO_TENSORFLOW_AT_IMPORT made outside any function (so when ``module`` is imported)."""
    return [(line, name) for line, name, at_import in all_imports_of(module)
            if at_import and name.split(".")[0] in NO_TENSORFLOW_AT_IMPORT]


def where(module: str, line: int) -> str:
    return f"{SOURCE_FILES[module].relative_to(SRC.parent)}:{line} ({module})"


def edges() -> list[tuple[str, int, str]]:
    return [(module, line, target) for module in FILES for line, target, _ in imports_of(module)
            if target != module]


# ----------------------------------------------------------------------------- the table itself
def test_every_module_is_placed_in_a_layer():
    unplaced = sorted(set(FILES) - set(MODULES))
    assert not unplaced, (
        "modules in no layer: " + ", ".join(f"{name} ({FILES[name].relative_to(SRC.parent)})" for name in unplaced)
        + ". Add each to MODULES in tests/test_architecture.py with its component "
        f"({', '.join(COMPONENT_LAYER)}); ARCHITECTURE.md says which fits."
    )
    stale = sorted(set(MODULES) - set(FILES))
    assert not stale, f"MODULES lists modules that do not exist under src/: {stale}; remove them"
    unknown = sorted({component for component in MODULES.values() if component not in COMPONENT_LAYER})
    assert not unknown, f"components without a layer: {unknown}"


def test_sideways_edges_stay_inside_one_layer_and_form_no_cycle():
    for importer, imported in SIDEWAYS:
        assert COMPONENT_LAYER[importer] == COMPONENT_LAYER[imported], (importer, imported)
    assert not find_cycle(SIDEWAYS), f"SIDEWAYS has a cycle: {find_cycle(SIDEWAYS)}"


# ----------------------------------------------------------------------------- the imports
def test_imports_go_down_or_along_an_allowed_edge():
    problems = []
    for module, line, target in edges():
        source, imported = component_of(module), component_of(target)
        if source is None:
            continue  # reported by test_every_module_is_placed_in_a_layer
        if imported is None:
            problems.append(f"{where(module, line)} imports {target}, which is not a module under src/")
        elif source == imported or layer_of(imported) < layer_of(source):
            continue
        elif layer_of(imported) > layer_of(source):
            problems.append(f"{where(module, line)} imports {target} upward: {source} "
                            f"({COMPONENT_LAYER[source]}) may not use {imported} ({COMPONENT_LAYER[imported]})")
        elif (source, imported) not in SIDEWAYS:
            problems.append(f"{where(module, line)} imports {target} across: {source} may not use {imported} "
                            f"(same layer, {COMPONENT_LAYER[source]}; allowed sideways edges: {sorted(SIDEWAYS)})")
    assert not problems, "imports against the layers of ARCHITECTURE.md:\n" + "\n".join(problems)


def find_cycle(graph_edges) -> list[str]:
    graph: dict[str, set[str]] = {}
    for source, target in graph_edges:
        graph.setdefault(source, set()).add(target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_components_form_no_cycle():
    component_edges = {(component_of(module), component_of(target)) for module, _, target in edges()}
    component_edges = {(a, b) for a, b in component_edges if a and b and a != b}
    cycle = find_cycle(component_edges)
    assert not cycle, "components import each other in a cycle: " + " -> ".join(cycle)


def test_top_level_packages_form_no_cycle():
    """agents_zoo, wrappers and generative may use each other one way only, and nothing uses benchmarks.

    The layers allow a package to hold modules of several layers (``wrappers.registration`` is
    foundation, ``agents_zoo.core.envs`` uses it), so layer-clean imports could still tie two
    packages into a cycle; this keeps each package importable and testable without the ones above it.
    """
    first_import: dict[tuple[str, str], str] = {}
    for module in SOURCE_FILES:
        for line, target, _ in imports_of(module):
            importer, imported = module.split(".")[0], target.split(".")[0]
            if importer != imported:
                first_import.setdefault((importer, imported), where(module, line))
    cycle = find_cycle(first_import)
    assert not cycle, ("top-level packages import each other in a cycle: " + " -> ".join(cycle) + "; imports: "
                       + "; ".join(f"{first_import[edge]} imports {edge[1]}" for edge in zip(cycle, cycle[1:])))
    below_benchmarks = sorted(place for (importer, imported), place in first_import.items()
                              if imported == "benchmarks")
    assert not below_benchmarks, f"benchmarks/ sits on top; these import it: {below_benchmarks}"


def test_package_init_imports_nothing_above_its_lowest_module():
    """Importing ``agents_zoo.core.serialization`` runs ``agents_zoo/__init__.py`` first.

    So what a package's ``__init__`` imports at import time is loaded by every module in it: it
    may import only modules of the lowest layer found in the package (e.g. ``agents_zoo`` and
    ``wrappers`` hold foundation modules, so their ``__init__`` loads only foundation modules).
    """
    problems = []
    for package, path in FILES.items():
        if path.name != "__init__.py":
            continue
        members = [name for name in FILES if name == package or name.startswith(package + ".")]
        lowest = min(layer_of(MODULES[name]) for name in members if name in MODULES)
        for line, target, at_import in imports_of(package):
            imported = component_of(target)
            if at_import and imported is not None and layer_of(imported) > lowest:
                problems.append(f"{where(package, line)} imports {target} ({COMPONENT_LAYER[imported]}) when the "
                                f"package is imported; its modules start at the {LAYERS[lowest]} layer, which "
                                "would load it too (import it inside the function that needs it)")
    assert not problems, "\n".join(problems)


def test_foundation_modules_do_not_import_tensorflow_at_import_time():
    problems = [f"{where(module, line)} imports {name} at import time"
                for module, component in MODULES.items() if component == "foundation"
                for line, name in tensorflow_at_import(module)]
    assert not problems, ("the foundation layer is TensorFlow-free at import time; import it inside the function "
                          "that needs it:\n" + "\n".join(problems))


def test_importing_the_foundation_loads_nothing_above_it():
    """The same, measured: a fresh interpreter imports every foundation module and lists sys.modules."""
    foundation = sorted(name for name, component in MODULES.items() if component == "foundation")
    code = (
        "import importlib, json, sys\n"
        "import generative\n"
        "light = sorted(m for m in sys.modules if m.split('.')[0] in ('agents_zoo', 'wrappers', 'generative'))\n"
        f"for name in {foundation!r}:\n"
        "    importlib.import_module(name)\n"
        "ours = sorted(m for m in sys.modules if m.split('.')[0] in ('agents_zoo', 'wrappers', 'generative'))\n"
        f"heavy = sorted(m for m in {NO_TENSORFLOW_AT_IMPORT!r} if sys.modules.get(m) is not None)\n"
        "print(json.dumps({'generative': light, 'ours': ours, 'heavy': heavy}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["generative"] == ["generative"], "`import generative` must load no model, and no TensorFlow"
    assert loaded["heavy"] == [], f"importing the foundation layer loaded {loaded['heavy']}"
    packages = {name for name, path in FILES.items() if path.name == "__init__.py"}
    above = [name for name in loaded["ours"] if name not in packages and MODULES.get(name) != "foundation"]
    assert above == [], f"importing the foundation layer loaded modules of higher layers: {above}"


# ----------------------------------------------------------------------------- one of each
ONE_HOME = {
    "get_close_matches": "agents_zoo.core.suggest",  # did-you-mean hints: call suggest.did_you_mean
    "seed_everything": "agents_zoo.core.seeding",    # seeding: import seeding.seed_everything
}


def test_shared_pieces_are_defined_in_one_place():
    problems = []
    for module in SOURCE_FILES:  # src/ and benchmarks/
        for node in ast.walk(ast.parse(SOURCE_FILES[module].read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "get_close_matches":
                name = node.attr
            elif isinstance(node, ast.ImportFrom) and "get_close_matches" in {alias.name for alias in node.names}:
                name = "get_close_matches"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ONE_HOME:
                name = node.name
            else:
                continue
            if module != ONE_HOME[name]:
                problems.append(f"{where(module, node.lineno)} has its own {name}; use {ONE_HOME[name]}")
    assert not problems, "\n".join(problems)
