"""ISRC parsing and validation.

Decision (documented in README): we follow MusicBrainz and accept any string
matching ``^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$`` after removing spaces and hyphens and
upper-casing. python-stdnum additionally refuses country codes that are not
ISO 3166-1 alpha-2 or one of the IFPI-allocated special prefixes; we keep such
ISRCs (real catalogues contain them, e.g. ``XX``-prefixed temporary codes) but
flag them with ``known_country=False`` so reports can list them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phonotheque.errors import InvalidISRC

_PATTERN = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
_STRIP = re.compile(r"[\s\-]+")
# The start of a code: country, registrant and 1-6 digits of year and designation. At
# least one digit, so that a five-letter word ("HELLO") is not taken for one.
_PREFIX = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{1,6}$")

# ISO 3166-1 alpha-2 codes plus the prefixes the ISRC agency allocates outside
# ISO (QM/QZ/ZZ for the US and international registrants, CS/YU for former
# states, FX for France, UK used historically).
_COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL
    BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV
    CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD
    GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM
    IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK
    LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW
    MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR
    PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS
    ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY
    UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    QM QN QO QZ ZZ CS YU FX UK TC
    """.split()
)

#: The country prefixes that make ``known_country`` true (the columnar reader's SQL uses it).
COUNTRIES = _COUNTRIES


@dataclass(frozen=True, slots=True)
class ISRC:
    """A validated, normalised ISRC."""

    code: str
    known_country: bool

    def __str__(self) -> str:
        return self.code

    @property
    def hyphenated(self) -> str:
        """The presentation form ``CC-XXX-YY-NNNNN``."""
        c = self.code
        return f"{c[:2]}-{c[2:5]}-{c[5:7]}-{c[7:]}"


def normalise(raw: str) -> str:
    """Strip spaces and hyphens and upper-case; does not validate."""
    return _STRIP.sub("", raw).upper()


def parse(raw: str) -> ISRC:
    """Normalise and validate ``raw``; raise :class:`InvalidISRC` if it is not an ISRC."""
    if not isinstance(raw, str):
        raise InvalidISRC(repr(raw), "ISRC must be a string")
    if _PATTERN.fullmatch(raw):  # already normal, the common case in dumps: skip the rewrite
        return ISRC(raw, raw[:2] in _COUNTRIES)
    code = normalise(raw)
    if not _PATTERN.match(code):
        if len(code) != 12:
            problem = f"invalid ISRC (length {len(code)}, expected 12)"
        else:
            problem = "invalid ISRC (expected 2 letters, 3 alphanumerics, 7 digits)"
        raise InvalidISRC(repr(raw), problem)
    return ISRC(code, code[:2] in _COUNTRIES)


def prefix(raw: str) -> str | None:
    """The normalised start of an ISRC (6 to 11 characters: country, registrant, at least
    one digit) if ``raw`` is one, else None. A whole code is not a prefix: see :func:`parse`."""
    code = normalise(raw)
    return code if _PREFIX.fullmatch(code) else None


def is_valid(raw: str) -> bool:
    """True if ``raw`` normalises to a well-formed ISRC."""
    try:
        parse(raw)
    except InvalidISRC:
        return False
    return True
