"""Selection on small real and hand-made catalogues, with exact expectations."""

from __future__ import annotations

import math

import pytest

from phonotheque.errors import InputError
from phonotheque.model import Exclusion
from phonotheque.progress import ProgressEvent
from phonotheque.select import (
    BandScheme,
    SelectOptions,
    ledger_entries,
    parse_size,
    record_outcomes,
    select,
)
from phonotheque.workspace import Workspace
from tests.select_engines import engine  # noqa: F401  (every test on every engine)
from tests.select_helpers import (
    T,
    add_audio_file,
    lb_top_recordings,
    lb_top_records,
    lb_user_records,
    lb_user_top_recordings,
    records,
    selected_keys,
    statuses,
    tid,
)

# ListenBrainz's sitewide top recordings, most listened first (recording MBID, listens).
LB_ORDER = [
    ("9e2ad5bc-c6f9-40d2-a36f-3122ee2072a3", 3728693),
    ("9f9cf187-d6f9-437f-9d98-d59cdbd52757", 2968749),
    ("d201070b-ff15-49ce-877b-f91032617faf", 2444911),
    ("5004ea88-6c7e-4096-a89f-b24e358408ee", 2235972),
    ("0cdc9b5b-b16b-4ff1-9f16-5b4ba76f1c17", 2069050),
    ("c5d69e02-d702-40b9-ac1e-aa2dc2bdfed2", 2024362),
    ("6cd184a3-73a4-478b-8f5c-e31b64e6602a", 1846389),
    ("13dd61c7-ce73-4e97-9f0c-9f0e53144411", 1420725),
    ("cbec6fa8-a950-471d-b92e-f0c39255f488", 1331113),
    ("0e6871fc-d16f-4cc8-86fc-c8d368f906d4", 1189614),
    ("8a15bbc9-e742-42ed-8bd9-089e20059922", 1104525),
    ("e9759a5a-5efc-4030-8168-f08790ae4ddc", 981533),
    ("864c7424-c9ab-481e-a9c0-ad986e646c67", 872652),
    ("27a32525-c99d-47d3-8f58-58e924313136", 600750),
    ("3f02f615-80d3-48cb-9a8f-4f892c9a1f1c", 538088),
    ("a07d406f-d430-46a1-b233-6eb457f51f76", 512585),
    ("8c0fcc5c-e02b-4c31-bb8f-7bba1d33861a", 465867),
    ("9e7428c9-b25e-4e67-aff3-e8273bc7d008", 431521),
    ("6c88afd6-5f7b-4db3-afca-b7547b2bf3de", 367825),
    ("0db19c75-0626-4f82-9f2b-38eca6cf589a", 326627),
]
LB_TOTAL = 27_461_551
ORIG_240S = 240_000 * 900_000 // 8000  # assumed duration × assumed original bitrate
OPUS_240S = 240_000 * 75_000 // 8000


@pytest.fixture
def lb(ws: Workspace) -> Workspace:
    with ws.store() as s:
        s.write(lb_top_records())
    return ws


def test_data_is_what_the_expectations_assume() -> None:
    rows = lb_top_recordings()
    assert sum(r[2] for r in rows) == LB_TOTAL
    assert sorted(((r[1], r[2]) for r in rows), key=lambda x: -x[1]) == LB_ORDER


