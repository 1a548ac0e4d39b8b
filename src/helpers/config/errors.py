"""Bad input, said in one line: the file, the key path, the value and what is allowed."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(Exception):
    """Bad input: one line naming the file, the key path, the value and what is allowed."""


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest of ``options``, or nothing when none is close."""
    hint = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""
