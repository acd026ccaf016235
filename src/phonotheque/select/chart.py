"""The coverage report: what a coverage target costs, as a PNG or a self-contained HTML page.

Three panels: cumulative share of listens against the number of works (log
scale) and against estimated bytes, each marking the coverage cut, the tier
boundary and the budget; and the size of each popularity band. The HTML page
inlines the figure as SVG and the numbers as tables: no external assets.

Works from a :class:`SelectReport` or from the last ``select_run`` row, so the
report can be drawn again without re-selecting.
"""

from __future__ import annotations

import html
import io
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from phonotheque.atomic import write_bytes
from phonotheque.catalogue import selection
from phonotheque.catalogue.store import Store
from phonotheque.errors import InputError
from phonotheque.listen_match import ListenMatch
from phonotheque.select.options import format_size
from phonotheque.select.report import MODES, CurvePoint, SelectReport

FORMATS = (".png", ".html", ".svg")


def render_report(report: SelectReport, path: Path) -> Path:
    return render_coverage(report.summary(), report.curve, path)


def last_run(store: Store) -> tuple[dict[str, Any], list[CurvePoint]] | None:
    """Summary and curve of the most recent selection, or None if never selected."""
    run = selection.last_run(store.conn)
    if run is None:
        return None
    curve = [CurvePoint(int(r), float(s), int(b)) for r, s, b in orjson.loads(run.curve)]
    return orjson.loads(run.result), curve


