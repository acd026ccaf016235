"""AAC names and readable paths."""

from __future__ import annotations

import hashlib
import unicodedata
import uuid

import pytest
import shortuuid as shortuuid_lib

from phonotheque.errors import InputError
from phonotheque.pack.aac import (
    check_identifier,
    data_collection,
    data_folder_name,
    make_aacid,
    meta_file_name,
    parse_aacid,
    shortuuid,
)
from phonotheque.pack.layout import ReadableEntry, readable_layout, safe_component


@pytest.mark.parametrize("data", [b"", b"abc", b"\xff" * 64, bytes(range(256))])
def test_shortuuid_is_what_the_shortuuid_library_writes(data: bytes) -> None:
    digest = hashlib.sha256(data).digest()
    assert shortuuid(digest) == shortuuid_lib.encode(uuid.UUID(bytes=digest[:16]))
    assert len(shortuuid(digest)) == 22


def test_shortuuid_pads_small_numbers_like_the_library() -> None:
    one = (1).to_bytes(16, "big")
    assert shortuuid(one) == shortuuid_lib.encode(uuid.UUID(int=1)) == "2" * 21 + "3"


def test_aacid_round_trip_and_shape() -> None:
    digest = hashlib.sha256(b"song").digest()
    aacid = make_aacid("music_files_band01", "20260301T120000Z", "42", digest)
    text = str(aacid)
    assert text == f"aacid__music_files_band01__20260301T120000Z__42__{shortuuid(digest)}"
    assert parse_aacid(text) == aacid
    # AAC's own example (no primary id) parses too
    ex = parse_aacid("aacid__gbooks_records__20230808T014342Z__URsJNGy5CjokTsNT6hUmmj")
    assert ex.collection == "gbooks_records" and ex.primary_id == ""


@pytest.mark.parametrize("bad", ["", "Music", "a__b", "_a", "a_", "a-b", "a b", "é", "x" * 101])
def test_collection_names_are_lowercase_identifiers(bad: str) -> None:
    with pytest.raises(InputError):
        check_identifier(bad)


@pytest.mark.parametrize("bad", ["aacid__x", "aacid__Bad__20260301T120000Z__u",
                                 "aacid__x__2026-03-01__u", "notaacid__x__20260301T120000Z__u"])
def test_parse_aacid_refuses_malformed(bad: str) -> None:
    with pytest.raises(InputError):
        parse_aacid(bad)


def test_primary_id_cannot_break_the_separator() -> None:
    with pytest.raises(InputError):
        make_aacid("music", "20260301T120000Z", "a__b", b"\0" * 32)


def test_folder_and_meta_names_follow_aac() -> None:
    coll = data_collection("music", 3)
    assert coll == "music_files_band03"
    assert data_folder_name("phonotheque", coll, "20260301T120000Z", "20260301T120001Z", True) == (
        "phonotheque_data__aacid__music_files_band03__20260301T120000Z--20260301T120001Z")
    assert data_folder_name("phonotheque", coll, "A", "B", False) == (
        "phonotheque_data__music_files_band03__A--B")
    assert meta_file_name("phonotheque", coll, "A", "B") == (
        "phonotheque_meta__aacid__music_files_band03__A--B.jsonl.seekable.zst")


@pytest.mark.parametrize("hostile", [
    "../../etc/passwd", "..", ".", "/", "a/b\\c", "nul\x00byte", "tab\tand\nnewline",
    "\u202eright-to-left", "trailing dots...", " spaces ", "CON", "con.txt", "COM1",
    "é" * 300, "ｆｕｌｌ／ｗｉｄｔｈ", "a:b*c?d\"e<f>g|h",
])
def test_safe_component_is_one_harmless_component(hostile: str) -> None:
    out = safe_component(hostile, "fallback")
    assert out and out not in (".", "..")
    assert "/" not in out and "\\" not in out and "\x00" not in out
    assert not any(unicodedata.category(c) == "Cc" for c in out)
    assert not out.startswith((".", " ")) and not out.endswith((".", " "))
    assert len(out.encode("utf-8")) <= 255
    assert out.split(".")[0].upper() not in ("CON", "COM1", "NUL")
    assert unicodedata.is_normalized("NFC", out)


