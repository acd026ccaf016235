import json

import pytest

from phonotheque import isrc
from phonotheque.errors import InvalidISRC, PhonoError
from tests.conftest import DATA

VECTORS = json.loads((DATA / "isrc" / "vectors.json").read_text())


@pytest.mark.parametrize("raw", VECTORS["musicbrainz_is_valid_isrc"]["valid"])
def test_musicbrainz_valid(raw: str) -> None:
    assert isrc.is_valid(raw)


@pytest.mark.parametrize("raw", VECTORS["musicbrainz_is_valid_isrc"]["invalid"])
def test_musicbrainz_invalid(raw: str) -> None:
    with pytest.raises(InvalidISRC) as exc:
        isrc.parse(raw)
    assert isinstance(exc.value, PhonoError)
    assert "invalid ISRC" in str(exc.value)


@pytest.mark.parametrize("raw,expected", VECTORS["musicbrainz_format_isrc"])
def test_musicbrainz_format(raw: str, expected: str) -> None:
    assert isrc.parse(raw).code == expected


@pytest.mark.parametrize("raw,expected", sorted(VECTORS["stdnum_validate"].items()))
def test_stdnum_valid(raw: str, expected: str) -> None:
    assert isrc.parse(raw).code == expected


@pytest.mark.parametrize("raw,expected", sorted(VECTORS["stdnum_format"].items()))
def test_hyphenated(raw: str, expected: str) -> None:
    assert isrc.parse(raw).hyphenated == expected


@pytest.mark.parametrize("raw,error", sorted(VECTORS["stdnum_errors"].items()))
def test_stdnum_errors(raw: str, error: str) -> None:
    # stdnum refuses unknown countries (InvalidComponent); we keep them, flagged.
    if error == "InvalidComponent":
        code = isrc.parse(raw)
        assert code.known_country is False
    else:
        assert not isrc.is_valid(raw)


def test_known_country_flag() -> None:
    assert isrc.parse("GBAAA9900303").known_country
    assert isrc.parse(" us-pr3 73 00012 ").code == "USPR37300012"


@pytest.mark.parametrize("raw", [
    "USPR3730001",        # 11 characters: one digit short
    "USPR373000",         # 10
    "US-PR3-73-0001",     # 11 once the hyphens are gone
    " USPR3730001 ",
    "uspr3730001",
])
def test_eleven_characters_and_fewer_are_refused(raw: str) -> None:
    assert not isrc.is_valid(raw)
    with pytest.raises(InvalidISRC) as exc:
        isrc.parse(raw)
    assert f"length {len(isrc.normalise(raw))}, expected 12" in str(exc.value)


@pytest.mark.parametrize("raw", ["USPR37300012\n", "USPR37300012\r\n", "USPR37300012 ",
                                 "\nUSPR37300012", "USPR37300012\t"])
def test_surrounding_whitespace_never_reaches_the_code(raw: str) -> None:
    """The fast path for already-normal codes must match the whole string: `$` alone
    also matches before a final newline, which would keep the newline in the code."""
    code = isrc.parse(raw)
    assert code.code == "USPR37300012" and str(code) == "USPR37300012"
    assert code.hyphenated == "US-PR3-73-00012"


def test_thirteen_characters_are_refused() -> None:
    with pytest.raises(InvalidISRC, match="length 13, expected 12"):
        isrc.parse("USPR373000123")
