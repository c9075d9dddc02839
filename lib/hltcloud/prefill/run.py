"""openstack-prefill-cache: put a Glance image into Nova's raw image cache on many hosts.

1. Look the image up in Glance (v2 API, keystoneauth1 session); its source is the Glance
   file store copy, checked against Glance's checksums (or a verified API download), then
   by image_check (format is disk_format, inspector's safety check, virtual size limit).
2. Hosts already holding a valid cached copy (<base_dir>/<sha1 of the image id>, a raw
   regular file of the image's virtual size and image_owner's, read safely by cache_state)
   are skipped; the others get the file by rsync-wave into
   <instances_dir>/hlt-glance-cache-<id>.
3. Each host converts it in parallel with `qemu-img convert -O raw` inside a private directory
   of root in <base_dir> (the transferred copy moved in and checked first), sets the owner,
   renames it into place; the transferred copy is gone afterwards whatever happened.

The command line is prefill_cli.py; the conversion script is node_scripts.CONVERT_SCRIPT.
"""
import hashlib
import json
import os
import shlex
from dataclasses import dataclass

from hltcloud.ops import audit
from hltcloud.transfer import broadcast
from hltcloud.prefill import cache_state
from hltcloud import config
from hltcloud.cloud import glance as glance_image
from hltcloud.ops import hostlock
from hltcloud.proc import runner
from hltcloud.cloud.session import Cloud
from hltcloud.errors import FAILED, OK, ToolError
from hltcloud.ops.outcomes import INTERRUPTED, Outcome, in_order
from hltcloud.node.scripts import CONVERT_SCRIPT
from hltcloud.transfer.common import check_dest, check_node_path
from hltcloud.transfer.options import make_ssh
from hltcloud.validate import BadValue, check_name

CACHE_PREFIX = "hlt-glance-cache-"
FANOUT = 32  # conversions (and cache checks) running at once
CONVERT_RATE = 10_000_000  # bytes/s of raw output assumed for the conversion deadline
# Glance disk formats and qemu-img's names for them: never let qemu-img guess (probing a raw
# image can be fooled by its content).
QEMU_FORMATS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc",
                "vhdx": "vhdx"}
class PrefillError(ToolError):
    """Bad input (exit status 2) or an unusable image (1): one line, nothing sent."""


def cache_name(image_id):
    """Nova's name for a cached image: the sha1 of the image id (as the original README)."""
    return hashlib.sha1(image_id.encode()).hexdigest()


# ---------------------------------------------------------------- the image on the head

class Source:
    """The verified image file on the head (the store copy, or a temporary download)."""

    def __init__(self, path, sha1, temporary):
        self.path, self.sha1, self.temporary = path, sha1, temporary

    def cleanup(self):
        if self.temporary and os.path.exists(self.path):
            os.unlink(self.path)


def get_source(glance, image, cfg, reporter):
    store = os.path.join(cfg.glance_images_dir, image["id"])
    if os.path.isfile(store):
        return Source(store, glance_image.verify_store_copy(store, image), temporary=False)
    reporter.info(f"No copy in the Glance file store ({store}): downloading it through the API")
    path, sha1 = glance_image.download(glance, image)
    return Source(path, sha1, temporary=True)


def virtual_size(path, fmt):
    res = runner.run(["qemu-img", "info", "--output=json", "-f", fmt, path], timeout=60)
    if not res.ok:
        raise PrefillError(f"cannot read the image {path}: {res.reason()}", exit_status=1)
    return int(json.loads(res.stdout)["virtual-size"])


# ---------------------------------------------------------------- commands on the hosts

class Plan:
    """Paths and remote commands for one image."""

    def __init__(self, cfg, image_id, fmt, size, owner):
        self.image_id = check_name(image_id, "image id")
        self.fmt = fmt
        self.virtual_size = size
        self.owner = owner
        self.base_dir = cfg.base_dir.rstrip("/")
        self.instances_dir = cfg.instances_dir  # checked on the node before anything lands
        self.final = check_dest(os.path.join(self.base_dir, cache_name(image_id)))
        self.transfer = check_dest(os.path.join(cfg.instances_dir, CACHE_PREFIX + image_id))

    def check_argv(self, ssh_options, host):
        """ssh HOST: the read-only state of the cached copy (cache_state; nova.conf aside)."""
        return cache_state.argv(ssh_options, host, self.base_dir,
                                os.path.basename(self.final), "")

    def is_valid_cache(self, state):
        """A raw regular file (not a link) of the image's virtual size, the owner's: what
        --check calls good, nova.conf aside (a prefill cannot change that)."""
        return state.reachable and not state.error and \
            not cache_state.copy_problems(state, self.virtual_size) and \
            cache_state.owner_matches(state, self.owner)

    def convert_script(self, size, sha1):
        """The remote command: convert the transferred copy (SIZE bytes, SHA1 as the head
        verified it) into the cache inside a private directory (CONVERT_SCRIPT), once the
        instances dir and the base dir are found real, at their path, root's or the owner's."""
        return shlex.join(["sh", "-c", CONVERT_SCRIPT, "hlt-convert", self.transfer,
                           self.base_dir, os.path.basename(self.final), self.fmt, self.owner,
                           str(int(size)), sha1, self.instances_dir])

    def convert_argv(self, ssh_options, host, size, sha1):
        """ssh HOST: the conversion, killed with its whole group when our ssh goes away."""
        return runner.ssh_argv(ssh_options, host, runner.watched(self.convert_script(size, sha1)))

    def convert_deadline(self, timeout):
        return timeout + self.virtual_size / CONVERT_RATE


