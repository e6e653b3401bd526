"""Kubernetes quantities parsed exactly, rounded up to whole GiB."""

from __future__ import annotations

from fractions import Fraction

import pytest

from provisioner.k8s.quantity import QuantityError, gib_ceil, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("0", 0),
        ("1500M", 1_500_000_000),
        ("1Gi", 2**30),
        ("0.5Gi", 2**29),
        ("2049Mi", 2049 * 2**20),
        ("1e9", 10**9),
        ("1E3", 1000),
        ("1e-3", Fraction(1, 1000)),
        ("1E", 10**18),
        ("2Ei", 2 * 2**60),
        ("100m", Fraction(1, 10)),
        ("1k", 1000),
        ("1Ki", 1024),
        ("3Ti", 3 * 2**40),
        ("4P", 4 * 10**15),
        ("5T", 5 * 10**12),
        ("1.5G", 1_500_000_000),
        (".5Ki", 512),
        ("1.", 1),
        ("+1Mi", 2**20),
        ("-1Gi", -(2**30)),
        ("0.1Gi", Fraction(2**30, 10)),
        (7, 7),
    ],
)
def test_parse(text: str | int, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    ["", " 1Gi", "1Gi ", "1 Gi", "1GB", "1gi", "1K", "Gi", "abc", "1e", "1.2.3", "--1", "1e1Gi",
     "1e99999", "1" * 100, "\u0661"],
)  # fmt: skip
def test_garbage_is_rejected(text: str) -> None:
    with pytest.raises(QuantityError, match=r"quantity|out of range"):
        parse_quantity(text)


@pytest.mark.parametrize("value", [None, 1.5, True, [1]])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "gib"),
    [
        ("1500M", 2),
        ("1Gi", 1),
        ("1", 1),
        ("0.5Gi", 1),
        ("2049Mi", 3),
        ("1e9", 1),
        ("1073741824", 1),
        ("1073741825", 2),
        ("10Gi", 10),
        ("10G", 10),
        ("11G", 11),
        ("1Ti", 1024),
        ("0.1Gi", 1),
        ("3.1Gi", 4),
    ],
)
def test_gib_ceil(text: str, gib: int) -> None:
    assert gib_ceil(text) == gib


def test_gib_ceil_accepts_a_fraction() -> None:
    assert gib_ceil(Fraction(3 * 2**30 + 1)) == 4
