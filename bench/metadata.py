"""End-to-end metadata run at scale: synth -> init -> ingest -> select -> publish (no audio).

Each stage runs as its own `phono` process. For each we record its wall time, its CPU
time (user + sys from ``os.wait4``'s rusage, which includes the children it waited for),
its peak RSS (the largest process in that tree, also from ``wait4``), the peak size of
the workspace's ``tmp/`` (DuckDB's spill files, select's scratch database) and of the whole
workspace (what the stage needs of the disk at its worst), the load average
before and after, and — after the stage — the disk size of ``catalogue.sqlite`` (+ its
WAL), ``catalogue.duckdb`` (+ its WAL) and ``publish/``, in bytes and bytes per track.

The baseline measured in the same run is reading the synthetic dump once with
``orjson.loads`` per line (a ``.zst`` dump: decompress with pyzstd and parse), so every
stage's time is also printed as a multiple of "just parsing the input".

``--engine`` is repeatable: ``--engine sqlite --engine duckdb`` runs both catalogues on
the same synthetic data in the same run (``init --engine duckdb`` makes the columnar
workspace). ``--data DIR`` reuses an existing ``phono synth`` output; ``--stages``
runs only some stages on an existing workspace.

    nice -n 10 .venv/bin/python bench/metadata.py --sizes 1000000 10000000 \\
        --engine sqlite --engine duckdb --workdir /work/scratch/bench [--record]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import orjson
import pyzstd

ROOT = Path(__file__).resolve().parents[1]
PHONO = str(ROOT / ".venv" / "bin" / "phono")

STAGES = ("synth", "baseline", "init", "ingest-musicbrainz", "ingest-listens", "select",
          "publish")
#: The stages that make up "the whole metadata run" (synth and the baseline excluded).
RUN_STAGES = ("init", "ingest-musicbrainz", "ingest-listens", "select", "publish")


@dataclasses.dataclass
class Stage:
    name: str
    wall_s: float
    cpu_s: float
    rss_mib: float
    load_before: float
    load_after: float
    spill_peak: int = 0  # bytes: the largest the workspace's tmp/ got during the stage
    disk_peak: int = 0  # bytes: the largest the whole workspace got during the stage
    sizes: dict[str, int] = dataclasses.field(default_factory=dict)
    note: str = ""


def loadavg() -> float:
    return os.getloadavg()[0]


class SpillWatch:
    """The peak size of a workspace's ``tmp/`` (DuckDB's spill files and select's scratch
    database) and of the whole workspace while a stage runs, sampled twice a second in a
    thread. Disk, not memory, is what a 100 M-track stage under a memory cap runs out of,
    and its peak (spill beside the catalogue and a half-written publish/) is what sizes
    the disk a larger run needs."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.peak = 0
        self.workspace_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        assert self.folder is not None
        while not self._stop.wait(0.5):
            workspace, tmp = _allocated(self.folder.parent, within=self.folder)
            self.peak = max(self.peak, tmp)
            self.workspace_peak = max(self.workspace_peak, workspace)

    def __enter__(self) -> SpillWatch:
        if self.folder is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.folder is not None:
            self._stop.set()
            self._thread.join()


def _allocated(folder: Path, within: Path) -> tuple[int, int]:
    """Bytes the files under ``folder``, and those under its subfolder ``within``, take on
    disk, in one walk (allocated blocks: spill files are sparse; a file hard-linked twice,
    as publish's torrent folder does, once); 0 for what is missing, a file that vanishes
    meanwhile not counted."""
    total = inner = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirs, files in os.walk(folder):
        under = Path(dirpath).is_relative_to(within)
        for f in files:
            try:
                st = os.stat(os.path.join(dirpath, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
                inner += st.st_blocks * 512 if under else 0
    return total, inner


def run(name: str, cmd: list[str], log: Path, spill: Path | None = None,
        env: Mapping[str, str] | None = None) -> Stage:
    """Run ``cmd`` (stderr to ``log``, in ``env`` if given); measure it with ``wait4`` (and
    the peak size of ``spill``, a folder, meanwhile)."""
    load0 = loadavg()
    t0 = time.perf_counter()
    with open(log, "wb") as err, SpillWatch(spill) as watch:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 10):  # 10: finished with rejects/quarantine (README)
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}), log {log}:\n{tail}")
    return Stage(name, took, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                 load0, loadavg(), spill_peak=watch.peak, disk_peak=watch.workspace_peak)


def open_dump(path: Path):  # type: ignore[no-untyped-def]
    return pyzstd.ZstdFile(path, "rb") if path.suffix == ".zst" else open(path, "rb")


