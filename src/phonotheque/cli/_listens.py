"""How listens matched the catalogue, as the select, stats and build commands show it."""

from __future__ import annotations

from rich.panel import Panel
from rich.table import Table

from phonotheque.cli._common import console
from phonotheque.listen_match import ListenMatch


def listen_table(m: ListenMatch) -> Table:
    """Listens matched vs unmatched (count and share) per key kind, and in all."""
    t = Table(title="listens matched to tracks (coverage counts matched listens only)")
    for col in ("key kind", "rows matched", "rows unmatched", "listens matched",
                "listens unmatched", "unmatched share"):
        t.add_column(col, justify="left" if col == "key kind" else "right")
    for k in m.kinds:
        t.add_row(k.kind, f"{k.rows_matched:,}", f"{k.rows_unmatched:,}",
                  f"{k.listens_matched:,}", f"{k.listens_unmatched:,}",
                  f"{k.unmatched_share:.1%}")
    if len(m.kinds) > 1:
        t.add_row("[bold]all[/]", f"{sum(k.rows_matched for k in m.kinds):,}",
                  f"{sum(k.rows_unmatched for k in m.kinds):,}", f"{m.matched:,}",
                  f"{m.unmatched:,}", f"{m.unmatched_share:.1%}")
    return t


def print_listen_match(m: ListenMatch) -> None:
    """The table (when there are listens) and, when most matched nothing, a loud warning."""
    if not m.kinds:
        return
    console.print(listen_table(m))
    warn_unmatched(m)


def warn_unmatched(m: ListenMatch) -> None:
    warning = m.warning()
    if warning is not None:
        console.print(Panel(f"[bold]{warning}[/]", title="WARNING: most listens matched nothing",
                            border_style="bold red", style="red", expand=False))
