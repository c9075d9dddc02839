"""Host lists: expansion, folding, files, bad input, and parity with pdsh itself."""

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hltcloud.hostlist import MAX_HOSTS, HostListError, expand, fold, natural_key

LIB = Path(__file__).resolve().parents[3] / "lib"


def test_ranges_with_domain():
    assert expand("cn[43-45,47].internal") == [
        "cn43.internal", "cn44.internal", "cn45.internal", "cn47.internal"]


def test_zero_padding_follows_low_end():
    assert expand("cn[001-003]") == ["cn001", "cn002", "cn003"]
    assert expand("cn[8-10]") == ["cn8", "cn9", "cn10"]
    assert expand("cn[98-100]")[-1] == "cn100"
    assert expand("cn[09-10]") == ["cn09", "cn10"]


def test_several_groups_multiply():
    assert expand("cn[01-02]-ib[0-1]") == ["cn01-ib0", "cn01-ib1", "cn02-ib0", "cn02-ib1"]


def test_duplicates_dropped_first_occurrence_wins():
    assert expand("cn3,cn[1-3]", "cn1") == ["cn3", "cn1", "cn2"]


def test_list_file_with_comments_blanks_and_ranges(tmp_path):
    listing = tmp_path / "nodes.txt"
    listing.write_text("# the HLT nodes\n\n  cn[01-02].internal  \ncn05.internal\n# cn06\n")
    assert expand(f"@{listing}", "cn07.internal") == [
        "cn01.internal", "cn02.internal", "cn05.internal", "cn07.internal"]


@pytest.mark.parametrize("text, complaint", [
    ("cn[45-43]", "reversed range '45-43'"),
    ("cn[4", "unbalanced '['"),
    ("cn4]", "unbalanced ']'"),
    ("cn[a-b]", "non-numeric range 'a-b'"),
    ("cn[1,,2]", "empty range"),
    ("cn[]", "empty range '[]'"),
    ("a,,b", "empty item"),
    ("a,", "empty item"),
    ("c;n1", "invalid character(s) ';'"),
    ("cn1 cn2", "invalid character(s) ' '"),
    ("$(reboot)", "invalid character(s)"),
    ("cn[1-100001]", f"more than {MAX_HOSTS}"),
    ("a[1-400]-b[1-400]", f"more than {MAX_HOSTS}"),
    ("@/nonexistent/list.txt", "cannot read host list file '/nonexistent/list.txt'"),
])
def test_bad_input_names_the_problem(text, complaint):
    with pytest.raises(HostListError) as caught:
        expand(text)
    assert complaint in str(caught.value)
    assert "\n" not in str(caught.value)


def test_total_over_maximum_across_items():
    with pytest.raises(HostListError, match="more than"):
        expand("a[1-60000]", "b[1-60000]")


def test_file_may_not_include_files(tmp_path):
    listing = tmp_path / "nodes.txt"
    listing.write_text("@other.txt\n")
    with pytest.raises(HostListError, match="may not include another file"):
        expand(f"@{listing}")


def test_fold_shortest_form_in_natural_order():
    assert fold(expand("cn[43-45,47].internal")) == "cn[43-45,47].internal"
    assert fold(["cn10", "cn9", "cn8", "head"]) == "cn[8-9],cn10,head"
    assert fold(["cn001", "cn003", "cn002"]) == "cn[001-003]"
    assert fold(["x"]) == "x"


def test_natural_key_orders_numbers_as_numbers():
    names = ["cn10.internal", "cn9.internal", "cn100.internal", "cn1.internal"]
    assert sorted(names, key=natural_key) == [
        "cn1.internal", "cn9.internal", "cn10.internal", "cn100.internal"]


