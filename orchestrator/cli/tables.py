"""Tables on the terminal: the aligned columns every listing command prints (``executions list``,
``versions``, ``history``, ``workers``, ``networks list``).

Hand-written: a dozen lines that fit the columns to the terminal width, where a table library would add
a dependency and borders nobody wants in output that scripts may cut with ``awk``.
"""

from __future__ import annotations

import shutil

import click


def table(headers: list[str], rows: list[list[str]]) -> None:
    """Print rows as aligned columns that fit the terminal (``COLUMNS``, else its width, else 120)."""
    if not rows:
        click.echo("(none)")
        return
    fitted = column_widths(headers, rows)
    click.echo(row_text(headers, fitted))
    for row in rows:
        click.echo(row_text(row, fitted))


def column_widths(headers: list[str], rows: list[list[str]]) -> list[int]:
    """Column widths that fit the terminal: the widest column gives way first, never below its header
    (or 6 characters); cut cells end with an ellipsis."""
    available = shutil.get_terminal_size((120, 20)).columns - 2 * (len(headers) - 1) - 1
    cols = [max(len(h), *(len(r[i].replace("\n", " ")) for r in rows)) for i, h in enumerate(headers)]
    floor = [max(6, min(len(h), 12)) for h in headers]
    while sum(cols) > available:
        shrinkable = [i for i, w in enumerate(cols) if w > floor[i]]
        if not shrinkable:
            break
        cols[max(shrinkable, key=lambda i: cols[i])] -= 1
    return cols


def row_text(cells: list[str], fitted: list[int]) -> str:
    """One row of cells in columns of the ``fitted`` widths (the last cell is not padded)."""
    last = len(cells) - 1
    parts = [
        cut(c, fitted[i]) if i == last else cut(c, fitted[i]).ljust(fitted[i]) for i, c in enumerate(cells)
    ]
    return "  ".join(parts).rstrip()


def cut(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters (a cut one ends with an ellipsis)."""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"
