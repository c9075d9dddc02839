"""pdsh-style host lists: expand `cn[43-45,47].internal` and `@file`, fold back.

Syntax (as pdsh -w, the subset operators use):
- items separated by commas (commas inside brackets belong to the range);
- `[a-b,c]` numeric ranges; zero padding follows the low end (`[001-003]`);
  several bracket groups in one name multiply (`cn[01-02]-ib[0-1]`);
- `@file`: one item a line, `#` comments and blank lines skipped, spaces trimmed; a regular
  file of at most MAX_FILE_BYTES, which may not name another file;
- duplicates are dropped, the first occurrence wins.

Refused: range bounds of more than MAX_DIGITS digits or with non-ASCII digits, names longer
than MAX_NAME (DNS) and names starting with '-' or '.' (an ssh or pdsh option, not a host).
"""

import itertools
import math
import re
import sys

from hltcloud.errors import UsageError
from hltcloud.inputs import InputError, OneLineParser, read_small_text

MAX_HOSTS = 100_000
MAX_DIGITS = 9  # per range bound: a billion hosts is already far beyond MAX_HOSTS
MAX_NAME = 253  # a DNS name
MAX_FILE_BYTES = 1 << 20  # an @file: 100,000 names of 10 characters
_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?")  # not \d: it matches any Unicode digit
_DIGIT_RUNS = re.compile(r"([0-9]+)")


class HostListError(UsageError):
    """A host list that cannot be expanded; the message names the offending text."""


def natural_key(name):
    """Sort key putting cn9 before cn10: digit runs compare as numbers."""
    parts = _DIGIT_RUNS.split(name)
    return [int(part) if index % 2 else part.lower() for index, part in enumerate(parts)], name


def _split_top_level(text):
    """Split at commas outside brackets, checking that brackets balance."""
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
            if depth > 1:
                raise HostListError(f"nested '[' in host list {text!r}")
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise HostListError(f"unbalanced ']' in host list {text!r}")
        elif char == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    if depth:
        raise HostListError(f"unbalanced '[' in host list {text!r}")
    items.append(text[start:])
    return items


def _parse_ranges(body, item):
    """`43-45,47` -> list of formatted numbers (strings)."""
    if not body:
        raise HostListError(f"empty range '[]' in {item!r}")
    numbers = []
    for part in body.split(","):
        match = _RANGE.fullmatch(part)
        if not match:
            what = "empty range" if not part else f"non-numeric range {part!r}"
            raise HostListError(f"{what} in {item!r}")
        low_text, high_text = match.group(1), match.group(2) or match.group(1)
        if max(len(low_text), len(high_text)) > MAX_DIGITS:
            raise HostListError(f"range bound longer than {MAX_DIGITS} digits in {_short(item)}")
        low, high = int(low_text), int(high_text)
        if low > high:
            raise HostListError(f"reversed range {part!r} in {item!r}")
        numbers.append((low, high, len(low_text)))
    return numbers


def _segments(item):
    """An item as a list of alternatives per position: literals and ranges."""
    segments, rest = [], item
    while rest:
        open_at = rest.find("[")
        if open_at < 0:
            segments.append(("text", rest))
            break
        close_at = rest.index("]", open_at)
        if open_at:
            segments.append(("text", rest[:open_at]))
        segments.append(("ranges", _parse_ranges(rest[open_at + 1:close_at], item)))
        rest = rest[close_at + 1:]
    return segments


def _short(text, keep=60):
    """TEXT quoted for a message, cut so that a huge item stays one readable line."""
    return repr(text) if len(text) <= keep else repr(text[:keep]) + f"... ({len(text)} characters)"


def _check_literals(segments, item):
    if item[0] in "-.":
        raise HostListError(f"host name may not start with {item[0]!r}: {_short(item)}")
    for kind, value in segments:
        if kind == "text" and not _NAME_CHARS.fullmatch(value):
            bad = sorted(set(re.sub(r"[A-Za-z0-9._-]", "", value)))
            raise HostListError(f"invalid character(s) {''.join(bad)!r} in host name {_short(item)}")


def check_host(name):
    """NAME, one host name from elsewhere than the command line (Nova, a cache), held to the
    command line's rule for a name: else HostListError naming it (quoted printably)."""
    if not isinstance(name, str) or not name:
        raise HostListError(f"empty host name: {name!r}")
    _check_literals([("text", name)], name)
    if len(name) > MAX_NAME:
        raise HostListError(f"host name longer than {MAX_NAME} characters: {_short(name)}")
    return name


def _count(segments):
    return math.prod(sum(high - low + 1 for low, high, _ in value)
                     for kind, value in segments if kind == "ranges")