def check_caches(hosts, plan, cmds_ssh, children, timeout):
    """{host: "cached" | "missing" | reason it cannot be reached}."""
    states = cache_state.read(hosts, lambda host: plan.check_argv(cmds_ssh, host), children,
                              timeout + 30, FANOUT)
    return {host: state.error if not state.reachable else
            "cached" if plan.is_valid_cache(state) else "missing"
            for host, state in states.items()}


def check_input(opts):
    """Every check of the input the command line could not make, before the first request
    (the configuration checks its paths and image_owner when loaded): bad input costs no
    download. -> (cfg, ssh)"""
    cfg = config.load(opts.config)
    return cfg, make_ssh(opts, cfg)


def find_image(opts, cfg):
    """The active Glance image IMAGE names, and qemu-img's name of its format:
    (glance, image, fmt)."""
    glance = Cloud(read_timeout=cfg.read_timeout, os_cloud=opts.os_cloud).glance()
    image = glance_image.find_image(glance, opts.image)
    try:
        check_name(image["id"], "image id")
    except BadValue as err:
        raise PrefillError(f"Glance returned an unusable image id: {err}", exit_status=1) from None
    fmt = QEMU_FORMATS.get(image.get("disk_format") or "")
    if fmt is None:
        raise PrefillError(f"Image {image['name']} has disk format {image.get('disk_format')!r}; "
                           f"supported: {', '.join(sorted(QEMU_FORMATS))}")
    return glance, image, fmt


@dataclass(frozen=True)
class Tools:
    """What a run reports through, runs its processes in, and ends with."""
    reporter: object  # report.Reporter
    children: object  # runner.ProcessGroups: Ctrl-C ends them all
    lists: object  # rerun.HostLists: --failed-hosts, --ok-hosts, the re-run line


@dataclass(frozen=True)
class Job:
    """What a prefill works on, once checked and looked up."""
    cfg: object  # the site configuration
    ssh: object  # runner.Ssh
    image: dict  # Glance's record
    fmt: str  # qemu-img's name of its format
    source: Source  # the verified image file on the head


def prefill_hosts(opts, tools):
    cfg, ssh = check_input(opts)
    if ssh.config_file and not opts.wave:  # the chains refuse it too, but after the download
        check_node_path(ssh.config_file, "the nodes' ssh config")
    reporter = tools.reporter
    if not opts.dry_run:
        reporter.record = audit.start("openstack-prefill-cache", opts.argv, cfg,
                                      enabled=not opts.no_syslog)
        try:
            hostlock.prepare()  # an untrusted lock directory stops us before any request
        except hostlock.LockDirError as err:
            raise PrefillError(str(err)) from None
    glance, image, fmt = find_image(opts, cfg)
    if not opts.dry_run:
        lock_image(glance, image)
    try:
        reporter.info(f"Getting image {image['name']} (id={image['id']})")
        source = get_source(glance, image, cfg, reporter)
        try:
            # Checked before a byte leaves the head: data that makes qemu-img read other
            # files (backing, data file, extents) never reaches a node.
            glance_image.check_data(source.path, image, cfg.max_virtual_size)
            return prefill(opts, tools, Job(cfg, ssh, image, fmt, source))
        except KeyboardInterrupt:  # stopped first; then no host counts as done
            tools.children.abort()
            tools.lists.finish(reporter, [Outcome(host, INTERRUPTED, "interrupted")
                                          for host in opts.hosts])
            raise
        finally:
            source.cleanup()
    finally:
        hostlock.release_all()


