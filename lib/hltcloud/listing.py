"""The listing commands' output as the openstack CLI gives it: `-f table|json|value|csv` and
`-c COLUMN` (repeatable), over records (dicts) whose keys are the stable JSON interface.

JSON carries the values as they are (numbers as numbers, lists as lists, times in ISO 8601);
the other formats show each value as text, printable (a name from the cloud cannot break a
row, a line or the terminal). A column is named by its JSON key or its table header, in any
case; an unknown one is refused with the names there are.
"""
import csv
import io
import json
from dataclasses import dataclass

from hltcloud import table
from hltcloud.errors import UsageError
from hltcloud.printable import printable

FORMATS = ("table", "json", "value", "csv")


@dataclass(frozen=True)
class Column:
    key: str  # the JSON key
    header: str  # the table's heading
    align: str = "l"  # l, r or c (table.render)
    show: object = None  # value -> its text, where the default below does not fit

    def text(self, value):
        """VALUE as one printable cell: a list joined by spaces, booleans as yes/no."""
        if self.show is not None:
            return printable(self.show(value))
        if isinstance(value, bool):
            return "yes" if value else "no"
        if value is None:
            return ""
        if isinstance(value, (list, tuple)):
            return " ".join(printable(str(item)) for item in value)
        return printable(str(value))


def _number(value):
    """VALUE if it is a number (not a truth value), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def select(columns, wanted):
    """The COLUMNS WANTED names (all when none), in the order asked; UsageError for a name
    that is no column."""
    if not wanted:
        return list(columns)
    by_name = {}
    for column in columns:
        by_name.setdefault(column.key.lower(), column)
        by_name.setdefault(column.header.lower(), column)
    chosen = []
    for name in wanted:
        column = by_name.get(name.lower())
        if column is None:
            names = ", ".join(column.key for column in columns)
            raise UsageError(f"no column {name!r} (columns: {names})")
        if column not in chosen:
            chosen.append(column)
    return chosen


def chosen(columns, opts, shown):
    """The columns a listing prints: -c's (OPTS.columns), every one for JSON, else those
    whose keys the table SHOWN by default."""
    if opts.columns:
        return select(columns, opts.columns)
    return list(columns) if opts.format == "json" else [c for c in columns if c.key in shown]


def render(fmt, columns, records):
    """RECORDS (dicts holding every column's key) in format FMT, COLUMNS only."""
    if fmt == "json":
        return json.dumps([{c.key: record.get(c.key) for c in columns} for record in records],
                          indent=1)
    rows = [[column.text(record.get(column.key)) for column in columns] for record in records]
    if fmt == "value":
        return "\n".join(" ".join(row) for row in rows)
    if fmt == "csv":  # numbers bare, the rest quoted, as the openstack CLI writes it
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        writer.writerow([column.header for column in columns])
        writer.writerows([[cell if _number(record.get(c.key)) is None else record.get(c.key)
                           for c, cell in zip(columns, row)] for record, row in zip(records, rows)])
        return out.getvalue().rstrip("\n")
    if fmt == "table":
        return table.render([c.header for c in columns], rows, "".join(c.align for c in columns))
    raise UsageError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
