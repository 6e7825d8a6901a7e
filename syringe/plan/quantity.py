"""Kubernetes resource quantities, just enough to add requests up and to size a VM."""

from __future__ import annotations

import re

_SUFFIX = {
    "": 1,
    "m": 0.001,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")


def parse_quantity(text: str) -> float:
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2) or ""]


def millicores(text: str) -> int:
    return round(parse_quantity(text) * 1000)


def mebibytes(text: str) -> int:
    return max(1, round(parse_quantity(text) / 2**20))


def format_millicores(value: int) -> str:
    return f"{value // 1000}" if value % 1000 == 0 else f"{value}m"


def format_mebibytes(value: int) -> str:
    return f"{value // 1024}Gi" if value % 1024 == 0 else f"{value}Mi"
