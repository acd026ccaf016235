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
    "E": 1000**6, "EB": 1000**6,
    "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4, "PIB": 1024**5,
    "EIB": 1024**6,
}
_SIZE = re.compile(r"^\s*([-+]?)\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")
#: The largest size any option takes: what SQLite and DuckDB store in a signed 64-bit
#: integer (a budget, a memory limit ...). A larger one is refused here, before a
#: message tries to print a number of thousands of digits (Python refuses to).
MAX_SIZE = 2**63 - 1


def parse_size(text: str, maximum: int = MAX_SIZE) -> int:
    """``"300TB"`` -> 300·10¹², ``"1.5GiB"`` -> 1.5·2³⁰ bytes (decimal and binary units).

    A negative size, or one above ``maximum`` bytes, is an :class:`InputError` saying so.
    """
    m = _SIZE.match(text)
    unit = m.group(3).upper() if m else ""
    if m is None or unit not in _UNITS:
        raise InputError(text, "not a size (examples: 300TB, 1.5GiB, 750MB, 123456)")
    try:
        value = Decimal(m.group(2)) * _UNITS[unit]
    except InvalidOperation as exc:  # pragma: no cover - the pattern only lets digits through
        raise InputError(text, "not a size") from exc
    shown = shorten(text)
    if m.group(1) == "-" and value:
        raise InputError(shown, "a size cannot be negative")
    if value > maximum:
        raise InputError(shown, f"above the maximum of {format_binary(maximum)}")
    return int(value)


def shorten(text: str) -> str:
    """``text`` as a message shows a value: whole up to 40 characters, else its start and end
    (a number of thousands of digits would fill the screen)."""
    return text if len(text) <= 40 else f"{text[:20]}...{text[-12:]}"


def format_binary(n: int) -> str:
    """Bytes in binary units, three significant digits: ``64 MiB``, ``1 EiB`` (any int)."""
    for unit, shift in (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20),
                        ("KiB", 10)):
        if abs(n) >= 1 << shift:
            shown = f"{Decimal(n) / (1 << shift):.3g}"
            if "." in shown and "E" not in shown.upper():
                shown = shown.rstrip("0").rstrip(".")
            return f"{shown} {unit}"
    return f"{n} B"


def format_size(n: float) -> str:
    """Bytes in decimal units, three significant digits: ``1.23 TB``."""
    for unit, factor in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{int(n)} B"
