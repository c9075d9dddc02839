"""--prune's head side: which images servers use, and what a node's answer may say."""
import hashlib

import pytest

from hltcloud.prefill import prune
from hltcloud.proc.runner import Result

UUID = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
IMAGE = "0b4fcd34-1c8b-4a0f-9d1e-7a1f1e2b3c4d"


def test_in_use_maps_hosts_to_their_servers_and_cache_names():
    servers = [
        {"id": UUID, "OS-EXT-SRV-ATTR:host": "cn01", "image": {"id": IMAGE}},
        {"id": "not-a-uuid; rm -rf /", "OS-EXT-SRV-ATTR:host": "cn01", "image": {"id": IMAGE}},
        {"id": UUID.replace("6f", "7f"), "OS-EXT-SRV-ATTR:host": "cn02", "image": ""},  # a volume
    ]
    used = prune.in_use(servers)
    assert used["cn01"] == ({UUID}, {hashlib.sha1(IMAGE.encode()).hexdigest()})
    assert used["cn02"] == ({UUID.replace("6f", "7f")}, set())
    assert prune.script_words(*used["cn01"]) == [
        f"i:{UUID}", f"k:{hashlib.sha1(IMAGE.encode()).hexdigest()}"]


@pytest.mark.parametrize("stdout, candidates, removed, changed", [
    ("CANDIDATE base " + "a" * 40 + " 4096\nREMOVED base " + "a" * 40 + " 4096\n",
     [("base", "a" * 40, 4096)], [("base", "a" * 40, 4096)], []),
    ("CANDIDATE instances hlt-glance-cache-x 10\nCHANGED instances hlt-glance-cache-x\n",
     [("instances", "hlt-glance-cache-x", 10)], [], [("instances", "hlt-glance-cache-x")]),
    # what a node cannot make us print or count
    ("CANDIDATE base a\x1b[2Jb 1\nCANDIDATE etc passwd 1\nREMOVED base x 99999999999999999999999\n"
     "CANDIDATE base ../../etc 5\n", [], [], []),
])
def test_a_nodes_answer_is_taken_only_in_its_shapes(stdout, candidates, removed, changed):
    found = prune.parse("cn01", Result(["ssh"], 0, stdout, ""))
    assert (found.candidates, found.removed, found.changed, found.reason) == (
        candidates, removed, changed, "")


def test_an_unreachable_host_and_a_refusal_are_reasons():
    down = prune.parse("cn01", Result(["ssh"], 255, "", "ssh: connect to host x port 22: "
                                      "Connection timed out\n"))
    assert down.reason.startswith("unreachable: ")
    refused = prune.parse("cn01", Result(["ssh"], 1, "", "refusing: /x/y is an instance "
                                         "directory of no server Nova lists on this host\n"))
    assert "refusing: /x/y is an instance directory" in refused.reason
