"""Flag types every command shares: one rule for numbers a user types."""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A float flag within optional bounds that refuses NaN and infinities (NaN passes click's own range checks:
    every comparison with it is false), so no threshold, rate or budget can silently become NaN.

    >>> FiniteFloat(0, 1).convert("0.5", None, None)
    0.5
    """

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number
