"""The `+----+` / `| .. |` tables of the original README."""
from hltcloud.printable import printable


def _center(text, width):
    # Extra space goes right, as in the original tables ("|    no     |").
    left = (width - len(text)) // 2
    return (" " * left + text).ljust(width)


ALIGN = {"l": str.ljust, "r": str.rjust, "c": _center}


def render(headers, rows, align=None):
    """Return the table as a string: HEADERS, then ROWS (already ordered by the caller).

    ALIGN is one letter a column ('l', 'r', 'c'); headers are always left-aligned. A cell is
    shown printable (a name from the cloud cannot break the table or the terminal).
    """
    align = align or "l" * len(headers)
    if len(align) != len(headers):
        raise ValueError("one alignment letter a column")
    cells = [[printable(value) for value in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values, aligns):
        return "| " + " | ".join(ALIGN[a](v, w) for v, w, a in zip(values, widths, aligns)) + " |"

    out = [rule, line(headers, "l" * len(headers)), rule]
    out += [line(row, align) for row in cells]
    out.append(rule)
    return "\n".join(out)