def render_coverage(summary: dict[str, Any], curve: list[CurvePoint], path: Path) -> Path:
    """Write the report to ``path`` (``.png``, ``.svg`` or ``.html``, atomically)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(path, f"report must end in one of {', '.join(FORMATS)}")
    with _chart_style():
        fig = _figure(summary, curve)
        buf = io.BytesIO()
        fmt = "png" if suffix == ".png" else "svg"
        meta: dict[str, Any] = ({"Software": None} if fmt == "png"
                                else {"Date": None, "Creator": None})
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight", metadata=meta)
    data = buf.getvalue()
    if suffix == ".html":
        data = _html(summary, data.decode()).encode()
    write_bytes(path, data)
    return path


@contextmanager
def _chart_style() -> Iterator[None]:
    """Same report, same bytes, whatever the user's matplotlib set-up.

    matplotlib's own defaults (not the user's matplotlibrc or style), no mathtext
    (its fonts are looked up by family name), SVG element ids from a fixed salt; with
    :func:`_pin_font` and the metadata :func:`render_coverage` leaves out (creation
    date, software version), the chart that goes into the published files is the
    same bytes on every machine with the same matplotlib. Scoped: the caller's
    rcParams are restored on exit.
    """
    import matplotlib
    import matplotlib.style

    with matplotlib.style.context("default"), matplotlib.rc_context(
            {"svg.hashsalt": "phonotheque", "text.parse_math": False}):
        yield


def _font_file() -> Path:
    """matplotlib's own copy of DejaVu Sans (installed with the pinned matplotlib)."""
    import matplotlib

    return Path(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")


def _pin_font(fig: Any) -> None:
    """Draw every text of ``fig`` in :func:`_font_file`, named by path.

    A font looked up by family name goes through the user's font cache
    (``fontlist-*.json`` in matplotlib's cache folder): a stale one (built before a
    font package came or went, or by another matplotlib) has no DejaVu Sans in it,
    so every render warned ``findfont: ...`` and fell back to whatever font scored
    best, and the bytes changed with the cache. A font given by file is used as is.
    Tick labels made later copy the first tick's font (``Axis._copy_tick_props``).
    """
    from matplotlib.text import Text

    font = str(_font_file())
    for text in fig.findobj(Text):
        prop = text.get_fontproperties().copy()
        prop.set_file(font)
        text.set_fontproperties(prop)


def _log_ticks(axis: Any, label: Callable[[float], str]) -> None:
    """Plain-text labels on a log axis (matplotlib's default ones are mathtext)."""
    from matplotlib.ticker import LogFormatter

    class Labels(LogFormatter):
        def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
            return label(x)

    axis.set_major_formatter(Labels())
    axis.set_minor_formatter(Labels())


def _count_label(x: float) -> str:
    for unit, factor in (("M", 1e6), ("k", 1e3)):
        if x >= factor:
            return f"{x / factor:g}{unit}"
    return f"{x:g}"


def _size_label(x: float) -> str:
    return format_size(x) if x >= 1e3 else f"{x:g} B"


def _at(curve: list[CurvePoint], rank: int) -> CurvePoint:
    """The curve at ``rank``, interpolated linearly between the sampled points."""
    ranks = [p.rank for p in curve]
    i = bisect_left(ranks, rank)
    if i >= len(curve):
        return curve[-1]
    hi = curve[i]
    if hi.rank == rank or i == 0:
        return CurvePoint(rank, hi.share, hi.bytes)
    lo = curve[i - 1]
    f = (rank - lo.rank) / (hi.rank - lo.rank)
    return CurvePoint(rank, lo.share + f * (hi.share - lo.share),
                      int(lo.bytes + f * (hi.bytes - lo.bytes)))


def _headline(s: dict[str, Any]) -> str:
    opts = s["options"]
    mode = s.get("mode", "coverage")
    if mode != "coverage":
        line = (f"{s['selected']:,} tracks: {MODES[mode]} — est. "
                f"{format_size(s['est_bytes'])}")
    else:
        line = (f"{s['selected']:,} tracks cover {100 * s['covered_share']:.2f} % of matched "
                f"listens (target {100 * opts['coverage']:.2f} %) — est. "
                f"{format_size(s['est_bytes'])}")
    if s["budget_stopped"]:
        line += f", stopped by the {format_size(opts['budget_bytes'])} budget"
    return line


def _figure(s: dict[str, Any], curve: list[CurvePoint]) -> Any:
    # A Figure of its own, not pyplot's: no global backend switch, no figure registry
    # to close; savefig picks the writer for the format.
    from matplotlib.figure import Figure

    opts = s["options"]
    fig = Figure(figsize=(16, 5.2))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [5, 5, 4]})
    ax_n, ax_b, ax_band = axes
    pts = [p for p in curve if p.rank > 0] or [CurvePoint(1, 0.0, 1)]
    ranks = [p.rank for p in pts]
    shares = [100 * p.share for p in pts]
    sizes = [max(p.bytes, 1) for p in pts]
    target = 100 * opts["coverage"]
    cut = _at(curve, s["coverage_cut"]) if s["coverage_cut"] else None
    tier = _at(curve, s["tier_boundary"]) if s["tier_boundary"] else None

    for ax, xs, label in ((ax_n, ranks, "tracks, in rank order (log scale)"),
                          (ax_b, sizes, "estimated archive size, bytes (log scale)")):
        ax.plot(xs, shares, color="#1f5fa8", lw=2, label="cumulative share of listens")
        ax.set_xscale("log")
        ax.set_ylim(0, 101)
        ax.set_xlabel(label)
        ax.set_ylabel("listens covered (%)")
        ax.axhline(target, color="#c0392b", ls="--", lw=1,
                   label=f"target {target:.2f} %")
        ax.grid(True, which="major", alpha=0.3)

    if cut is not None:
        ax_n.axvline(cut.rank, color="#c0392b", lw=1.2)
        ax_n.annotate(f"cut: {cut.rank:,} tracks\n= {100 * cut.share:.2f} %",
                      (cut.rank, 100 * cut.share), xytext=(-10, -50),
                      textcoords="offset points", ha="right", color="#c0392b",
                      arrowprops={"arrowstyle": "->", "color": "#c0392b"})
        ax_b.axvline(max(cut.bytes, 1), color="#c0392b", lw=1.2)
        ax_b.annotate(f"{100 * cut.share:.2f} % ≈ {format_size(cut.bytes)}",
                      (max(cut.bytes, 1), 100 * cut.share), xytext=(-10, -50),
                      textcoords="offset points", ha="right", color="#c0392b",
                      arrowprops={"arrowstyle": "->", "color": "#c0392b"})
    if tier is not None:
        ax_n.axvline(tier.rank, color="#27ae60", lw=1, ls=":",
                     label=f"originals: top {tier.rank:,} ({100 * tier.share:.1f} %)")
        ax_b.axvline(max(tier.bytes, 1), color="#27ae60", lw=1, ls=":",
                     label=f"originals ≈ {format_size(tier.bytes)}")
    if opts.get("budget_bytes"):
        ax_b.axvline(opts["budget_bytes"], color="#8e44ad", lw=1.2, ls="-.",
                     label=f"budget {format_size(opts['budget_bytes'])}")
    if s["budget_stopped"]:
        listened = s["selected"] - s["selected_zero_listen"]
        if listened > 0:
            ax_n.plot([listened], [100 * s["covered_share"]], "o", color="#8e44ad",
                      label=f"selected within budget: {100 * s['covered_share']:.2f} %")
        if s["est_bytes"] > 0:
            ax_b.plot([s["est_bytes"]], [100 * s["covered_share"]], "o", color="#8e44ad")
    ax_n.set_title("Coverage against number of tracks")
    ax_b.set_title("Coverage against archive size")
    ax_n.legend(loc="lower right", fontsize=8)
    ax_b.legend(loc="lower right", fontsize=8)

    bands = s["bands"]
    if bands:
        names = [str(b["band"]) for b in bands]
        counts = [b["tracks"] for b in bands]
        bars = ax_band.bar(names, counts, color="#1f5fa8", alpha=0.8, label="tracks")
        ax_band.bar_label(bars, labels=[f"{n:,}" for n in counts], fontsize=7)
        if max(counts) > 100 * max(min(counts), 1):
            ax_band.set_yscale("log")
            ax_band.set_ylabel("tracks per band (log scale)")
        else:
            ax_band.set_ylabel("tracks per band")
        ax_band.set_xlabel(f"popularity band ({opts['bands']}; 1 = most listened)")
        unit, factor = next(((u, f) for u, f in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6))
                             if max(b["est_bytes"] for b in bands) >= f), ("kB", 1e3))
        twin = ax_band.twinx()
        twin.plot(names, [b["est_bytes"] / factor for b in bands], color="#e67e22",
                  marker="o")
        twin.set_ylim(bottom=0)
        twin.set_ylabel(f"estimated {unit} per band", color="#e67e22")
        ax_band.set_title("Band sizes")
    else:
        ax_band.text(0.5, 0.5, "nothing selected", ha="center", va="center")
        ax_band.set_axis_off()
    fig.suptitle(_headline(s), fontsize=12)
    _log_ticks(ax_n.xaxis, _count_label)
    _log_ticks(ax_b.xaxis, _size_label)
    if ax_band.get_yscale() == "log":
        _log_ticks(ax_band.yaxis, _count_label)
    _pin_font(fig)  # before the first measure of any text (tight_layout)
    fig.tight_layout()
    return fig


