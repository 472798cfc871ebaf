"""Shared pieces of the fuzz tests: the run's size, hypothesis settings, and awkward JSON and text.

Hypothesis drives the fuzz tests: it draws, per generated input, a *kind* (a function that builds
one sort of input) and a *seed*, and the kind builds the input from a ``Junk`` generator with that
seed. Drawing rich nested values through hypothesis costs a millisecond or more each, which would
make ten thousand frames a minutes-long run; a seeded generator costs microseconds, and a failure
report's (kind, seed) pairs replay exactly.

The default run is sized for CI; ``IVS_FUZZ_SCALE=10`` multiplies every fuzz test's input count for
a longer hunt (and draws fresh random examples instead of the fixed, derandomized ones).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

SCALE_VARIABLE = "IVS_FUZZ_SCALE"
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def scale() -> int:
    """The multiplier from ``$IVS_FUZZ_SCALE`` (1 when unset)."""
    value = int(os.environ.get(SCALE_VARIABLE, "1"))
    if value < 1:
        raise ValueError(f"{SCALE_VARIABLE} must be a positive integer, not {value}")
    return value


def fuzz_settings(max_examples: int) -> Callable[[F], F]:
    """Explicit hypothesis settings for a batch-per-example fuzz test.

    Deterministic by default, as every test here is; a scaled run explores new examples. Sockets are
    shared across examples on purpose (that is what keeps the run fast). No shrinking: a failure
    names the very input that failed (kind, seed and the bytes sent), and shrinking a batch over
    live sockets would take minutes to say the same.
    """
    return settings(max_examples=max_examples, deadline=None, database=None, derandomize=scale() == 1,
                    phases=[Phase.explicit, Phase.generate], print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def seeds(kinds: Sequence[Callable[..., T]]) -> st.SearchStrategy[tuple[Callable[..., T], int]]:
    """(kind, seed) pairs; the test calls ``kind(Junk(seed), ...)`` (a ``map`` here would cost more)."""
    return st.tuples(st.sampled_from(kinds), st.integers(0, 2**32 - 1))


#: Characters that break naive text handling: combining marks, right-to-left text and bidi
#: controls, joiners, astral emoji and flags, NUL and other controls, the BOM, noncharacters,
#: JSON's own escapes, and markup or format strings that must stay inert.
AWKWARD = ("e\u0301", "\u0301", "\u20dd", "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627", "\u202e",
           "\u200f", "\u2066", "\u200d", "\ufe0f", "\U0001f600", "\U0001f469\u200d\U0001f4bb", "\U0001f1fa\U0001f1f8",
           "\x00", "\x1b", "\x7f", "\n", "\r\n", "\t", "\ufeff", "\uffff", "\ufffd", "\U0010ffff", "\"", "\\", "/",
           "<script>", "%s", "{}", "\u00e9", "\u4e2d", " ", "\u2028", "\u2029")
#: Unicode blocks to draw random characters from: ASCII, Latin-1, the rest of the BMP, astral planes.
_RANGES = ((0x20, 0x7e), (0xa0, 0xff), (0x100, 0xd7ff), (0xe000, 0xfffd), (0x10000, 0x10ffff))
#: Numbers at the edges: zero, signs, floating point limits, and integers far beyond 64 bits.
EDGE_NUMBERS = (0, -0.0, 1, -1, 2**31, 2**53 + 1, 2**63, -2**63 - 1, 2**64, 10**300, 1.7976931348623157e308,
                5e-324, 0.1, -1e-7)


class Junk:
    """Awkward values from a seeded ``random.Random``: cheap, and the same for the same seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.random = random.Random(seed)

    def chance(self, probability: float = 0.5) -> bool:
        return self.random.random() < probability

    def pick(self, options: Sequence[T]) -> T:
        return options[self.random.randrange(len(options))]

    def integer(self, low: int, high: int) -> int:
        return self.random.randint(low, high)

    def character(self) -> str:
        low, high = self.pick(_RANGES)
        return chr(self.random.randint(low, high))

    def text(self, min_size: int = 0, max_size: int = 20) -> str:
        """Text of ``min_size``..``max_size`` code points, rich in awkward characters (no lone surrogates)."""
        size = self.random.randint(min_size, max_size)
        pieces: list[str] = []
        while sum(map(len, pieces)) < size:
            pieces.append(self.pick(AWKWARD) if self.chance(0.4) else self.character())
        return "".join(pieces)[:size]

    def broken_text(self, max_size: int = 10) -> str:
        """Text with one lone surrogate (valid only as a JSON ``\\uD800`` escape) somewhere in it."""
        value = self.text(0, max_size)
        at = self.random.randint(0, len(value))
        return value[:at] + chr(self.random.randint(0xD800, 0xDFFF)) + value[at:]

    def number(self) -> int | float:
        roll = self.random.random()
        if roll < 0.4:
            return self.pick(EDGE_NUMBERS)
        if roll < 0.7:
            return self.random.randint(-2**70, 2**70)
        return self.random.uniform(-1e300, 1e300) * self.random.random() ** 40

    def scalar(self) -> Any:
        roll = self.random.randrange(5)
        return (None, True, False)[roll] if roll < 3 else self.number() if roll == 3 else self.text()

    def json(self, depth: int = 3) -> Any:
        """Any standard JSON value (finite numbers), nested up to ``depth`` containers."""
        roll = self.random.random()
        if depth <= 0 or roll < 0.5:
            return self.scalar()
        if roll < 0.75:
            return [self.json(depth - 1) for _ in range(self.random.randint(0, 4))]
        return {self.text(0, 8): self.json(depth - 1) for _ in range(self.random.randint(0, 4))}

    def cased(self, name: str) -> str:
        """``name`` as written, all lower, all upper, or in mixed case."""
        style = self.random.randrange(4)
        if style == 3:
            return "".join(c.upper() if self.chance() else c.lower() for c in name)
        return (name, name.lower(), name.upper())[style]


def has_lone_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def nested(depth: int) -> str:
    """A JSON array nested ``depth`` levels deep, as text (too deep to build as a Python value)."""
    return "[" * depth + "]" * depth


def dumps(value: Any, ascii_only: bool, indent: int | None = None) -> str:
    """JSON text as a client might send it; lone surrogates force ``\\u`` escapes (they have no UTF-8)."""
    text_form = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    return text_form if ascii_only or not has_lone_surrogate(text_form) else json.dumps(value, indent=indent)