def test_listenbrainz_ranking_cut_tiers_bands(lb: Workspace) -> None:
    # ceil(0.9 · 27,461,551) = 24,715,396: ranks 1..13 reach 24,218,288, 1..14 reach 24,819,038.
    report = select(lb, SelectOptions(coverage=0.9))
    assert report.total_listens == LB_TOTAL
    assert report.coverage_cut == 14 and report.selected == 14
    assert report.covered_listens == 24_819_038
    assert report.covered_share == pytest.approx(24_819_038 / LB_TOTAL)
    assert report.target_reached and not report.budget_stopped
    # original_share 0.5: ceil(0.5 · total) = 13,730,776 is reached at rank 6 (15,471,737)
    assert report.tier_boundary == 6
    assert report.tiers["original"].tracks == 6
    assert report.tiers["original"].est_bytes == 6 * ORIG_240S
    assert report.tiers["reencode"].tracks == 8
    assert report.tiers["reencode"].est_bytes == 8 * OPUS_240S
    assert report.est_bytes == 6 * ORIG_240S + 8 * OPUS_240S
    # decade bands: 10⁶..10⁷ listens (ranks 1..11), then 10⁵..10⁶ (ranks 12..14)
    assert [(b.band, b.tracks) for b in report.bands] == [(1, 11), (2, 3)]
    # none of these tracks has a held file: selected, they are the wanted list
    assert report.statuses == {"skipped_low_priority": 6, "wanted": 14}
    with lb.store() as s:
        assert selected_keys(s) == [k for k, _ in LB_ORDER[:14]]
        rows = s.query("SELECT rank, tier, est_bytes, cum_bytes, cum_share, band FROM selection "
                       "ORDER BY rank")
        cum = 0
        running = 0
        for (rank, tier, est, cum_bytes, share, band), (_, n) in zip(rows, LB_ORDER, strict=False):
            cum += n
            running += est
            assert tier == ("original" if rank <= 6 else "reencode")
            assert cum_bytes == running
            assert share == pytest.approx(cum / LB_TOTAL)
            assert band == (1 if rank <= 11 else 2)
        st = statuses(s)
        for key, _ in LB_ORDER[14:]:
            assert st[key] == ("skipped_low_priority", "beyond_coverage")
        assert s.scalar("SELECT count(*) FROM ledger") == s.scalar("SELECT count(*) FROM track")
        run = s.query("SELECT options, result FROM select_run")
        assert len(run) == 1 and '"coverage":0.9' in run[0]["options"]


def test_default_coverage_needs_every_listened_track(lb: Workspace) -> None:
    # ceil(0.996 · total) = 27,351,705 > 27,134,924 (ranks 1..19): all 20 are needed
    report = select(lb)
    assert report.selected == 20 and report.covered_share == 1.0


def test_quantile_bands_and_tail_threshold(lb: Workspace) -> None:
    report = select(lb, SelectOptions(coverage=1.0, bands=BandScheme.parse("quantiles:3"),
                                      tail_threshold=2_000_000))
    assert [(b.band, b.tracks) for b in report.bands] == [(1, 7), (2, 7), (3, 6)]
    # 6 recordings have ≥ 2,000,000 listens
    assert report.tiers["original"].tracks == 6


def test_budget_cuts_mid_band(lb: Workspace) -> None:
    # 6 originals fit in 6·ORIG; three more re-encodes fit in the slack, the 10th does not
    budget = 6 * ORIG_240S + 3 * OPUS_240S + OPUS_240S // 2
    report = select(lb, SelectOptions(coverage=0.9, budget_bytes=budget))
    assert report.budget_stopped and not report.target_reached
    assert report.selected == 9
    assert report.est_bytes == 6 * ORIG_240S + 3 * OPUS_240S <= budget
    assert report.covered_listens == sum(n for _, n in LB_ORDER[:9])
    # band 1 (ranks 1..11) was cut after rank 9
    assert [(b.band, b.tracks) for b in report.bands] == [(1, 9)]
    with lb.store() as s:
        st = statuses(s)
    assert [st[k][1] for k, _ in LB_ORDER[9:14]] == ["over_budget"] * 5
    assert [st[k][1] for k, _ in LB_ORDER[14:]] == ["beyond_coverage"] * 6
    assert report.statuses == {"skipped_low_priority": 11, "wanted": 9}


def test_budget_zero_selects_nothing(lb: Workspace) -> None:
    report = select(lb, SelectOptions(budget_bytes=0))
    assert report.selected == 0 and report.budget_stopped and report.covered_share == 0.0
    assert report.statuses == {"skipped_low_priority": 20}


def test_exclusion_is_never_selected(lb: Workspace) -> None:
    top = LB_ORDER[0][0]
    with lb.store() as s:
        s.add_exclusion(Exclusion("mbid", top, "takedown request"))
    report = select(lb, SelectOptions(coverage=1.0))
    assert report.excluded == 1 and report.excluded_listens == LB_ORDER[0][1]
    # the denominator is the listens of what may be archived
    assert report.total_listens == LB_TOTAL - LB_ORDER[0][1]
    assert report.selected == 19 and report.covered_share == 1.0
    with lb.store() as s:
        assert top not in selected_keys(s)
        assert selected_keys(s)[0] == LB_ORDER[1][0]
        assert statuses(s)[top] == ("excluded", "exclusion")


