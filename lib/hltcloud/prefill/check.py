"""openstack-prefill-cache --check IMAGE HOSTS: is the image a good copy in every host's
cache? Changes nothing anywhere (no lock, no download, read-only requests and scripts).

The image's virtual size comes from `qemu-img info -f FORMAT` of the Glance store copy on
the head (as a prefill does, without the checksum pass: only the header is read), else from
Glance's `virtual_size` (or `size` for a raw image). Each host answers in one ssh session
(cache_state: node_scripts.CACHE_STATE_SCRIPT), run.FANOUT at a time. One table (or
--json), the bad hosts as failed outcomes: exit 0 when every host is good, 1 if not.
"""
import json
import os
import sys

from hltcloud.prefill import cache_state
from hltcloud.cloud import glance
from hltcloud.prefill import run
from hltcloud import table
from hltcloud.errors import FAILED, OK
from hltcloud.ops.outcomes import Outcome

HEADERS = ["Host", "Cached", "Format", "Virtual size", "Owner", "Purge", "Result"]
ALIGN = "lccrlcl"
CHECK_DEADLINE = 30  # seconds a host's check may take on top of --timeout


def expected_size(image, fmt, cfg):
    """(virtual size in bytes, where it comes from); PrefillError (exit 1) when unknown."""
    store = os.path.join(cfg.glance_images_dir, image["id"])
    if os.path.isfile(store):  # qemu-img reads only a file that the inspector passes
        glance.check_data(store, image, cfg.max_virtual_size)
        return run.virtual_size(store, fmt), f"qemu-img info of the Glance store copy {store}"
    if isinstance(image.get("virtual_size"), int):
        return image["virtual_size"], f"Glance's virtual_size (no store copy at {store})"
    if fmt == "raw" and isinstance(image.get("size"), int):
        return image["size"], f"Glance's size of the raw image (no store copy at {store})"
    raise run.PrefillError(f"cannot check image {image['name']}: its virtual size is unknown "
                               f"(no store copy at {store}, Glance records none)",
                               exit_status=FAILED)


def check_hosts(opts, tools):
    cfg, ssh = run.check_input(opts)
    hosts, reporter = list(opts.hosts), tools.reporter
    _, image, fmt = run.find_image(opts, cfg)
    size, origin = expected_size(image, fmt, cfg)
    reporter.info(f"Checking image {image['name']} (id={image['id']}) on {len(hosts)} host(s): "
                  f"virtual size {size} bytes, from {origin}")
    ssh_options = ssh.options(stall=opts.timeout, fast=True)
    name = run.cache_name(image["id"])

    def command(host):
        return cache_state.argv(ssh_options, host, cfg.base_dir, name, cfg.nova_conf)

    states = cache_state.read(hosts, command, tools.children, opts.timeout + CHECK_DEADLINE,
                              run.FANOUT)
    rows = [(states[host], cache_state.problems(states[host], size, cfg.image_owner))
            for host in hosts]
    # A host without a good copy failed: --failed-hosts gets it, a prefill of @FILE mends it.
    outcomes = [Outcome(state.host).failed(f"{state.host}: {', '.join(found)}") if found
                else Outcome(state.host) for state, found in rows]
    if opts.json:
        print(json.dumps([as_json(state, found, size) for state, found in rows], indent=1),
              file=sys.stdout, flush=True)
    else:
        reporter.write_line(table.render(HEADERS, [table_row(s, f) for s, f in rows], ALIGN))
    good = sum(1 for _, found in rows if not found)
    reporter.info(f"{good} of {len(hosts)} host(s) have a good copy of the image in "
                  f"{cfg.base_dir}/{name}")
    ok = reporter.summary(outcomes)
    written = tools.lists.finish(reporter, outcomes)
    return OK if ok and written else FAILED


def table_row(state, found):
    if not state.reachable or state.error:
        return [state.host, "?", "", "", "", "", "; ".join(found)]
    cached = {"file": "yes", "missing": "no", "link": "a link"}.get(
        state.cache, "no" if state.cache.startswith("no directory") else state.cache)
    size = "" if state.virtual_size is None else str(state.virtual_size)
    purge = {True: "on", False: "off", None: "?"}[state.purge]
    return [state.host, cached, state.format, size, state.owner,
            purge, ", ".join(found) or "ok"]


def as_json(state, found, size):
    return {"host": state.host, "ok": not found, "reachable": state.reachable,
            "cached": state.cache or None, "format": state.format or None,
            "virtual_size": state.virtual_size, "file_size": state.file_size,
            "expected_virtual_size": size,
            "owner": state.owner or None, "purge": state.purge,
            "purge_setting": state.purge_note or None, "problems": found}
