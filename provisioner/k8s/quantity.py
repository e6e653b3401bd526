"""Kubernetes resource quantities (``1500M``, ``1Gi``, ``1e9``), parsed exactly.

Claims ask for sizes as quantities while Heketi wants whole GiB. Parsing into a
``Fraction`` keeps ``1500M`` and ``0.1Gi`` exact, so rounding up to GiB never
gives one GiB too many or too few because of binary floating point.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["GIB", "QuantityError", "gib_ceil", "parse_quantity"]

GIB = 2**30

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, Fraction | int] = {
    "m": Fraction(1, 1000), "": 1, "k": 10**3, "M": 10**6, "G": 10**9,
    "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip
# The grammar of k8s.io/apimachinery resource.Quantity. The exponent alternative
# comes first so that "1E3" is 1000 while a bare "1E" is one exa.
_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE]?)"
)
# Bounds that keep a hostile "1e999999999" from building a gigantic integer.
_MAX_TEXT = 64
_MAX_EXPONENT = 40


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse_quantity(text: str | int) -> Fraction:
    """Return the exact value of a quantity such as ``"1500M"`` or ``"0.5Gi"``."""
    if isinstance(text, bool):
        raise QuantityError("not a quantity: a boolean")
    if isinstance(text, int):
        return Fraction(text)
    if not isinstance(text, str):
        raise QuantityError(f"not a quantity: {type(text).__name__}")
    shown = text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."
    match = _QUANTITY.fullmatch(text) if len(text) <= _MAX_TEXT else None
    if match is None:
        raise QuantityError(f'"{shown}" is not a quantity (expected e.g. "10Gi", "1500M", "1e9")')
    value = Fraction(match["number"])
    suffix = match["suffix"]
    if suffix in _BINARY:
        value *= _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= _DECIMAL[suffix]
    else:  # a decimal exponent such as "e9" or "E-3"
        exponent = int(suffix[1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(f'"{shown}" is out of range')
        value *= Fraction(10) ** exponent
    return -value if match["sign"] == "-" else value


def gib_ceil(quantity: Fraction | str | int) -> int:
    """Whole GiB needed to hold ``quantity`` bytes: rounded up, at least 1."""
    value = quantity if isinstance(quantity, Fraction) else parse_quantity(quantity)
    return max(1, math.ceil(value / GIB))
