"""Did-you-mean hints for unknown names, worded the same way in every error message.

Example:
    >>> did_you_mean("n_env", ["n_envs", "gamma"])
    "; did you mean 'n_envs'?"
    >>> did_you_mean("randm", ["random", "ppo"], sentence=True)
    " Did you mean 'random'?"
    >>> did_you_mean("CartPol-v1", ["CartPole-v0", "CartPole-v1"], n=3)
    "; did you mean 'CartPole-v1', 'CartPole-v0'?"
    >>> did_you_mean("zzz", ["ppo"])
    ''
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable


def did_you_mean(word: Any, choices: Iterable[Any], *, n: int = 1, cutoff: float = 0.6, sentence: bool = False) -> str:
    """A hint naming the up to ``n`` choices closest to ``word``, or ``""`` when none is close.

    The hint continues the message: ``"; did you mean 'x'?"``, or with ``sentence=True`` a new
    sentence, ``" Did you mean 'x'?"``. ``cutoff`` is difflib's similarity threshold.
    """
    close = difflib.get_close_matches(str(word), [str(choice) for choice in choices], n=n, cutoff=cutoff)
    if not close:
        return ""
    names = ", ".join(map(repr, close))
    return f" Did you mean {names}?" if sentence else f"; did you mean {names}?"