def test_safe_component_normalises_to_nfc_and_keeps_text() -> None:
    decomposed = "Beyonce\u0301"
    assert safe_component(decomposed, "x") == "Beyoncé"
    assert safe_component("Sigur Rós", "x") == "Sigur Rós"


def test_truncation_never_splits_a_character() -> None:
    out = safe_component("日本" * 200, "x")
    assert len(out.encode()) <= 255
    out.encode("utf-8").decode("utf-8")


def _entry(tid: int, artist: str, release: str, title: str, pos: int = 1, ext: str = ".ogg",
           disc: int = 1, multi: bool = False) -> ReadableEntry:
    return ReadableEntry(tid, artist, release, title, disc, pos, multi, ext)


def test_readable_layout_paths_and_collisions() -> None:
    paths = readable_layout([
        _entry(1, "ABBA", "Gold", "Dancing Queen", 1),
        _entry(2, "abba", "GOLD", "Dancing Queen", 1),  # same place on a case-insensitive disk
        _entry(3, "Slash/Artist", "Rel\x00ease", "../../etc/passwd", 2, ".FLAC"),
        _entry(4, None, None, None, None, ""),
        _entry(5, "X", "Box", "Song", 3, ".opus", disc=2, multi=True),
    ])
    assert paths[1] == "ABBA/Gold/01 Dancing Queen.ogg"
    assert paths[2] == "ABBA/Gold/01 Dancing Queen [2].ogg"
    assert paths[3] == "Slash_Artist/Release/02 .._.._etc_passwd.flac"
    assert paths[4] == "Unknown Artist/Unknown Release/Track 4"
    assert paths[5] == "X/Box/2-03 Song.opus"
    folded = [p.casefold() for p in paths.values()]
    assert len(set(folded)) == len(folded)


def test_readable_layout_is_deterministic_and_length_limited() -> None:
    entries = [_entry(i, "Å" * 300, "R" * 300, "T" * 300, i) for i in range(1, 5)]
    a, b = readable_layout(entries), readable_layout(list(entries))
    assert a == b
    for p in a.values():
        assert all(len(part.encode()) <= 255 for part in p.split("/"))
    assert len(set(a.values())) == 4


@pytest.mark.parametrize("name", ["COM¹", "com²", "LPT³", "CONIN$", "conout$", "COM0",
                                  "LPT¹.flac", "CON .txt", "nul"])
def test_every_windows_device_name_is_suffixed(name: str) -> None:
    out = safe_component(name, "x")
    stem = out.partition(".")[0].rstrip(" ")
    assert stem.endswith("_"), out


def test_readable_paths_leave_room_for_sidecars_and_stay_within_the_path_limit() -> None:
    from phonotheque.pack.layout import MAX_PATH_CHARS, SIDECAR_RESERVE

    folder = "phonotheque-w0-music_files_band1-20260101T000000Z--20260101T000000Z"
    entries = [
        _entry(1, "A" * 300, "R" * 300, "é" * 300, 1, ".flac"),
        _entry(2, "A" * 300, "R" * 300, "é" * 300, 1, ".flac"),  # collides: gets [2]
        _entry(3, "日本" * 100, "Ü" * 200, "🎵" * 200, 3, ".opus"),
        _entry(4, "Short", "Name", "x" * 1000, 4, ".ogg"),
    ]
    paths = readable_layout(entries, folder)
    assert len(set(paths.values())) == 4 and paths[2].endswith(" [2].flac")
    for p in paths.values():
        name = p.rsplit("/", 1)[1]
        assert len((name + ".zstdpatch").encode()) <= 255, name
        whole = f"{folder}/{p}.zstdpatch"
        assert len(whole.encode("utf-16-le")) // 2 <= MAX_PATH_CHARS, (len(whole), whole)
        assert SIDECAR_RESERVE >= len(".zstdpatch")
    assert paths[4].startswith("Short/Name/04 xxx")
