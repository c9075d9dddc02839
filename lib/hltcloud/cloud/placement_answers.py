"""Placement's answers checked where they enter (placement.py reads them): the shapes the tools
rely on, provider uuids that are uuids (they go into the next request's path) and figures
that are figures. Whoever answers for Placement (a wrong endpoint in the catalog, a proxy, a
Placement of another age) gets one ApiError naming the part it got wrong, never a traceback
or a path of its choosing. Pure: plain data in, plain data out.
"""
import math
import re

from hltcloud.cloud.jsonapi import ApiError
from hltcloud.printable import printable

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_CLASS = re.compile(r"[A-Z0-9_]{1,255}")  # Placement's own rule for a resource class name
MAX_FIGURE = 2 ** 53  # far above any inventory; a float still holds every integer below it


class Malformed(ApiError):
    """Placement answered with something the tools cannot read."""

    def __init__(self, path, what, value):
        shown = printable(repr(value))
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        super().__init__(f"placement answered GET {path} with {what}: {shown}")


def _field(mapping, key, kind, path, what):
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if not isinstance(value, kind):
        raise Malformed(path, f"{what} without its {key!r}", mapping)
    return value


def provider_uuid(value, path):
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value
    raise Malformed(path, "a resource provider uuid that is not one", value)


def figure(value, path, what):
    """A count or a ratio: a finite number from 0 to MAX_FIGURE."""
    if (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= MAX_FIGURE):
        return value
    raise Malformed(path, f"{what} that is not a figure", value)


def _classes(mapping, path, fields, required):
    """{class: {field: figure}} of MAPPING, with each of FIELDS it has (REQUIRED: must)."""
    if not isinstance(mapping, dict):
        raise Malformed(path, "resources that are not a mapping", mapping)
    checked = {}
    for rc, values in mapping.items():
        if not isinstance(rc, str) or not _CLASS.fullmatch(rc):
            raise Malformed(path, "a resource class that is not a name", rc)
        if not isinstance(values, dict) or not required <= values.keys():
            raise Malformed(path, f"{rc} without {' and '.join(sorted(required))}", values)
        checked[rc] = {key: figure(values[key], path, f"{rc} {key}")
                       for key in fields if key in values}
    return checked


def providers(answer, path):
    """{name: uuid} from GET /resource_providers."""
    found = {}
    for item in _field(answer, "resource_providers", list, path, "the answer"):
        name = _field(item, "name", str, path, "a resource provider")
        found[name] = provider_uuid(_field(item, "uuid", str, path, "a resource provider"), path)
    return found


def candidates(answer, path):
    """{uuid: {class: {"capacity", "used"}}} of the providers whose allocation request holds
    them alone, from GET /allocation_candidates (microversion 1.12 or later)."""
    alone = set()
    for request in _field(answer, "allocation_requests", list, path, "the answer"):
        allocations = _field(request, "allocations", dict, path, "an allocation request")
        for uuid in allocations:
            provider_uuid(uuid, path)
        if len(allocations) == 1:
            alone.update(allocations)
    summaries = _field(answer, "provider_summaries", dict, path, "the answer")
    return {uuid: _classes(_field(summary, "resources", dict, path, "a provider summary"),
                           path, ("capacity", "used"), {"capacity", "used"})
            for uuid, summary in summaries.items() if uuid in alone}


INVENTORY_FIELDS = ("total", "reserved", "allocation_ratio", "min_unit", "max_unit", "step_size")


def inventories(answer, path):
    """{class: {field: figure}} from GET /resource_providers/<uuid>/inventories."""
    return _classes(_field(answer, "inventories", dict, path, "the answer"), path,
                    INVENTORY_FIELDS, {"total"})
