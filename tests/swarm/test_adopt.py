"""`phono adopt`: the exact set for a budget, fewest seeders first, popular band first."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest

from phonotheque.catalogue import swarm as swarm_table
from phonotheque.catalogue import torrents as torrents_table
from phonotheque.errors import InputError
from phonotheque.pack.packer import PackOptions
from phonotheque.publish.publisher import publish
from phonotheque.publish.waves import ReleaseOptions, release
from phonotheque.swarm.adopt import AdoptOptions, choose
from phonotheque.swarm.health import publish_health
from phonotheque.workspace import Workspace
from tests.publish.archive import make_archive


def entry(name: str, band: int | None, size: int, seeders: int | None,
          obsolete: bool = False) -> dict[str, object]:
    return {"display_name": name, "band": band, "data_size": size, "seeders": seeders,
            "obsolete": obsolete, "magnet_link": f"magnet:?dn={name}"}


ENTRIES = [
    entry("b2-a", 2, 100, 0),
    entry("b1-a", 1, 300, 0),
    entry("b1-b", 1, 300, 0),
    entry("b1-c", 1, 300, 0),  # budget runs out in the middle of band 1's zero-seeder torrents
    entry("b1-old", 1, 10, 0, obsolete=True),
    entry("meta", None, 50, 0),
    entry("b1-ok", 1, 10, 20),
    entry("b3-new", 3, 40, None),  # never scraped: counts as no seeders
]


def test_fewest_seeders_first_popular_band_first_budget_cut_mid_band() -> None:
    a = choose(ENTRIES, AdoptOptions(budget=700))
    # (0 seeders) b1-a, b1-b fit (600); b1-c does not (skipped); b2-a fits (700);
    # b3-new, meta no longer fit; b1-ok (20 seeders) neither. Obsolete never.
    assert [e["display_name"] for e in a.chosen] == ["b1-a", "b1-b", "b2-a"]
    assert a.total_size == 700 and a.candidates == 7 and a.skipped == 4
    a = choose(ENTRIES, AdoptOptions(budget=10_000))
    assert [e["display_name"] for e in a.chosen] == [
        "b1-a", "b1-b", "b1-c", "b2-a", "b3-new", "meta", "b1-ok"]
    a = choose(ENTRIES, AdoptOptions(budget=10_000, max_seeders=5))
    assert "b1-ok" not in [e["display_name"] for e in a.chosen]
    assert choose(ENTRIES, AdoptOptions(budget=0)).chosen == []
    with pytest.raises(InputError):
        AdoptOptions(budget=-1)


def _phono(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from phonotheque.cli import main; main()", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_on_a_workspace_with_known_counts(ws: Workspace, data: Path, tmp_path: Path) -> None:
    make_archive(ws, data)
    release(ws, ReleaseOptions(pack_options=PackOptions(max_files=3)))
    with ws.store() as store:
        targets = swarm_table.scrape_targets(store)
        data_ts = [t for t in targets if "music_files_band" in t.name]
        # one band-1 torrent is made obsolete: it must never be offered, even with 0 seeders
        torrents_table.mark_obsolete(store, data_ts[0].torrent_id, None)
    publish(ws)
    with ws.store() as store:
        targets = swarm_table.scrape_targets(store)
        seeders = {t.torrent_id: (0 if "band01" in t.name else 5) for t in targets}
        swarm_table.record_scrapes(store, [
            swarm_table.SwarmRow(t.torrent_id, "udp://127.0.0.1:1/announce", seeders[t.torrent_id],
                                 0, 0, "2026-12-01T12:00:00+00:00") for t in targets])
        publish_health(ws, store)
    index = orjson.loads((ws.publish / "torrents.json").read_bytes())
    current = [e for e in index if not e["obsolete"]]
    zero = sorted((e for e in current if e["seeders"] == 0), key=lambda e: e["display_name"])
    assert len(zero) >= 2
    budget = zero[0]["data_size"] + (zero[1]["data_size"] - 1)  # the second does not fit
    r = _phono("adopt", "-w", str(ws.root), "--budget", str(budget), "--json")
    assert r.returncode == 0, r.stderr
    got = orjson.loads(r.stdout)
    names = [t["display_name"] for t in got["torrents"]]
    assert names[0] == zero[0]["display_name"] and zero[1]["display_name"] not in names
    assert all(e["obsolete"] is False for e in index if e["display_name"] in names)
    assert data_ts[0].name not in names
    expected = [e["display_name"] for e in
                choose(index, AdoptOptions(budget)).chosen]
    assert names == expected
    # formats
    out = tmp_path / "adopt.zip"
    r = _phono("adopt", "-w", str(ws.root), "--budget", str(budget), "--format", "zip", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(zipfile.ZipFile(io.BytesIO(out.read_bytes())).namelist()) == sorted(
        [f"{n}.torrent" for n in names] + ["magnets.txt"])
    r = _phono("adopt", "-w", str(ws.root), "--budget", str(budget), "--format", "torrents",
               "-o", str(tmp_path / "t"))
    assert sorted(p.stem for p in (tmp_path / "t").iterdir()) == sorted(names)
    r = _phono("adopt", "-w", str(ws.root), "--budget", "2TB")
    assert r.returncode == 0 and "adopt: " in r.stdout and "band 01" in r.stdout
    r = _phono("adopt", "-w", str(tmp_path / "nowhere"), "--budget", "2TB")
    assert r.returncode == 2 and "torrents.json" in r.stderr and "Traceback" not in r.stderr


def test_odd_values_in_a_mirrored_index_rank_as_unknown() -> None:
    odd = [
        {**entry("a", 1, 10, 0), "seeders": "many"},
        {**entry("b", "x", 10, 0), "seeders": True},  # type: ignore[arg-type]
        {**entry("c", 1, -5, 0)},
        {**entry("d", 1, 10, 3)},
    ]
    assert [e["display_name"] for e in choose(odd, AdoptOptions(100)).chosen] == ["a", "b", "d"]
