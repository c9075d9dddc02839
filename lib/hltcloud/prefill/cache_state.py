"""What a host holds in Nova's image cache, read in one ssh session per host (read only).

node_scripts.CACHE_STATE_SCRIPT prints key=value lines; parse() turns them into a State,
problems() says what keeps it from being a good copy: a raw regular file (not a link) of
the image's virtual size, owned as Nova needs, that Nova will not purge (nova.conf's
remove_unused_base_images). The node only stats, reads the first 512 bytes (no link
followed) and greps; it runs no qemu-img on a name nova can change. The judgement is made here.
"""
import re
import shlex
from dataclasses import dataclass

from hltcloud.proc import runner
from hltcloud.node.scripts import CACHE_STATE_SCRIPT

PURGE_KEY = "remove_unused_base_images"
# Headers of the formats qemu-img knows, at offset 0 (as Nova's format inspector looks):
# a cached file that starts with one is not a raw image, whatever its name.
MAGIC = ((b"QFI\xfb", "qcow2"), (b"QED\x00", "qed"), (b"KDMV", "vmdk"),
         (b"# Disk DescriptorFile", "vmdk"), (b"vhdxfile", "vhdx"), (b"conectix", "vpc"),
         (b"LUKS\xba\xbe", "luks"), (b"<<< ", "vdi"))
_PURGE_LINE = re.compile(rf"{PURGE_KEY}[ \t]*[=:](.*)")
_BOOLEANS = {"true": True, "1": True, "on": True, "yes": True,
             "false": False, "0": False, "off": False, "no": False}


@dataclass
class State:
    """One host's answer. CACHE: "file", "missing", "link", "directory", "not a regular
    file" or "no directory PATH"; PURGE: True/False, None when unknown (PURGE_NOTE says why)."""
    host: str
    reachable: bool = True
    error: str = ""  # why it could not be read (ssh's line, a timeout, ...)
    cache: str = ""
    owner: str = ""  # USER:GROUP names
    ids: str = ""  # UID:GID
    virtual_size: int = None  # as a raw image: the size rounded up to 512 bytes (qemu-img's)
    file_size: int = None
    format: str = ""
    changed: bool = False
    purge: bool = None
    purge_note: str = ""


def argv(ssh_options, host, base_dir, name, nova_conf):
    """ssh HOST: the read-only script, its values as arguments; killed with its group when
    our ssh goes away."""
    script = shlex.join(["sh", "-c", CACHE_STATE_SCRIPT, "hlt-cache-state", base_dir, name,
                         nova_conf])
    return runner.ssh_argv(ssh_options, host, runner.watched_command(script))


def read(hosts, command, children, deadline, fanout):
    """{host: State}, FANOUT hosts at a time; COMMAND(host) is the argv of argv()."""
    def one(host):
        out = children.run(command(host), deadline, keep_stdin_open=True)
        if out.returncode == 255 or out.timed_out or out.aborted:
            return State(host, reachable=False, error=out.cause("ssh"))
        if not out.ok:
            return State(host, error=out.cause("the check"))
        return parse(host, out.stdout)
    return runner.in_parallel(hosts, one, fanout)


def parse(host, text):
    """The script's output -> State."""
    state, values, conf = State(host), {}, []
    for line in text.splitlines():
        if line.startswith("conf:"):
            conf.append(line[5:])
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    state.purge, state.purge_note = purge_setting(values, conf)
    state.cache = values.get("cache", "")
    if "stat" in values:
        kind, _inode, size, owner, ids = (values["stat"].split("|") + [""] * 5)[:5]
        state.cache = {"regular file": "file", "regular empty file": "file",
                       "symbolic link": "link", "directory": "directory"}.get(
                           kind, "not a regular file")
        if state.cache == "file":
            state.owner, state.ids = owner, ids
            state.changed = "stat2" in values and values["stat2"] != values["stat"]
            if size.isdigit():
                state.file_size = int(size)
                state.virtual_size = -(-state.file_size // 512) * 512
            state.format = sniff_format(values.get("magic", ""))
    return state


def sniff_format(hex_head):
    """The format whose header the file's first bytes carry, or "raw"."""
    try:
        head = bytes.fromhex(hex_head)
    except ValueError:
        return "unreadable"
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    return "raw"


def purge_setting(values, conf_lines):
    """(purge, note): does Nova remove unused base images? As oslo.config reads nova.conf:
    a line starting with a blank continues the one before; section names are lower-cased
    (DEFAULT aside); the last value wins; [image_cache] (Nova 21+) wins over [DEFAULT]
    (older releases); the default is True."""
    if "novaconf_rc" not in values:
        return None, f"nova.conf {values.get('novaconf') or 'not read'}"
    if values["novaconf_rc"] not in ("0", "1"):  # grep: 1 = nothing matched
        return None, "nova.conf unreadable"
    section, found = "", {}
    for line in conf_lines:
        if line.startswith("["):
            name = line.strip().strip("[]").strip()
            section = name if name == "DEFAULT" else name.lower()
        elif (match := _PURGE_LINE.match(line)) and section in ("DEFAULT", "image_cache"):
            value = match.group(1).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            found[section] = value
    value = found.get("image_cache", found.get("DEFAULT"))
    if value is None:
        return True, "not set (default True)"
    if value.lower() not in _BOOLEANS:
        return None, f"{PURGE_KEY} = {value!r} is not a boolean"
    return _BOOLEANS[value.lower()], f"{PURGE_KEY} = {value}"


def owner_matches(state, owner):
    """OWNER (USER or USER:GROUP, names or numbers) against the file's names and ids."""
    names, ids = state.owner.split(":"), state.ids.split(":")
    for i, want in enumerate(owner.split(":")):
        if want not in (names[i:i + 1] + ids[i:i + 1]):
            return False
    return True


def copy_problems(state, virtual_size):
    """Why the file itself is not a cached copy of an image of VIRTUAL_SIZE bytes: a raw
    regular file of that size ([] = it is; what a prefill skips)."""
    found = {"file": [], "missing": ["not cached"], "link": ["a link"]}.get(
        state.cache, [f"not cached ({state.cache})" if state.cache.startswith("no directory")
                      else f"{state.cache or 'unknown'}, not a file"])
    if state.cache == "file":
        if state.changed:
            found.append("changed while being checked")
        if state.format != "raw":
            found.append(f"{state.format} header, not raw")
        # the virtual size is rounded up to 512 bytes: the file's own size must match too
        if {state.file_size, state.virtual_size} - {None} != {virtual_size}:
            found.append("wrong size")
    return found


def problems(state, virtual_size, owner):
    """Why STATE is not a good cached copy ([] = good): the copy, its OWNER (image_owner),
    and whether Nova would purge it."""
    if not state.reachable:
        return [f"unreachable: {state.error}"]
    if state.error:
        return [f"cannot check: {state.error}"]
    found = copy_problems(state, virtual_size)
    if state.cache == "file" and not owner_matches(state, owner):
        found.append("wrong owner")
    if state.purge is None:
        found.append(state.purge_note)
    elif state.purge:
        found.append("Nova purges unused base images")
    return found