def test_shared_isrc_transitive_group(ws: Workspace) -> None:
    # a–b share X, b–c share Y: one work; a is its most listened track
    tracks = [
        T("a", 100, isrcs=("GBAAA9900001",)),
        T("b", 30, isrcs=("GBAAA9900001", "GBAAA9900002")),
        T("c", 50, isrcs=("GBAAA9900002",)),
        T("d", 60, isrcs=("GBAAA9900003",)),
    ]
    with ws.store() as s:
        s.write(records(tracks))
        # the group counts 180 of 240 listens: coverage 0.75 needs only it
        report = select(s, SelectOptions(coverage=0.75))
        assert report.works == 2 and report.isrc_duplicates == 2
        assert selected_keys(s) == ["a"]
        assert report.covered_listens == 180
        st = statuses(s)
        assert st["b"] == ("skipped_isrc_has_download", "selected track a has the same ISRC")
        assert st["c"] == ("skipped_isrc_has_download", "selected track a has the same ISRC")
        assert st["d"] == ("skipped_low_priority", "beyond_coverage")
        # at full coverage d joins, b and c still never do
        select(s, SelectOptions(coverage=1.0))
        assert selected_keys(s) == ["a", "d"]
        assert s.scalar("SELECT cum_share FROM selection WHERE rank = 1") == 0.75


def test_shared_isrc_with_excluded_track(ws: Workspace) -> None:
    # a recording taken down by MBID: its ISRC twin is archived instead
    mbid = "4b5bf07c-782f-4324-9242-bf56e4ba1e57"
    tracks = [T("a", 100, isrcs=("GBAAA9900001",), mbid=mbid),
              T("b", 30, isrcs=("GBAAA9900001",))]
    with ws.store() as s:
        s.write(records(tracks))
        s.add_exclusion(Exclusion("mbid", mbid, "takedown"))
        select(s, SelectOptions(coverage=1.0))
        assert selected_keys(s) == ["b"]
        assert statuses(s)["a"][0] == "excluded"


def test_ties_broken_by_audio_then_key(ws: Workspace) -> None:
    rows = lb_user_top_recordings()
    assert sum(r["listen_count"] for r in rows) == 498
    ones = sorted(r["recording_mbid"] for r in rows if r["listen_count"] == 1)
    assert len(ones) == 31
    with ws.store() as s:
        s.write(lb_user_records())
        # the 69 tracks with ≥ 2 listens hold 467; ceil(0.9638 · 498) = 480 needs 13 of the 31 ties
        report = select(s, SelectOptions(coverage=0.9638, priority_threshold=2))
        assert report.selected == 82
        tail = selected_keys(s)[69:]
        assert tail == ones[:13]
        # a held file moves a tied track ahead of the others
        from phonotheque.model import SourceAudio

        s.write([SourceAudio(path="/music/x.flac", size=5_000_000, mtime_ns=0, mbid=ones[-1],
                             duration_ms=200_000)])
        select(s, SelectOptions(coverage=0.9638, priority_threshold=2))
        assert selected_keys(s)[69:] == [ones[-1], *ones[:12]]


def test_zero_listen_secondary_priority(ws: Workspace) -> None:
    tracks = [
        T("hit", 1000, artist="star", release="album"),
        T("deep-cut", 0, artist="star", release="album"),  # popular artist and release
        T("b-side", 0, artist="star", release="single"),  # popular artist only
        T("unknown", 0, artist="nobody", release="demo"),
    ]
    with ws.store() as s:
        s.write(records(tracks))
        report = select(s, SelectOptions(coverage=1.0, priority_threshold=0.4))
        d = 2 * math.log1p(1000)
        prio = {r[0]: r[1] for r in s.query(
            "SELECT t.key, s.priority FROM selection s JOIN track t ON t.id = s.track_id")}
        assert prio["deep-cut"] == pytest.approx((math.log1p(1000) + math.log1p(1000)) / d)
        assert prio["b-side"] == pytest.approx(math.log1p(1000) / d)  # 0.5
        assert selected_keys(s) == ["hit", "deep-cut", "b-side"]
        assert report.selected_zero_listen == 2
        assert statuses(s)["unknown"] == ("skipped_low_priority", "below_priority_threshold")
        # zero-listen works sit in the band after the last listened one
        assert s.scalar("SELECT band FROM selection WHERE priority IS NOT NULL") == 2
        select(s, SelectOptions(coverage=1.0, priority_threshold=0.75))
        assert selected_keys(s) == ["hit", "deep-cut"]