def parse_baseline(path: Path) -> Stage:
    """Read ``path`` once with orjson (decompressing a .zst on the way), in this process."""
    load0 = loadavg()
    c0 = time.process_time()
    t0 = time.perf_counter()
    with open_dump(path) as f:
        for line in f:
            orjson.loads(line)
    return Stage("baseline", time.perf_counter() - t0, time.process_time() - c0, 0.0,
                 load0, loadavg(),
                 note="orjson.loads per line" + (" + pyzstd decompression"
                                                 if path.suffix == ".zst" else ""))


def tree_bytes(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    if not p.is_dir():
        return 0
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def disk(ws: Path) -> dict[str, int]:
    """Bytes on disk now: the SQLite catalogue (+WAL), the columnar one (+WAL), publish/."""
    return {
        "catalogue.sqlite": sum(tree_bytes(ws / f"catalogue.sqlite{s}") for s in ("", "-wal")),
        "catalogue.duckdb": sum(tree_bytes(ws / f"catalogue.duckdb{s}") for s in ("", ".wal")),
        "publish": tree_bytes(ws / "publish"),
    }


def find_dump(data: Path, *, needed: bool = True) -> Path | None:
    """The synthetic dump in `data`. A run of later stages only (`--stages select,publish`)
    does not read it, so it may have been deleted to make room (a 100 M run's publish needs
    the dump's 8.6 GB): then None."""
    for name in ("release.jsonl.zst", "release.jsonl"):
        if (data / name).is_file():
            return data / name
    if not needed:
        return None
    raise SystemExit(f"{data}: no release.jsonl(.zst) (not a `phono synth` output?)")


def synth_tracks(data: Path) -> int:
    meta = json.loads((data / "synth.json").read_text())
    for key in ("tracks", "n_tracks", "recordings"):
        if isinstance(meta.get(key), int):
            return int(meta[key])
    raise SystemExit(f"{data / 'synth.json'}: no track count")


def _log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def one(n: int | None, data: Path | None, engine: str, work: Path, stages: set[str],
        synth_args: list[str], baseline: Stage | None,
        save: Callable[[dict[str, object]], None] = lambda r: None) -> dict[str, object]:
    """Run the selected stages for one size and one engine; return the measurements,
    also handed to ``save`` after every stage (a stage that fails an hour into a 100 M
    run keeps the figures of the stages before it)."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {"engine": engine, "stages": []}
    done: list[Stage] = result["stages"]  # type: ignore[assignment]
    if data is None:
        assert n is not None
        data = work / f"synth-{n}"
        if "synth" in stages and not (data / "synth.json").exists():
            shutil.rmtree(data, ignore_errors=True)
            st = run("synth", [PHONO, "synth", "--tracks", str(n), "--out", str(data),
                               *synth_args], logs / f"{n}-synth.log")
            st.sizes = {"synth output": tree_bytes(data)}
            done.append(st)
            _log(f"{n:,} synth: {st.wall_s:.1f} s")
        else:
            result["synth_reused"] = str(data)
    else:
        result["synth_reused"] = str(data)
    n = synth_tracks(data)
    result["tracks"] = n
    result["data"] = str(data)
    dump = find_dump(data, needed=bool(stages & {"baseline", "ingest-musicbrainz"}))
    result["dump"] = dump.name if dump else None
    result["dump_bytes"] = dump.stat().st_size if dump else None
    listens = sorted(data.glob("listens.*"))[0]
    if baseline is None and "baseline" in stages:
        assert dump is not None
        baseline = parse_baseline(dump)
        _log(f"{n:,} baseline: {baseline.wall_s:.1f} s")
    if baseline is not None:
        done.append(baseline)
    ws = work / f"ws-{n}-{engine}"
    init = [PHONO, "init", str(ws)] + (["--engine", engine] if engine != "sqlite" else [])
    steps = {
        "init": init,
        "ingest-musicbrainz": [PHONO, "ingest", "musicbrainz", str(dump), "-w", str(ws)],
        "ingest-listens": [PHONO, "ingest", "listens", str(listens), "-w", str(ws)],
        "select": [PHONO, "select", "--coverage", "0.996", "-w", str(ws)],
        "publish": [PHONO, "publish", "-w", str(ws)],
    }
    if "init" in stages:
        shutil.rmtree(ws, ignore_errors=True)
    for name, cmd in steps.items():
        if name not in stages:
            continue
        st = run(name, cmd, logs / f"{n}-{engine}-{name}.log", spill=ws / "tmp")
        st.sizes = disk(ws)
        done.append(st)
        save(result)
        _log(f"{n:,} {engine} {name}: {st.wall_s:.1f} s wall, {st.cpu_s:.1f} s CPU, "
             f"{st.rss_mib:.0f} MiB, load {st.load_before:.1f}->{st.load_after:.1f}, "
             f"{sum(st.sizes.values()) / n:.0f} B/track, peak tmp/ {st.spill_peak / 1e6:,.0f} MB, "
             f"peak workspace {st.disk_peak / 1e6:,.0f} MB")
    return result


def table(r: dict[str, object]) -> str:
    n = int(r["tracks"])  # type: ignore[call-overload]
    stages: list[Stage] = r["stages"]  # type: ignore[assignment]
    base = next((s for s in stages if s.name == "baseline"), None)
    lines = [
        "| stage | wall s | CPU s | peak RSS MiB | x parse-only (wall / CPU) | tracks/s | "
        "catalogue.sqlite MB | catalogue.duckdb MB | publish/ MB | B/track (all three) | "
        "peak tmp/ MB | peak workspace MB | load before→after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in stages:
        mult = (f"{s.wall_s / base.wall_s:.2f} / {s.cpu_s / base.cpu_s:.2f}"
                if base and base.cpu_s else "")
        sz = s.sizes
        if s.name in RUN_STAGES:
            sizes = (f"{sz['catalogue.sqlite'] / 1e6:,.0f} | {sz['catalogue.duckdb'] / 1e6:,.0f} | "
                     f"{sz['publish'] / 1e6:,.0f} | {sum(sz.values()) / n:,.0f}")
        elif s.name == "synth":
            sizes = f"(synth output {sz['synth output'] / 1e6:,.0f} MB) | | | "
        else:
            sizes = f"({s.note}) | | | "
        rss = f"{s.rss_mib:,.0f}" if s.rss_mib else ""
        spill = f"{s.spill_peak / 1e6:,.0f}" if s.name in RUN_STAGES else ""
        # 0: a result file written before the workspace was watched
        peak = f"{s.disk_peak / 1e6:,.0f}" if s.name in RUN_STAGES and s.disk_peak else ""
        lines.append(f"| {s.name} | {s.wall_s:,.1f} | {s.cpu_s:,.1f} | {rss} | {mult} | "
                     f"{n / s.wall_s:,.0f} | {sizes} | {spill} | {peak} | "
                     f"{s.load_before:.1f}→{s.load_after:.1f} |")
    run_st = [s for s in stages if s.name in RUN_STAGES]
    if run_st:
        wall = sum(s.wall_s for s in run_st)
        cpu = sum(s.cpu_s for s in run_st)
        mult = f"{wall / base.wall_s:.2f} / {cpu / base.cpu_s:.2f}" if base and base.cpu_s else ""
        dpeak = max(s.disk_peak for s in run_st)
        lines.append(f"| **{'+'.join(s.name for s in run_st)}** | **{wall:,.1f}** | "
                     f"{cpu:,.1f} | {max(s.rss_mib for s in run_st):,.0f} | {mult} | "
                     f"{n / wall:,.0f} | | | | | "
                     f"{max(s.spill_peak for s in run_st) / 1e6:,.0f} | "
                     f"{f'{dpeak / 1e6:,.0f}' if dpeak else ''} | |")
    return "\n".join(lines)


def conditions(args: argparse.Namespace, load0: tuple[float, ...], load1: tuple[float, ...]
               ) -> str:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    import duckdb  # only for its version; phono itself imports it in catalogue/columnar.py

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, shared with other sessions' work; "
            f"niceness {os.nice(0)}; Python {platform.python_version()}, DuckDB "
            f"{duckdb.__version__}; phono at {commit}; load average (1/5/15 min) at start "
            f"{'/'.join(f'{x:.1f}' for x in load0)}, at end "
            f"{'/'.join(f'{x:.1f}' for x in load1)}; workdir {args.workdir}.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000],
                    help="track counts to synthesise (ignored with --data)")
    ap.add_argument("--data", type=Path, help="reuse this `phono synth` output folder")
    ap.add_argument("--engine", action="append", choices=["sqlite", "duckdb"],
                    help="catalogue engine; repeat for both (default: sqlite)")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help=f"comma-separated subset of {','.join(STAGES)}; without init the "
                         "existing workspace is reused")
    ap.add_argument("--synth-arg", action="append", default=[],
                    help="extra argument for `phono synth` (repeat), e.g. a compression option")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/phono-bench-metadata"))
    ap.add_argument("--clean", action="store_true",
                    help="delete each workspace after it is measured (disk)")
    ap.add_argument("--record", action="store_true", help="append the tables to bench/RESULTS.md")
    ap.add_argument("--results", type=Path, nargs="+",
                    help="run nothing: print (and --record) the tables of these saved "
                         "result-*.json files of earlier runs (files of the same size and "
                         "engine are merged into one table, later stages replacing earlier)")
    args = ap.parse_args()
    stages = {s.strip() for s in args.stages.split(",") if s.strip()}
    if unknown := stages - set(STAGES):
        ap.error(f"unknown stage(s) {', '.join(sorted(unknown))}; known: {', '.join(STAGES)}")
    engines = args.engine or ["sqlite"]
    args.workdir.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = []
    sizes: list[int | None] = [None] if args.data else list(args.sizes)
    if args.results:
        sizes = []
        merged: dict[tuple[int, str], dict[str, object]] = {}
        for p in args.results:  # files of one size and engine (partial runs) become one table
            r = json.loads(p.read_text())
            r["stages"] = [Stage(**s) for s in r["stages"]]
            key = (int(r["tracks"]), str(r["engine"]))
            if key in merged:
                have = merged[key]
                names = {s.name for s in r["stages"]}
                have["stages"] = sorted(
                    [s for s in have["stages"] if s.name not in names] + r["stages"],  # type: ignore[attr-defined]
                    key=lambda s: STAGES.index(s.name))
                have["conditions"] = f"{have.get('conditions', '')} / {r.get('conditions', '')}"
            else:
                merged[key] = r
        results = list(merged.values())
        for r in results:  # a partial run without its own baseline borrows its size's
            have = r["stages"]
            if not any(s.name == "baseline" for s in have):  # type: ignore[attr-defined]
                other = next((s for o in results if o["tracks"] == r["tracks"]
                              for s in o["stages"] if s.name == "baseline"), None)  # type: ignore[attr-defined]
                if other is not None:
                    r["stages"] = sorted([*have, other], key=lambda s: STAGES.index(s.name))  # type: ignore[misc]
        engines = [str(r["engine"]) for r in results]
        started = ", ".join(sorted({str(r.get("started", "")) for r in results}))
    for n in sizes:
        baseline: Stage | None = None
        for i, engine in enumerate(engines):
            def save(r: dict[str, object]) -> None:
                out = args.workdir / f"result-{r['tracks']}-{r['engine']}.json"
                r["started"] = started
                r["conditions"] = conditions(args, load0, os.getloadavg())
                out.write_text(json.dumps(
                    {**r, "stages": [dataclasses.asdict(s) for s in r["stages"]]},  # type: ignore[attr-defined]
                    indent=1))

            r = one(n, args.data, engine, args.workdir, stages if i == 0 else stages - {"synth"},
                    args.synth_arg, baseline, save)
            baseline = next((s for s in r["stages"] if s.name == "baseline"), None)  # type: ignore[attr-defined]
            results.append(r)
            save(r)
            if args.clean:
                shutil.rmtree(args.workdir / f"ws-{r['tracks']}-{engine}", ignore_errors=True)
    load1 = os.getloadavg()
    text = []
    for r in results:
        dump_text = ("dump not present" if r.get("dump_bytes") is None
                     else f"dump `{r['dump']}`, {int(r['dump_bytes']) / 1e9:.2f} GB")  # type: ignore[call-overload]
        text.append(f"**{int(r['tracks']):,} tracks, engine {r['engine']}** ({dump_text}"  # type: ignore[call-overload]
                    + (f"; synth output reused from `{r['synth_reused']}`" if "synth_reused" in r
                       else "") + ")\n\n"
                    + (f"Conditions: {r.get('conditions', 'not recorded')}\n\n" if args.results else "")
                    + table(r) + "\n")
    body = "\n".join(text)
    print(body)
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a") as f:
            f.write(f"\n## End-to-end metadata run, engines {' + '.join(engines)} "
                    f"(`bench/metadata.py`, {started})\n\n"
                    "Each stage a separate `phono` process; wall time, CPU time (user+sys incl. "
                    "children) and peak RSS from `wait4`; disk sizes after each stage "
                    "(B/track = catalogue.sqlite+WAL + catalogue.duckdb + publish/ over tracks); "
                    "\"x parse-only\" = stage wall time over the orjson parse of the same dump "
                    "in the same run (wall / CPU). "
                    + ("" if args.results else conditions(args, load0, load1))
                    + f"\n\n{body}")


if __name__ == "__main__":
    sys.exit(main())