def _longest(segments):
    """Length of the longest name the segments expand to."""
    return sum(len(value) if kind == "text" else
               max(max(width, len(str(high))) for _, high, width in value)
               for kind, value in segments)


def _alternatives(kind, value):
    if kind == "text":
        return [value]
    return [str(number).zfill(width) for low, high, width in value
            for number in range(low, high + 1)]


def _expand_item(item, budget):
    segments = _segments(item)
    _check_literals(segments, item)
    if _longest(segments) > MAX_NAME:
        raise HostListError(f"host name longer than {MAX_NAME} characters: {_short(item)}")
    if _count(segments) > budget:
        raise HostListError(f"host list expands to more than {MAX_HOSTS} hosts (at {_short(item)})")
    choices = [_alternatives(kind, value) for kind, value in segments]
    return ["".join(parts) for parts in itertools.product(*choices)]


def _read_list_file(path):
    try:
        lines = read_small_text(path, MAX_FILE_BYTES, "host list file").splitlines()
    except InputError as err:
        raise HostListError(str(err)) from None
    entries = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith("@"):
            raise HostListError(f"host list file {path!r} may not include another file ({entry!r})")
        entries.append(entry)
    return entries


def _items(specs):
    for spec in specs:
        for item in _split_top_level(spec):
            if not item:
                raise HostListError(f"empty item in host list {spec!r}")
            if item.startswith("@"):
                for entry in _read_list_file(item[1:]):
                    for sub_item in _split_top_level(entry):
                        if not sub_item:
                            raise HostListError(f"empty item in {entry!r} of file {item[1:]!r}")
                        yield sub_item
            else:
                yield item


def expand(*specs):
    """Expand host lists (strings, each may hold commas and @files) into unique names."""
    hosts = {}
    for item in _items(specs):
        for host in _expand_item(item, MAX_HOSTS):
            hosts.setdefault(host, None)
        if len(hosts) > MAX_HOSTS:
            raise HostListError(f"host list expands to more than {MAX_HOSTS} hosts")
    return list(hosts)


def excluding(names, words):
    """NAMES without the hosts of the host lists WORDS (-x, --exclude: the same syntax, a name
    not in NAMES is no error); HostListError when none is left."""
    if not words:
        return list(names)
    gone = set(expand(*words))
    left = [name for name in names if name not in gone]
    if names and not left:
        raise HostListError(f"no hosts left after --exclude {' '.join(words)}")
    return left


def _runs(numbers):
    """Sorted ints -> [(first, last)] of consecutive runs."""
    runs = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return runs


def fold(hosts):
    """The shortest pdsh-style list of hosts (natural order): cn[43-45,47].internal."""
    groups, plain = {}, []
    for host in dict.fromkeys(hosts):
        parts = _DIGIT_RUNS.split(host)
        if len(parts) == 1:
            plain.append(host)
            continue
        prefix, digits, suffix = "".join(parts[:-2]), parts[-2], parts[-1]
        groups.setdefault((prefix, suffix, len(digits)), []).append(int(digits))
    folded = [(host, host) for host in plain]
    for (prefix, suffix, width), numbers in groups.items():
        numbers.sort()
        if len(numbers) == 1:
            text = f"{prefix}{str(numbers[0]).zfill(width)}{suffix}"
        else:
            ranges = ",".join(str(a).zfill(width) if a == b else
                              f"{str(a).zfill(width)}-{str(b).zfill(width)}"
                              for a, b in _runs(numbers))
            text = f"{prefix}[{ranges}]{suffix}"
        folded.append((f"{prefix}{str(numbers[0]).zfill(width)}{suffix}", text))
    folded.sort(key=lambda pair: natural_key(pair[0]))
    return ",".join(text for _, text in folded)


def main(argv=None):
    parser = OneLineParser(prog="python3 -m hltcloud.hostlist",
                           description="Expand, fold or count pdsh-style host lists.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("-e", "--expand", action="store_true", help="one host a line")
    mode.add_argument("-f", "--fold", action="store_true", help="the shortest list")
    mode.add_argument("-c", "--count", action="store_true", help="number of hosts")
    parser.add_argument("lists", nargs="+", metavar="LIST", help="hosts, ranges, @files")
    try:
        args = parser.parse_args(argv)
        hosts = expand(*args.lists)
    except (HostListError, UsageError) as err:
        print(f"hostlist: {err}", file=sys.stderr)
        return 2
    if args.expand:
        print("\n".join(hosts))
    elif args.fold:
        print(fold(hosts))
    else:
        print(len(hosts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