def test_estimates_use_held_files(ws: Workspace) -> None:
    tracks = [
        T("big", 100, audio_size=30_000_000, duration_ms=180_000),
        T("small", 10, audio_size=1_000_000, duration_ms=180_000),  # smaller than Opus would be
        T("none", 5, duration_ms=None),
    ]
    with ws.store() as s:
        s.write(records(tracks))
        select(s, SelectOptions(coverage=1.0, original_share=0.5))
        est = {r[0]: (r[1], r[2]) for r in s.query(
            "SELECT t.key, s.tier, s.est_bytes FROM selection s JOIN track t ON t.id = s.track_id")}
    assert est["big"] == ("original", 30_000_000)
    assert est["small"] == ("reencode", 1_000_000)
    assert est["none"] == ("reencode", OPUS_240S)


def test_reselect_keeps_audio_outcomes(lb: Workspace) -> None:
    first, second, third = (k for k, _ in LB_ORDER[:3])
    with lb.store() as s:
        select(s, SelectOptions(coverage=0.9))
        t1, t2 = tid(s, first), tid(s, second)
        add_audio_file(s, t1)
        assert record_outcomes(s, [(t1, "success", "sha ok"), (t2, "error_decode", "bad frame")]) == 2
        with pytest.raises(InputError):
            record_outcomes(s, [(t1, "skipped_low_priority", None)])
        before = s.scalar("SELECT updated_at FROM ledger WHERE track_id = ?", (t1,))
        # other options, both still selected: outcomes kept, untouched
        select(s, SelectOptions(coverage=0.5, bands=BandScheme.parse("quantiles:2")))
        st = statuses(s)
        assert st[first] == ("success", "sha ok")
        assert st[second] == ("error_decode", "bad frame")
        assert st[third] == ("wanted", "no source audio file held")
        assert s.scalar("SELECT updated_at FROM ledger WHERE track_id = ?", (t1,)) == before
        # deselected: skipped, but the audio file row stays and the detail says so
        select(s, SelectOptions(coverage=0.0))
        st = statuses(s)
        assert st[first] == ("skipped_low_priority", "beyond_coverage; audio_file kept")
        assert st[second] == ("skipped_low_priority", "beyond_coverage")
        assert s.scalar("SELECT count(*) FROM audio_file") == 1
        assert s.scalar("SELECT count(*) FROM selection") == 0
        # selected again: the produced file counts as success, the failed one is retried
        select(s, SelectOptions(coverage=0.9))
        st = statuses(s)
        assert st[first] == ("success", "audio_file present")
        assert st[second] == ("wanted", "no source audio file held")
        # excluded after success: excluded wins, the file row is still there
        s.add_exclusion(Exclusion("mbid", first, "takedown"))
        select(s, SelectOptions(coverage=0.9))
        assert statuses(s)[first] == ("excluded", "exclusion; audio_file kept")


def test_ledger_entries_filters(lb: Workspace) -> None:
    select(lb, SelectOptions(coverage=0.9))
    with lb.store() as s:
        rows = ledger_entries(s, "wanted", limit=3)
        assert [r.key for r in rows] == [k for k, _ in LB_ORDER[:3]]
        assert [r.rank for r in rows] == [1, 2, 3]
        assert rows[0].listens == LB_ORDER[0][1]
        assert len(ledger_entries(s, "skipped_*", limit=None)) == 6
        assert ledger_entries(s, "excluded") == []
        # paging runs through the selected (by rank) into the others (by track id)
        page = ledger_entries(s, None, limit=4, offset=12)
        assert [r.rank for r in page] == [13, 14, None, None]
        unselected = sorted(tid(s, k) for k, _ in LB_ORDER[14:])
        assert [r.track_id for r in page[2:]] == unselected[:2]
        page = ledger_entries(s, "skipped_low_priority", limit=10, offset=4)
        assert [r.track_id for r in page] == unselected[4:]
        assert len(ledger_entries(s, None, limit=None)) == 20


