"""Folder planning: bands first, caps on files and bytes."""

from __future__ import annotations

import pytest

from phonotheque.errors import InputError
from phonotheque.pack.bands import Caps, Member, plan_folders


def _m(i: int, band: int, nbytes: int = 10, nfiles: int = 1) -> Member:
    return Member(i, i, band, i, nfiles, nbytes)


def test_folders_hold_one_band_each_most_popular_first() -> None:
    members = [_m(1, 1), _m(2, 1), _m(3, 2), _m(4, 2), _m(5, 2), _m(6, 5)]
    plan = plan_folders(members, Caps(max_files=2, max_bytes=10**6))
    assert [(band, [m.track_id for m in ms]) for band, ms in plan] == [
        (1, [1, 2]), (2, [3, 4]), (2, [5]), (5, [6])]


def test_byte_cap_and_patch_files_count() -> None:
    members = [_m(1, 1, 40), _m(2, 1, 40, nfiles=2), _m(3, 1, 40), _m(4, 1, 500)]
    plan = plan_folders(members, Caps(max_files=3, max_bytes=100))
    assert [[m.track_id for m in ms] for _b, ms in plan] == [[1, 2], [3], [4]]
    for _b, ms in plan:
        assert sum(m.nfiles for m in ms) <= 3
        assert sum(m.nbytes for m in ms) <= 100 or len(ms) == 1  # an oversized file stands alone


def test_unsorted_bands_are_refused() -> None:
    with pytest.raises(InputError):
        plan_folders([_m(1, 2), _m(2, 1)], Caps())


@pytest.mark.parametrize("caps", [dict(max_files=0), dict(max_bytes=0)])
def test_caps_must_be_positive(caps: dict[str, int]) -> None:
    with pytest.raises(InputError):
        Caps(**caps)
