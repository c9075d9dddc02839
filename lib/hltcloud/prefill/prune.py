"""openstack-prefill-cache --prune HOSTS: what prefills left in Nova's image cache and no
server uses any more, removed host by host (the site keeps remove_unused_base_images off so
that Nova never drops a prefilled image: _base only grows without this).

On each host, a cached image (<base_dir>/<40 hex digits>, the sha1 of an image id) goes when
no server Nova lists on that host uses its image (every project, every state, deleting
included), --keep does not name it, and it is older than --min-age; so do the leftovers of
interrupted prefills (transfer copies and private directories) older than that. A host with
an instance directory Nova does not list is left alone and reported: that VM may use any
image. The node side is node/prune.sh (read first, then each removal by one rename into a
private directory, checked there). A dry run lists what would go and the space it frees; a
real run lists the same, then removes.
"""
import hashlib
import re
import shlex
from dataclasses import dataclass, field

from hltcloud.cloud import computes
from hltcloud.cloud import glance as glance_image
from hltcloud.cloud.jsonapi import ApiError
from hltcloud.cloud.nova import Nova
from hltcloud.cloud.session import Cloud, CloudError, describe_error
from hltcloud.errors import FAILED, OK
from hltcloud.node.scripts import PRUNE_SCRIPT
from hltcloud.ops import audit
from hltcloud.ops.outcomes import Outcome
from hltcloud.prefill import run
from hltcloud.printable import printable
from hltcloud.proc import runner
from hltcloud.transfer.common import format_size

DEFAULT_MIN_AGE_HOURS = 24
MAX_MIN_AGE_HOURS = 24 * 3650
PRUNE_DEADLINE = 120  # seconds a host's listing and removal may take on top of --timeout
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_LINE = re.compile(r"(CANDIDATE|REMOVED) (instances|base) ([A-Za-z0-9._-]{1,255}) (\d{1,20})\Z"
                   r"|CHANGED (instances|base) ([A-Za-z0-9._-]{1,255})\Z")


def cache_name(image_id):
    """Nova's name of an image in _base: the sha1 of its id."""
    return hashlib.sha1(image_id.encode()).hexdigest()


def in_use(servers):
    """{host: (server ids, cache names of their images)} from Nova's servers; ids that are
    not uuids (the cloud's text, checked where it enters) are left out: they cannot name an
    instance directory, nor travel to a node."""
    used = {}
    for server in servers:
        host = computes.server_host(server)
        ids, names = used.setdefault(host, (set(), set()))
        if isinstance(server.get("id"), str) and _UUID.match(server["id"]):
            ids.add(server["id"])
        image = server.get("image")
        if isinstance(image, dict) and isinstance(image.get("id"), str):
            names.add(cache_name(image["id"]))
    return used


def script_words(ids, names):
    """The node script's words: i:UUID for each server, k:NAME for each cache name kept."""
    return [f"i:{i}" for i in sorted(ids)] + [f"k:{n}" for n in sorted(names)]


def argv(ssh_options, host, cfg, min_age_hours, remove, words):
    script = shlex.join(["sh", "-c", PRUNE_SCRIPT, "hlt-prune", cfg.instances_dir,
                         cfg.base_dir.rstrip("/"), str(int(min_age_hours * 3600)),
                         "remove" if remove else "list", cfg.image_owner, *words])
    return runner.ssh_argv(ssh_options, host, runner.watched_command(script))


@dataclass
class HostPrune:
    """What the script said on one host: (where, name, bytes) listed and removed, names that
    changed under it, and why it failed (empty when it did not)."""
    host: str
    candidates: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    reason: str = ""

    def freed(self, remove):
        return sum(size for _, _, size in (self.removed if remove else self.candidates))


def parse(host, out):
    """The script's RESULT (runner.Result) -> HostPrune; a line of another shape is ignored
    (what the node prints is checked where it enters)."""
    found = HostPrune(host)
    for line in out.stdout.splitlines():
        match = _LINE.match(line)
        if match and match.group(1):
            entry = (match.group(2), match.group(3), int(match.group(4)))
            (found.candidates if match.group(1) == "CANDIDATE" else found.removed).append(entry)
        elif match:
            found.changed.append((match.group(5), match.group(6)))
    if out.returncode == 255 or out.timed_out or out.aborted:
        found.reason = f"unreachable: {out.cause('ssh')}"
    elif not out.ok:
        found.reason = out.cause("the prune")
    return found


def report_host(reporter, found, cfg, remove):
    """One line a file listed, the host's total or its failure: the host's Outcome."""
    where = {"instances": cfg.instances_dir, "base": cfg.base_dir.rstrip("/")}
    verb = "removing" if remove else "would remove"
    for place, name, size in found.candidates:
        reporter.info(f"{found.host}: {verb} {where[place]}/{name} ({format_size(size)})")
    for place, name in found.changed:
        reporter.warn(f"{found.host}: {where[place]}/{name} changed while pruning: left alone")
    missed = len(found.candidates) - len(found.removed) if remove else 0
    reason = printable(found.reason) or (
        f"{missed} of {len(found.candidates)} not removed" if missed else "")
    if reason:
        reporter.show_fail(f"{found.host}: {reason}")
        return Outcome(found.host).failed(f"{found.host}: {reason}")
    items = found.removed if remove else found.candidates
    reporter.ok(f"{found.host}: {'freed' if remove else 'would free'} "
                f"{format_size(found.freed(remove))} ({len(items)} item(s))")
    return Outcome(found.host)


def kept_names(cloud, refs):
    """The cache names of the images --keep names (ids, or names Glance knows)."""
    names = set()
    for ref in refs:
        image_id = ref if _UUID.match(ref) else glance_image.find_image(cloud.glance(), ref)["id"]
        names.add(cache_name(image_id))
    return names


def prune_hosts(opts, tools):
    """--prune: every host of OPTS at once (run.FANOUT at a time); the run's exit status."""
    cfg, ssh = run.check_input(opts)
    reporter, remove = tools.reporter, not opts.dry_run
    if remove:
        reporter.record = audit.start("openstack-prefill-cache", opts.argv, cfg,
                                      enabled=not opts.no_syslog)
    cloud = Cloud(read_timeout=cfg.read_timeout, os_cloud=opts.os_cloud)
    try:
        used = in_use(Nova(cloud).servers())  # one listing: every project, every state
    except ApiError as err:
        raise CloudError(f"cannot list the servers: {describe_error(err)}") from None
    keep = kept_names(cloud, opts.keep)
    ssh_options = ssh.options(stall=opts.timeout, fast=True)
    reporter.info(f"{'Pruning' if remove else 'Would prune'} the image caches of "
                  f"{len(opts.hosts)} host(s): images no server there uses, older than "
                  f"{opts.min_age} h" + (f", but {len(keep)} kept" if keep else ""))

    def one(host):
        ids, names = used.get(host, (set(), set()))
        command = argv(ssh_options, host, cfg, opts.min_age, remove,
                       script_words(ids, names | keep))
        return parse(host, tools.children.run(command, opts.timeout + PRUNE_DEADLINE,
                                              keep_stdin_open=True))

    found = runner.in_parallel(opts.hosts, one, run.FANOUT)
    outcomes = [report_host(reporter, found[host], cfg, remove) for host in opts.hosts]
    freed = format_size(sum(found[host].freed(remove) for host in opts.hosts))
    reporter.info(f"{'Freed' if remove else 'Would free'} {freed} on {len(opts.hosts)} host(s)")
    ok = reporter.summary(outcomes, dry=None if remove else "")
    return OK if tools.lists.finish(reporter, outcomes) and ok else FAILED
