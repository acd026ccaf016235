"""Byte sizes as people write them (300TB, 1.5GiB) and as we print them."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from phonotheque.errors import InputError

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1000, "KB": 1000, "M": 1000**2, "MB": 1000**2, "G": 1000**3, "GB": 1000**3,
    "T": 1000**4, "TB": 1000**4, "P": 1000**5, "PB": 1000**5,
    "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4, "PIB": 1024**5,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """``"300TB"`` -> 300·10¹², ``"1.5GiB"`` -> 1.5·2³⁰ bytes (decimal and binary units)."""
    m = _SIZE.match(text)
    unit = m.group(2).upper() if m else ""
    if m is None or unit not in _UNITS:
        raise InputError(text, "not a size (examples: 300TB, 1.5GiB, 750MB, 123456)")
    try:
        value = Decimal(m.group(1)) * _UNITS[unit]
    except InvalidOperation as exc:  # pragma: no cover - the pattern only lets digits through
        raise InputError(text, "not a size") from exc
    return int(value)


def format_size(n: float) -> str:
    """Bytes in decimal units, three significant digits: ``1.23 TB``."""
    for unit, factor in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{int(n)} B"
