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

from hltcloud.ops import audit
from hltcloud.transfer import broadcast
from hltcloud.prefill import cache_state
from hltcloud import config
from hltcloud.cloud import glance as glance_image
from hltcloud import hostlist
from hltcloud.ops import hostlock
from hltcloud.proc import runner
from hltcloud.cloud.session import Cloud
from hltcloud.errors import FAILED, OK, ToolError
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


def check_input(args):
    """Every check of the input, before the first request (the configuration checks its
    paths and image_owner when loaded): bad input costs no download. -> (cfg, ssh, hosts)"""
    cfg = config.load(args.config)
    ssh = make_ssh(args, cfg)
    hosts = [check_name(host, "host name") for host in hostlist.expand(*args.hosts)]
    if not hosts:
        raise PrefillError("no hosts given")
    if not args.image.strip():
        raise PrefillError("IMAGE must be a name or an id, not empty")
    return cfg, ssh, hosts


def find_image(args, cfg):
    """The active Glance image IMAGE names, and qemu-img's name of its format:
    (glance, image, fmt)."""
    glance = Cloud(read_timeout=cfg.read_timeout, os_cloud=args.os_cloud).glance()
    image = glance_image.find_image(glance, args.image)
    try:
        check_name(image["id"], "image id")
    except BadValue as err:
        raise PrefillError(f"Glance returned an unusable image id: {err}", exit_status=1) from None
    fmt = QEMU_FORMATS.get(image.get("disk_format") or "")
    if fmt is None:
        raise PrefillError(f"Image {image['name']} has disk format {image.get('disk_format')!r}; "
                           f"supported: {', '.join(sorted(QEMU_FORMATS))}")
    return glance, image, fmt


def prefill_hosts(args, reporter, children):
    cfg, ssh, hosts = check_input(args)
    if ssh.config_file and not args.wave:  # the chains refuse it too, but after the download
        check_node_path(ssh.config_file, "the nodes' ssh config")
    owner = cfg.image_owner
    if not args.dry_run:
        audit.start("openstack-prefill-cache", args.argv, cfg, enabled=not args.no_syslog)
        try:
            hostlock.prepare()  # an untrusted lock directory stops us before any request
        except hostlock.LockDirError as err:
            raise PrefillError(str(err)) from None
    glance, image, fmt = find_image(args, cfg)
    if not args.dry_run:
        lock_image(glance, image)
    try:
        reporter.info(f"Getting image {image['name']} (id={image['id']})")
        source = get_source(glance, image, cfg, reporter)
        try:
            # Checked before a byte leaves the head: data that makes qemu-img read other
            # files (backing, data file, extents) never reaches a node.
            glance_image.check_data(source.path, image, cfg.max_virtual_size)
            return prefill(args, reporter, children, ssh, cfg, image, fmt, owner, hosts, source)
        except KeyboardInterrupt:  # stopped first; then no host counts as done
            children.abort()
            args.lists.finish(reporter, hosts, hosts)
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


def prefill(args, reporter, children, ssh, cfg, image, fmt, owner, hosts, source):
    plan = Plan(cfg, image["id"], fmt, virtual_size(source.path, fmt), owner)
    ssh_options = ssh.options(stall=args.timeout)
    state = check_caches(hosts, plan, ssh_options, children, args.timeout)
    cached = [h for h in hosts if state[h] == "cached"]
    needed = [h for h in hosts if state[h] == "missing"]
    for host in cached:
        reporter.ok(f"{host}: already cached, skipped")
    for host in hosts:
        if state[host] not in ("cached", "missing"):
            reporter.fail(f"{host}: cannot check its cache: {state[host]}", host)
    reporter.info("Chain transferring on every node")
    if args.dry_run:
        broadcast.print_dry_run(source.path, needed, reporter, pipelined_chains=not args.wave)
        reporter.info("Converting image in parallel on all hosts")
        for host in needed:
            reporter.dry(f"{host}: qemu-img convert -f {fmt} -O raw {plan.transfer} {plan.final}")
        reporter.info("Done! (dry run: nothing changed)")
        return finish(reporter, hosts, cached, [], args.lists, done=cached + needed)
    delivered = []
    if needed:
        # Pipelined chains (faster: bench/bench_broadcast.py), the wave completing what
        # they miss; the wave alone with --wave.
        _, _, distribute = broadcast.engine(pipelined_chains=not args.wave)
        result = distribute(source.path, plan.transfer, needed, ssh, reporter, tries=args.tries,
                            timeout=args.timeout, checksum=("sha1", source.sha1))
        delivered = result.delivered()
        for host in result.failed():
            reporter.record_failure(f"{host}: transfer failed: {result.hosts[host].reason}", host)
    reporter.info("Converting image in parallel on all hosts")
    copy_size = os.path.getsize(source.path)

    def convert(host):
        reporter.info(f"{host}: Started image conversion")
        argv = plan.convert_argv(ssh_options, host, copy_size, source.sha1)
        out = children.run(argv, plan.convert_deadline(args.timeout), keep_stdin_open=True)
        if out.ok:
            reporter.info(f"{host}: Image conversion done")
            return True
        reporter.fail(f"{host}: image conversion failed: {out.cause('conversion')}", host)
        return False

    converted = [h for h, ok in runner.in_parallel(delivered, convert, FANOUT).items() if ok]
    reporter.info("Done!")
    return finish(reporter, hosts, cached, converted, args.lists)


def finish(reporter, hosts, cached, converted, lists, done=None):
    """Summary: how many hosts hold the image now; exit 1 (failed hosts folded) otherwise.
    The hosts not DONE (default: cached or converted) are the failed ones of LISTS."""
    reporter.info(f"{len(cached) + len(converted)} of {len(hosts)} host(s) have the image cached "
                  f"({len(cached)} already, {len(converted)} now)")
    ok = reporter.summary()
    done = set(cached + converted if done is None else done)
    written = lists.finish(reporter, hosts, [host for host in hosts if host not in done])
    return OK if ok and written else FAILED