def test_empty_catalogue(ws: Workspace) -> None:
    report = select(ws)
    assert report.tracks == 0 and report.selected == 0 and report.covered_share == 1.0
    assert report.bands == [] and report.statuses == {}


def test_no_listen_data_takes_every_held_track_as_original(ws: Workspace) -> None:
    # Someone archiving their own files: no listens at all. (Before issue 11 this
    # selected nothing with the default threshold, or re-encoded everything.)
    with ws.store() as s:
        s.write(records([T("x", audio_size=5_000_000), T("y", audio_size=7_000_000),
                         T("z")]))  # z: catalogue only, no file
        report = select(s)
        assert report.mode == "no_listens" and report.held_only
        assert report.selected == 2 and selected_keys(s) == ["x", "y"]
        assert report.tiers["original"].tracks == 2 and report.tiers["reencode"].tracks == 0
        assert report.est_bytes == 12_000_000
        assert [b.band for b in report.bands] == [1]
        assert statuses(s) == {"x": ("todo", None), "y": ("todo", None),
                               "z": ("skipped_low_priority", "not_held")}
        assert report.target_reached  # no coverage target applies
        assert report.summary()["mode"] == "no_listens"
        # an explicit tier rule still applies
        report = select(s, SelectOptions(original_share=0.0))
        assert report.selected == 2 and report.tiers["reencode"].tracks == 2
        # no held file either: nothing to select
        s.conn.execute("DELETE FROM source_audio")
        assert select(s).selected == 0


def test_all_takes_every_held_track_on_a_listened_catalogue(ws: Workspace) -> None:
    tracks = [T("hit", 100, audio_size=4_000_000), T("mid", 10), T("low", 1, audio_size=2),
              T("zero", audio_size=3)]
    with ws.store() as s:
        s.write(records(tracks))
        report = select(s, SelectOptions(coverage=0.5))
        assert report.mode == "coverage" and selected_keys(s) == ["hit", "zero"]
        report = select(s, SelectOptions(coverage=0.5, take_all=True))
        assert report.mode == "all"
        assert selected_keys(s) == ["hit", "low", "zero"]  # rank order, held only
        assert report.tiers["original"].tracks == 3
        assert report.covered_listens == 101 and report.total_listens == 111
        assert statuses(s)["mid"] == ("skipped_low_priority", "not_held")
        # the budget still stops it, in rank order
        report = select(s, SelectOptions(take_all=True, budget_bytes=4_000_002))
        assert selected_keys(s) == ["hit", "low"] and report.budget_stopped


def test_zero_listen_held_tracks_do_not_lose_to_unheld_ones(ws: Workspace) -> None:
    # The demo's Bell/Complete/Message case: zero listens, a file held, no artist
    # or release listens (priority 0); others without a file inherit a high
    # priority from their artist. Held ones come first among zero-listen works.
    tracks = [T("star", 50, artist="famous", release="hits"),
              T("b-sides", artist="famous", release="hits"),
              T("bell", artist="nobody", release="sounds", audio_size=1000)]
    with ws.store() as s:
        s.write(records(tracks))
        report = select(s, SelectOptions(priority_threshold=0.5))
        assert selected_keys(s) == ["star", "bell", "b-sides"]
        assert report.selected_zero_listen == 2
        st = statuses(s)
        assert st["bell"] == ("todo", None)
        assert st["b-sides"] == ("wanted", "no source audio file held")
        # a threshold above 1 still takes no zero-listen work, held or not
        select(s, SelectOptions(priority_threshold=1.5))
        assert selected_keys(s) == ["star"]
        assert statuses(s)["bell"] == ("skipped_low_priority", "below_priority_threshold")


def test_held_track_represents_its_isrc_group(ws: Workspace) -> None:
    # Same ISRC = same recording: the held file is the download, even when the
    # other track of the group has more listens of its own.
    tracks = [T("popular", 90, isrcs=("GBAAA9900001",)),
              T("held", 10, isrcs=("GBAAA9900001",), audio_size=1000)]
    with ws.store() as s:
        s.write(records(tracks))
        report = select(s)
        assert selected_keys(s) == ["held"] and report.covered_listens == 100
        st = statuses(s)
        assert st["held"] == ("todo", None)
        assert st["popular"] == ("skipped_isrc_has_download",
                                 "selected track held has the same ISRC")