def _html(s: dict[str, Any], svg: str) -> str:
    e = html.escape
    opts = s["options"]
    svg = svg[svg.find("<svg"):]  # drop the XML prolog and DOCTYPE
    tiers = "".join(
        f"<tr><td>{e(k)}</td><td>{v['tracks']:,}</td><td>{e(format_size(v['est_bytes']))}</td>"
        "</tr>" for k, v in s["tiers"].items())
    bands = "".join(
        f"<tr><td>{b['band']}</td><td>{b['tracks']:,}</td><td>{e(format_size(b['est_bytes']))}"
        f"</td><td>{100 * b['cum_share']:.3f} %</td></tr>" for b in s["bands"])
    statuses = "".join(f"<tr><td>{e(k)}</td><td>{v:,}</td></tr>"
                       for k, v in s["statuses"].items())
    matching = ListenMatch.from_dict(s.get("listens"))
    facts = [
        ("selection", MODES[s.get("mode", "coverage")]),
        ("tracks in catalogue", f"{s['tracks']:,}"),
        ("excluded", f"{s['excluded']:,}"),
        ("works ranked (one per ISRC group)", f"{s['works']:,}"),
        ("matched listens counted", f"{s['total_listens']:,}"),
        ("listens matching no track",
         f"{matching.unmatched:,} ({100 * matching.unmatched_share:.1f} %)"),
        ("coverage target (of matched listens)", f"{100 * opts['coverage']:.3f} %"),
        ("coverage reached (of matched listens)", f"{100 * s['covered_share']:.3f} %"),
        ("tracks selected", f"{s['selected']:,} (zero-listen: {s['selected_zero_listen']:,})"),
        ("estimated size", format_size(s["est_bytes"])),
        ("budget", format_size(opts["budget_bytes"]) if opts.get("budget_bytes") else "none"),
        ("stopped by budget", "yes" if s["budget_stopped"] else "no"),
    ]
    facts_html = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    kinds = "".join(
        f"<tr><td>{e(k.kind)}</td><td>{k.rows_matched:,}</td><td>{k.rows_unmatched:,}</td>"
        f"<td>{k.listens_matched:,}</td><td>{k.listens_unmatched:,}</td>"
        f"<td>{100 * k.unmatched_share:.1f} %</td></tr>" for k in matching.kinds)
    warning = matching.warning()
    banner = (f'<p class="warning"><strong>Warning:</strong> {e(warning)}</p>'
              if warning else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Phonothèque coverage report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0 2em 1em 0; display: inline-table;
         vertical-align: top; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th, td:first-child {{ text-align: left; }} th {{ background: #f4f4f4; }}
svg {{ max-width: 100%; height: auto; }}
.warning {{ border: 3px solid #c0392b; background: #fdecea; padding: 0.8em; font-size: 1.1em; }}
</style></head><body>
<h1>Coverage report</h1>
<p><strong>{e(_headline(s))}</strong></p>
{banner}
<figure>{svg}</figure>
<table><caption>Summary</caption>{facts_html}</table>
<table><caption>Tiers</caption><tr><th>tier</th><th>tracks</th><th>est. size</th></tr>{tiers}
</table>
<table><caption>Bands</caption><tr><th>band</th><th>tracks</th><th>est. size</th>
<th>covered at end</th></tr>{bands}</table>
<table><caption>Listens matched to tracks, by key kind</caption><tr><th>key kind</th>
<th>rows matched</th><th>rows unmatched</th><th>listens matched</th><th>listens unmatched</th>
<th>unmatched share</th></tr>{kinds}</table>
<table><caption>Ledger</caption><tr><th>status</th><th>tracks</th></tr>{statuses}</table>
</body></html>
"""