def _random_list(rng):
    """A list of items in the syntax pdsh accepts: names, 1-2 bracket groups, padding."""
    items = []
    for _ in range(rng.randint(1, 4)):
        prefix = rng.choice(["cn", "node-", "hlt_", "a.b", "x1", "fep"])
        suffix = rng.choice(["", "", ".internal", "-ib", "x"])
        groups = []
        for _ in range(rng.choice([0, 1, 1, 1, 2])):
            width = rng.choice([1, 1, 2, 3])
            parts = []
            for _ in range(rng.randint(1, 3)):
                low = rng.randint(0, 12)
                high = low + rng.randint(0, 4)
                parts.append(str(low).zfill(width) if low == high else
                             f"{str(low).zfill(width)}-{str(high).zfill(width)}")
            groups.append("[" + ",".join(parts) + "]")
        middle = rng.choice(["", "-"]).join(groups) if groups else str(rng.randint(0, 99))
        items.append(prefix + middle + suffix)
    return ",".join(items)


def _pdsh_expansion(host_list):
    out = subprocess.run(["pdsh", "-R", "exec", "-f", "64", "-w", host_list, "echo", "%h"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split(": ", 1)[1] for line in out.splitlines()]


@pytest.mark.slow  # pdsh started for each of many generated lists
@pytest.mark.skipif(not shutil.which("pdsh"), reason="pdsh is not installed (make deps)")
def test_expansion_equals_pdsh_on_generated_lists():
    rng = random.Random(20261125)
    lists = [_random_list(rng) for _ in range(300)]
    for host_list in lists:
        ours = expand(host_list)
        theirs = _pdsh_expansion(host_list)
        # pdsh keeps duplicates and runs hosts concurrently: compare as sets, and
        # check that we dropped only duplicates.
        assert set(ours) == set(theirs), host_list
        assert len(ours) == len(set(theirs)), host_list
        assert set(expand(fold(ours))) == set(ours), host_list


@pytest.mark.skipif(not shutil.which("pdsh"), reason="pdsh is not installed (make deps)")
def test_pdsh_accepts_what_we_fold():
    rng = random.Random(7)
    for _ in range(50):
        hosts = expand(_random_list(rng))
        assert set(_pdsh_expansion(fold(hosts))) == set(hosts)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hltcloud.hostlist", *args],
                          capture_output=True, text=True, env={"PYTHONPATH": str(LIB)})


def test_command_line_expand_fold_count():
    expanded = _cli("-e", "cn[43-45,47].internal")
    assert expanded.returncode == 0
    assert expanded.stdout.split() == [
        "cn43.internal", "cn44.internal", "cn45.internal", "cn47.internal"]
    folded = _cli("-f", *expanded.stdout.split())
    assert folded.stdout.strip() == "cn[43-45,47].internal"
    assert _cli("-c", "cn[1-10]", "cn5").stdout.strip() == "10"


def test_command_line_bad_input_one_line_exit_2():
    result = _cli("-e", "cn[45-43]")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == ["hostlist: reversed range '45-43' in 'cn[45-43]'"]


@pytest.mark.parametrize("module, loads_processes", [
    ("hltcloud.hostlist", False),
    ("hltcloud.proc.runner", True),  # the contrast: the check does see these imports
])
def test_the_host_list_loads_no_process_machinery(module, loads_processes):
    """A pure module stays pure: `-S` leaves out the site hooks (a .pth file of this machine
    loads threading before any code of ours runs)."""
    probe = (f"import sys; sys.path.insert(0, {str(LIB)!r}); import {module}; "
             "print(*sorted({'subprocess', 'threading'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded = done.stdout.split()
    assert bool(loaded) == loads_processes, loaded


def test_excluding_takes_the_host_list_syntax_and_says_when_none_is_left():
    from hltcloud.hostlist import excluding
    names = expand("cn[01-06].internal")
    assert excluding(names, ["cn[02-03].internal", "cn05.internal,cn99.internal"]) == [
        "cn01.internal", "cn04.internal", "cn06.internal"]
    assert excluding(names, []) == names
    with pytest.raises(HostListError, match=r"no hosts left after --exclude cn\[01-06\]"):
        excluding(names, ["cn[01-06].internal"])