def test_wanted_becomes_todo_once_a_file_is_held(ws: Workspace) -> None:
    with ws.store() as s:
        s.write(records([T("a", 5), T("b", 3, audio_size=10)]))
        select(s)
        assert statuses(s)["a"] == ("wanted", "no source audio file held")
        # what older versions recorded for it is not kept as an audio outcome
        s.conn.execute("UPDATE ledger SET status = 'error_no_source', detail = 'x' "
                       "WHERE track_id = ?", (tid(s, "a"),))
        select(s)
        assert statuses(s)["a"] == ("wanted", "no source audio file held")
        s.write(records([T("a", 0, audio_size=20)]))
        select(s)
        assert statuses(s)["a"] == ("todo", None)


def test_listens_matched_and_unmatched_by_key_kind(ws: Workspace) -> None:
    from phonotheque.model import Listen

    with ws.store() as s:
        s.write(records([T("a", 10), T("b", 5)]))
        s.write([Listen("isrc", "GBAAA9900099", 40, dataset="x"),
                 Listen("mbid", "9e2ad5bc-c6f9-40d2-a36f-3122ee2072a3", 7, dataset="x")])
        report = select(s)
    m = report.listen_match
    assert (m.matched, m.unmatched) == (15, 47)
    assert {k.kind: (k.rows_matched, k.rows_unmatched, k.listens_matched, k.listens_unmatched)
            for k in m.kinds} == {"key": (2, 0, 15, 0), "isrc": (0, 1, 0, 40),
                                  "mbid": (0, 1, 0, 7)}
    assert m.mostly_unmatched and m.unmatched_share == pytest.approx(47 / 62)
    warning = m.warning()
    assert warning is not None and "75.8% of listens (47 of 62) matched no track" in warning
    assert "worst: isrc keys" in warning
    # coverage is over matched listens
    assert report.total_listens == 15 and report.covered_share == 1.0
    summary = report.summary()["listens"]
    assert summary["unmatched"] == 47 and summary["mostly_unmatched"] is True


@pytest.mark.parametrize(
    ("text", "value"),
    [("300TB", 300 * 10**12), ("1.5GiB", 3 * 2**29), ("750 MB", 750 * 10**6), ("123", 123),
     ("2tib", 2 * 2**40), ("0.5K", 500)],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "TB", "1.2.3GB", "5 parsecs", "-3GB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_size(text)


def test_options_validate() -> None:
    with pytest.raises(InputError):
        SelectOptions(coverage=1.5)
    with pytest.raises(InputError):
        BandScheme.parse("quantiles:0")
    assert str(BandScheme.parse("Quantiles:8")) == "quantiles:8"


def test_progress_names_every_plan_step_once_in_order(lb: Workspace) -> None:
    from phonotheque.select import STEPS

    calls: list[ProgressEvent] = []
    select(lb, SelectOptions(coverage=0.9), calls.append)
    assert len(set(STEPS)) == len(STEPS) == 10
    assert calls == [ProgressEvent("select", i, len(STEPS), "steps", name)
                     for i, name in enumerate(STEPS, 1)]


@pytest.mark.parametrize("coverage,share,cut,originals", [
    (0.07, 0.07, 7, 7),      # 0.07 · 100 is 7.000000000000001 as floats: ceil would give 8
    (0.29, 0.57, 29, 57),    # 28.999999999999996 and 56.99999999999999 as floats
    (0.071, None, 8, 8),     # 7.1 listens: the next whole listen is the 8th
])
def test_coverage_cut_is_the_exact_decimal_ceiling(ws: Workspace, coverage: float,
                                                   share: float | None, cut: int,
                                                   originals: int) -> None:
    """100 tracks of one listen each: coverage c needs exactly ceil(c · 100) of them,
    with c read as the decimal the user wrote, not as its binary float."""
    with ws.store() as s:
        s.write(records([T(f"t{i:03d}", 1) for i in range(100)]))
        report = select(s, SelectOptions(coverage=coverage, original_share=share,
                                         priority_threshold=2))
        assert report.coverage_cut == cut
        assert report.selected == cut and report.covered_listens == cut
        assert selected_keys(s) == [f"t{i:03d}" for i in range(cut)]
        if share is not None:
            assert report.tier_boundary == originals