def lock_image(glance, image):
    """One prefill of an image at a time: two would share the hosts' transfer file
    (<instances_dir>/hlt-glance-cache-<id>) and each one's cleanup would remove it under the
    other. Held until the run ends."""
    try:
        hostlock.acquire(glance.get_endpoint() or "", f"prefill-{image['id']}",
                         tool="openstack-prefill-cache", what=f"image {image['id']}")
    except hostlock.Busy as err:
        raise PrefillError(f"{err}: try again when it has finished", exit_status=1) from None
    except OSError as err:
        raise PrefillError(f"cannot take the image lock: {err}") from None


def prefill(opts, tools, job):
    """The prefill of OPTS.hosts once the image is known (JOB): the run's exit status."""
    reporter, hosts = tools.reporter, list(opts.hosts)
    plan = Plan(job.cfg, job.image["id"], job.fmt, virtual_size(job.source.path, job.fmt),
                job.cfg.image_owner)
    ssh_options = job.ssh.options(stall=opts.timeout)
    state = check_caches(hosts, plan, ssh_options, tools.children, opts.timeout)
    cached = [h for h in hosts if state[h] == "cached"]
    needed = [h for h in hosts if state[h] == "missing"]
    outcomes = []
    for host in cached:
        reporter.ok(f"{host}: already cached, skipped")
        outcomes.append(Outcome(host))
    for host in hosts:
        if state[host] not in ("cached", "missing"):
            reason = f"{host}: cannot check its cache: {state[host]}"
            reporter.show_fail(reason)
            outcomes.append(Outcome(host).failed(reason))
    reporter.info("Chain transferring on every node")
    if opts.dry_run:
        broadcast.print_dry_run(job.source.path, needed, reporter, pipelined_chains=not opts.wave)
        reporter.info("Converting image in parallel on all hosts")
        for host in needed:
            reporter.dry(f"{host}: qemu-img convert -f {job.fmt} -O raw {plan.transfer} {plan.final}")
        reporter.info("Done!")
        return finish(tools, hosts, outcomes + [Outcome(host) for host in needed], len(cached), 0,
                      dry=True)
    delivered = _transfer(opts, reporter, job, plan, needed, outcomes) if needed else []
    reporter.info("Converting image in parallel on all hosts")
    converted = _convert(opts, tools, job, plan, ssh_options, delivered)
    outcomes += converted
    reporter.info("Done!")
    return finish(tools, hosts, outcomes, len(cached), sum(1 for o in converted if o.ok))


def _transfer(opts, reporter, job, plan, needed, outcomes):
    """Send the image to the NEEDED hosts: those that got it; the others' outcomes (failed,
    not shown: the transfer printed why) added to OUTCOMES."""
    # Pipelined chains (faster: bench/bench_broadcast.py), the wave completing what they
    # miss; the wave alone with --wave.
    _, _, distribute = broadcast.engine(pipelined_chains=not opts.wave)
    result = distribute(job.source.path, plan.transfer, needed, job.ssh, reporter,
                        tries=opts.tries, timeout=opts.timeout, checksum=("sha1", job.source.sha1))
    outcomes += [Outcome(o.host).failed(f"{o.host}: transfer failed: {o.reason}")
                 for o in result.outcomes() if not o.ok]
    return result.delivered()


def _convert(opts, tools, job, plan, ssh_options, hosts):
    """Convert the transferred copy into the cache on each of HOSTS, FANOUT at a time: their
    outcomes, in the order they ended."""
    reporter = tools.reporter
    copy_size = os.path.getsize(job.source.path)

    def convert(host):
        reporter.info(f"{host}: Started image conversion")
        argv = plan.convert_argv(ssh_options, host, copy_size, job.source.sha1)
        out = tools.children.run(argv, plan.convert_deadline(opts.timeout), keep_stdin_open=True)
        if out.ok:
            reporter.info(f"{host}: Image conversion done")
            return Outcome(host)
        reason = f"{host}: image conversion failed: {out.cause('conversion')}"
        reporter.show_fail(reason)
        return Outcome(host).failed(reason)

    return list(runner.in_parallel(hosts, convert, FANOUT).values())


def finish(tools, hosts, outcomes, already, now, dry=False):
    """Summary: how many hosts hold the image now (ALREADY cached, NOW converted); exit 1
    (failed hosts folded) otherwise. The lists come from the OUTCOMES."""
    reporter = tools.reporter
    reporter.info(f"{already + now} of {len(hosts)} host(s) have the image cached "
                  f"({already} already, {now} now)")
    ok = reporter.summary(outcomes, dry="" if dry else None)
    written = tools.lists.finish(reporter, in_order(outcomes, hosts))
    return OK if ok and written else FAILED
