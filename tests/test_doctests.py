"""The examples in docstrings are tests too (Gymnasium's CI runs them the same way).

They run on the installed packages, module by module, so they work for an editable and a plain
install alike (pytest's --doctest-modules on src/ would collect a second copy of each module).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("agents_zoo", "wrappers", "generative")


def modules_with_examples() -> list[str]:
    names = []
    finder = doctest.DocTestFinder()
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            module = importlib.import_module(info.name)
            if any(test.examples for test in finder.find(module)):
                names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", modules_with_examples())
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {module_name} failed"
