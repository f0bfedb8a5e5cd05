"""The one Markdown pipe-table writer: every table pfpyro and its scripts write goes through
:func:`markdown_table`."""

from __future__ import annotations

from collections.abc import Sequence

ALIGNMENTS = {"-": "---", "l": ":---", "r": "---:"}
"""Per column: ``-`` no alignment, ``l`` left, ``r`` right (the rule under the header)."""


def markdown_table(
    header: Sequence[object],
    body: Sequence[Sequence[object]],
    *,
    align: str | None = None,
    pad: bool = False,
) -> str:
    """A pipe table of ``header`` and the rows of ``body`` (cells written with ``str``; a
    ``|`` in a cell escaped). ``align`` gives each column's code (:data:`ALIGNMENTS`;
    default: none). With ``pad`` the columns are padded to one width, right-aligned columns
    to the right, and the rule spans the width."""
    rows = [[str(cell).replace("|", "\\|") for cell in row] for row in [header, *body]]
    codes = align if align is not None else "-" * len(header)
    if len(codes) != len(header) or set(codes) - set(ALIGNMENTS):
        raise ValueError(f"align {codes!r}: one of {', '.join(ALIGNMENTS)} per column")
    if not pad:
        rule = [ALIGNMENTS[code] for code in codes]
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join([lines[0], "|" + "|".join(rule) + "|", *lines[1:]]) + "\n"
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(w) if code == "r" else cell.ljust(w)
            for cell, w, code in zip(cells, widths, codes, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        {"l": ":" + "-" * (w + 1), "r": "-" * (w + 1) + ":", "-": "-" * (w + 2)}[code]
        for code, w in zip(codes, widths, strict=True)
    ]
    lines = [line(rows[0]), "|" + "|".join(rule) + "|"] + [line(r) for r in rows[1:]]
    return "\n".join(lines) + "\n"


__all__ = ["ALIGNMENTS", "markdown_table"]
