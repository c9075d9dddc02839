"""A hostile nova user on every node of the simulated cluster (issue 19, item 7).

On a hypervisor the nova user owns instances/ and _base, and our tools run as root beside it.
HostileNova (the head side, used by the `hostile_nova` fixture of tests/conftest.py) plays
that user on every node while a test runs a tool, and then tells what the tool did wrong:

- the nova uid of a simulated node is NOVA_USER (`nobody`): it owns the node's instances/
  and _base while the adversary runs (as nova does on a real hypervisor; the site config of a
  test under attack says image_owner = NOVA_USER's, as nova:nova on a real one), root again
  afterwards;
- every node gets a watched root directory, /var/lib/nova/rootwatch (root, 0755, with a
  root file in it): every link the adversary plants points at it or at its file, so a tool
  that follows one changes it (compared with its snapshot, mtime included: even a file
  made and removed again shows);
- this file, run as a program inside the node (through the node's sshd: its mount
  namespace) as the nova uid, is the adversary. Each node gets one of STRATEGIES (in turn by
  node index, so that every strategy runs in every test on the default six nodes).

The adversary (node side: standard library only; arguments: its strategy, and the seconds
after which it stops by itself, SECONDS by default) loops every ROUND seconds until its stdin
closes. It learns names from its stdin ("name PATH": the predictable names, as nova knows
image ids and reads destinations in root's command lines) and by listing instances/ and
_base. Strategies:
- link-dir / link-file: a symlink to the watched directory / its file at every predictable
  name that is absent (again whenever the tool removed it);
- plant-file: a regular file of nova's at every predictable name that is absent;
- swap-base: _base itself swapped with a symlink to the watched directory (renameat2
  RENAME_EXCHANGE: _base never disappears), 0.8 s of every second;
- steal: every hidden entry of root's that appears in instances/ or _base (temporary files,
  private directories) is renamed away and a link to the watched directory put at its name;
  and files planted at the predictable names;
- mixed: link-dir, plant-file, link-file, swap-base in turn, PHASE seconds each (its own
  plants are swapped for the next kind; what is not its own is never replaced).
It writes nowhere but in instances/ and _base, never replaces what is not its own, and
puts _base back before it ends. All it makes is named MARK...; it prints "ready",
"synced N" for each "sync N" (after a round with the names so far), and at the end one JSON
line of counts.
"""
import ctypes
import grp
import hashlib
import json
import os
import pwd
import queue
import re
import select
import shlex
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

NOVA_USER = "nobody"
NOVA_DIR = "/var/lib/nova"
INSTANCES = NOVA_DIR + "/instances"
BASE = INSTANCES + "/_base"
WATCH = NOVA_DIR + "/rootwatch"
SENTINEL = "sentinel.conf"
SENTINEL_TEXT = b"# root's own file: the nova user must not be able to change it\n"
STRATEGIES = ("link-dir", "swap-base", "plant-file", "link-file", "steal", "mixed")
MARK = ".hostile-"  # every name the adversary makes starts with it
ROUND = 0.01  # seconds between rounds (a step of a tool on a node takes longer)
PHASE = 0.25  # seconds of each kind of attack in the mixed strategy
SECONDS = 180  # it stops by itself after this long
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
PLANTED = b"planted by the hostile nova user\n"
LINKS = {WATCH: "link-dir", f"{WATCH}/{SENTINEL}": "link-file"}  # our links' targets
COUNTS = ("rounds", "links", "files", "replaced", "swaps", "stolen", "seen", "lost")
NODE_PYTHON = "/usr/bin/python3"  # the system's: the nova user cannot run root's own pythons


# ---------------------------------------------------------------- the node side (as nova)

class Adversary:
    def __init__(self, strategy, seconds):
        self.strategy = strategy
        self.deadline = time.monotonic() + seconds
        self.targets = []  # predictable names (absolute paths under INSTANCES)
        self.stolen, self.seen = set(), set()
        self.counts = dict.fromkeys(COUNTS, 0)
        self.counts["strategy"] = strategy
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.serial = 0

    def rename(self, old, new, flags):
        if self.libc.renameat2(-100, old.encode(), -100, new.encode(), flags) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), new)

    def scratch(self, where, what):
        self.serial += 1
        return os.path.join(where, f"{MARK}{what}-{os.getpid()}-{self.serial}")

    @staticmethod
    def kind_of(path):
        """What we made at PATH (None: nothing, or not ours). Told by owner and content, not
        by inode: the filesystem reuses the inode numbers of what we removed."""
        try:
            st = os.lstat(path)
            if st.st_uid != os.getuid():
                return None
            if stat.S_ISLNK(st.st_mode):
                return LINKS.get(os.readlink(path))
            if stat.S_ISREG(st.st_mode) and st.st_size == len(PLANTED):
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with open(fd, "rb") as handle:
                    return "plant-file" if handle.read() == PLANTED else None
        except OSError:
            pass
        return None

    @staticmethod
    def make(path, kind):
        """A new link (to the watched directory or its file) or file of ours at PATH."""
        if kind == "plant-file":
            with open(path, "xb") as handle:
                handle.write(PLANTED)
        else:
            os.symlink(next(t for t, k in LINKS.items() if k == kind), path)

    def place(self, new, path):
        """Our NEW at PATH where nothing is (fails if something came meanwhile)."""
        try:
            self.rename(new, path, RENAME_NOREPLACE)
        except OSError:
            os.unlink(new)
            raise

    def plant(self, path, kind):
        """KIND at PATH where nothing is, or where our own plant of another kind is; what
        is not ours (the tool's file) is never replaced."""
        parent = os.path.dirname(path)
        try:
            if not stat.S_ISDIR(os.lstat(parent).st_mode):
                return  # _base swapped (by us): never plant through a link
            there = os.path.lexists(path)
            if there and self.kind_of(path) in (None, kind):
                return
            new = self.scratch(parent, "new")
            self.make(new, kind)
            if not there:
                self.place(new, path)
            else:
                # An atomic swap, then a look at what came out: our old plant goes; anything
                # else (the tool put its file there meanwhile) goes back at once.
                self.rename(new, path, RENAME_EXCHANGE)
                if self.kind_of(new) is None:
                    self.rename(new, path, RENAME_EXCHANGE)
                    os.unlink(new)
                    return
                os.unlink(new)
                self.counts["replaced"] += 1
            self.counts["files" if kind == "plant-file" else "links"] += 1
        except OSError:
            self.counts["lost"] += 1

    def base_swapped(self):
        return os.path.islink(BASE)

    def swap_base(self, want):
        """_base swapped with our link to the watched directory (WANT), or back."""
        if want == self.base_swapped():
            return
        link = os.path.join(INSTANCES, f"{MARK}base")
        try:
            if not os.path.lexists(link):
                self.make(link, "link-dir")
            if self.kind_of(link if want else BASE) != "link-dir":
                return
            self.rename(link, BASE, RENAME_EXCHANGE)
            self.counts["swaps"] += 1 if want else 0
        except OSError:
            self.counts["lost"] += 1

    def real_dirs(self):
        return (INSTANCES, os.path.join(INSTANCES, f"{MARK}base") if self.base_swapped() else BASE)

    def look(self, steal):
        """List instances/ and _base: new names are learned; with STEAL, root's hidden
        entries are renamed away and a link to the watched directory put at their name."""
        for where in self.real_dirs():
            try:
                entries = [e for e in os.scandir(where) if not e.name.startswith(MARK)]
            except OSError:
                continue
            for entry in entries:
                if entry.path not in self.seen:
                    self.seen.add(entry.path)
                    self.counts["seen"] += 1
                if not steal or not entry.name.startswith(".") or entry.path in self.stolen:
                    continue
                try:
                    if entry.stat(follow_symlinks=False).st_uid != 0:
                        continue
                    self.stolen.add(entry.path)
                    self.rename(entry.path, self.scratch(where, "stolen"), RENAME_NOREPLACE)
                    self.counts["stolen"] += 1
                    new = self.scratch(where, "new")
                    self.make(new, "link-dir")
                    self.place(new, entry.path)
                    self.counts["links"] += 1
                except OSError:
                    self.counts["lost"] += 1

    def kind(self, now):
        if self.strategy != "mixed":
            return self.strategy
        return ("link-dir", "plant-file", "link-file", "swap-base")[int(now / PHASE) % 4]

    def round(self):
        now = time.monotonic()
        kind = self.kind(now)
        self.counts["rounds"] += 1
        self.look(steal=kind == "steal")
        if self.strategy == "swap-base":
            self.swap_base(now % 1.0 < 0.8)
        elif self.strategy == "mixed":
            self.swap_base(kind == "swap-base")
        planted = "plant-file" if kind == "steal" else kind
        if planted != "swap-base":
            for path in self.targets:
                self.plant(path, planted)

    def name(self, path):
        path = os.path.normpath(path)
        if path.startswith(INSTANCES + "/") and path not in self.targets:
            self.targets.append(path)

    def run(self):
        say("ready")
        pending = b""
        while time.monotonic() < self.deadline:
            if select.select([0], [], [], ROUND)[0]:
                data = os.read(0, 65536)
                if not data:
                    break  # the test is done with us
                *lines, pending = (pending + data).split(b"\n")
                words = [line.decode().split(" ", 1) for line in lines if b" " in line]
                for word, arg in words:
                    if word == "name":
                        self.name(arg)
                self.round()
                for word, arg in words:
                    if word == "sync":
                        say(f"synced {arg}")
            else:
                self.round()
        self.swap_base(False)
        say(json.dumps(self.counts))


# ---------------------------------------------------------------- the head side (the tests)

class HostileNova:
    """The adversary on every node of CLUSTER, as a context manager (the `hostile_nova`
    fixture): the nodes' instances/ and _base given to the nova uid, a watched root directory
    on each, one adversary per node (its strategy in STRATEGY). target() tells them the
    predictable names of a run; problems() stops them and says what the tool did wrong."""
    TIMEOUT = 20  # seconds an adversary may take to answer

    def __init__(self, cluster, seconds=SECONDS):
        self.cluster = cluster
        self.seconds = seconds
        nova = pwd.getpwnam(NOVA_USER)
        self.uid, self.gid = nova.pw_uid, nova.pw_gid
        self.owner = f"{NOVA_USER}:{grp.getgrgid(self.gid).gr_name}"  # for [paths] image_owner
        self.strategy = {node: STRATEGIES[i % len(STRATEGIES)]
                         for i, node in enumerate(cluster.names)}
        self.procs, self.lines, self.before = {}, {}, {}
        self.counts = None
        self.syncs = 0

    def on_head(self, node, path):
        """Where PATH (a path under /var/lib/nova on NODE) lies on the head."""
        return self.cluster.node_dir(node) / os.path.relpath(path, NOVA_DIR)

    def __enter__(self):
        try:
            for node in self.cluster.names:
                self._give(node, self.uid, self.gid)
                watch = self.on_head(node, WATCH)
                watch.mkdir(exist_ok=True)
                os.chmod(watch, 0o755)
                (watch / SENTINEL).write_bytes(SENTINEL_TEXT)
                os.chmod(watch / SENTINEL, 0o644)
                self.before[node] = snapshot(watch)
            for node in self.cluster.names:
                self._start(node)
            self._expect(lambda line: line == "ready")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, node):
        remote = shlex.join(["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                             "--clear-groups", "--", NODE_PYTHON, "-I",
                             str(Path(__file__).resolve()), self.strategy[node],
                             str(self.seconds)])
        proc = subprocess.Popen(["ssh", "-F", self.cluster.ssh_config, node, "--", remote],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.procs[node], self.lines[node] = proc, queue.Queue()

        def read():
            for line in proc.stdout:
                self.lines[node].put(line.rstrip("\n"))
            self.lines[node].put(None)
        threading.Thread(target=read, daemon=True).start()

    def _line(self, node, deadline):
        """The next line of NODE's adversary; None at its end (or at DEADLINE)."""
        try:
            return self.lines[node].get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def _expect(self, wanted):
        """Wait for a line WANTED(line) from every adversary."""
        for node in self.procs:
            deadline = time.monotonic() + self.TIMEOUT
            while True:
                line = self._line(node, deadline)
                if line is None:
                    raise AssertionError(f"the hostile nova user on {node} does not answer: "
                                         f"{self._stderr(node)}")
                if wanted(line):
                    break

    def _stderr(self, node):
        proc = self.procs[node]
        if proc.poll() is None:
            return "(still running)"
        return proc.stderr.read().strip()[-2000:]

    def target(self, *paths):
        """Tell every adversary the predictable names PATHS (under instances/ of the node);
        returns once each has had a round with them (they are planted where nothing is)."""
        self.syncs += 1
        for proc in self.procs.values():
            proc.stdin.write("".join(f"name {path}\n" for path in paths) + f"sync {self.syncs}\n")
            proc.stdin.flush()
        self._expect(lambda line, token=f"synced {self.syncs}": line == token)

    def stop(self):
        """End the adversaries (each puts _base back): {node: its counts}."""
        if self.counts is not None:
            return self.counts
        self.counts = {}
        for proc in self.procs.values():
            try:
                proc.stdin.close()
            except OSError:
                pass
        for node, proc in self.procs.items():
            try:
                proc.wait(self.TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            last, deadline = None, time.monotonic() + self.TIMEOUT
            while (line := self._line(node, deadline)) is not None:
                last = line
            try:
                self.counts[node] = json.loads(last or "")
            except ValueError:
                raise AssertionError(f"the hostile nova user on {node} ended badly "
                                     f"({proc.returncode}): {self._stderr(node)}") from None
        return self.counts

    def __exit__(self, *exc):
        try:
            if self.procs:
                self.stop()
        finally:
            for node in self.cluster.names:  # even after a crash of an adversary: _base back
                base = self.on_head(node, BASE)
                away = base.with_name(f"{MARK}base")
                if base.is_symlink() and away.is_dir() and not away.is_symlink():
                    base.unlink()
                    away.rename(base)
                self._give(node, 0, 0)

    def _give(self, node, uid, gid):
        for path in (INSTANCES, BASE):
            os.lchown(self.on_head(node, path), uid, gid)

    # -------------------------------------------------------- what the tool did

    def problems(self, res, dest, done, owner, sha1):
        """What went wrong in the tool's run RES under attack, as lines ([]: nothing). DEST is
        the intended file (its path on the nodes), DONE the nodes on which the tool reported
        success; there DEST must be a regular file of OWNER ((uid, gid)) with the content
        SHA1. On every node the watched directory must be unchanged and nothing of root's lie
        in instances/ but DEST; the other nodes must be reported failed, one line each (but
        not the one where nova only plants files: a tool that refuses everything proves
        nothing either); and each adversary must have acted (an attack that never happened
        proves nothing)."""
        found = []
        counts = self.stop()
        print("hostile nova users:", json.dumps(counts, indent=1))
        acted = {"plant-file": "files", "steal": "files", "swap-base": "swaps"}
        for node, strategy in self.strategy.items():
            if not counts[node][acted.get(strategy, "links")]:
                found.append(f"{node}: the hostile nova user ({strategy}) never acted")
        everywhere = set(done) >= set(self.cluster.names)
        if "Traceback" in res.stderr or res.returncode != (0 if everywhere else 1):
            found.append(f"exit status {res.returncode}: {res.stderr.strip()[-500:]}")
        failures = re.findall(r"^  (\S+): \S", res.stdout, re.M)  # the summary: one line each
        for node in self.cluster.names:
            if node not in done and node not in failures:
                found.append(f"{node}: neither done nor reported failed")
            if node not in done and self.strategy[node] == "plant-file":
                # A file is no reason to refuse: the final rename replaces it.
                found.append(f"{node}: failed where nova only planted files of its own")
            found += [f"{node}: {problem}" for problem in
                      self.node_problems(node, dest, node in done, owner, sha1)]
        print("what went wrong:", *found or ["nothing"], sep="\n  ")
        return found

    def node_problems(self, node, dest, done, owner, sha1):
        """problems() on NODE."""
        import helpers  # tests/ (pytest puts it on sys.path): not on the node side
        found = []
        intended = self.on_head(node, dest)
        st = os.lstat(intended) if os.path.lexists(intended) else None
        if done and (not st or not stat.S_ISREG(st.st_mode) or (st.st_uid, st.st_gid) != owner
                     or helpers.sha1_of(intended) != sha1):
            what = "missing" if not st else \
                f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid} {st.st_size} bytes"
            found.append(f"reported done, but {dest} is not the file of {owner[0]}:{owner[1]} "
                         f"it should be: {what}")
        base = os.lstat(self.on_head(node, BASE))
        if not stat.S_ISDIR(base.st_mode) or (base.st_uid, base.st_gid) != (self.uid, self.gid):
            found.append("_base is not nova's directory any more")
        changed = diff(self.before[node], snapshot(self.on_head(node, WATCH)))
        if changed:
            found.append(f"the watched root directory changed: {changed}")
        strays = helpers.eventually(
            lambda: self.strays(node, intended if owner == (0, 0) else None), 10)
        if strays:
            found.append(f"root's entries outside {dest}: {strays}")
        return found

    def strays(self, node, intended):
        """Root's entries under NODE's instances/ but INTENDED (a path on the head), links not
        followed; the adversary's own names (MARK...: what it stole from root) left aside."""
        found = []
        for where, dirs, files in os.walk(self.on_head(node, INSTANCES)):
            dirs[:] = [d for d in dirs if not d.startswith(MARK)]
            for name in dirs + files:
                path = Path(where) / name
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if st.st_uid == 0 and not name.startswith(MARK) and path != intended:
                    found.append(str(path.relative_to(self.cluster.node_dir(node))))
        return found


def snapshot(root):
    """Everything about the tree at ROOT, links not followed: type, mode, owner, size,
    mtime and ctime (a file made and removed again shows), content or link target."""
    state = {}

    def visit(path, rel):
        st = os.lstat(path)
        item = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if stat.S_ISREG(st.st_mode):
            item += (hashlib.sha1(path.read_bytes()).hexdigest(),)
        elif stat.S_ISLNK(st.st_mode):
            item += (os.readlink(path),)
        state[rel] = item
        if stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(path)):
                visit(path / name, f"{rel}/{name}")
    visit(Path(root), ".")
    return state


def diff(before, after):
    """The names whose state differs between two snapshots (appeared, vanished, changed)."""
    return sorted(name for name in before.keys() | after.keys()
                  if before.get(name) != after.get(name))



def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv):
    strategy = argv[0] if argv and argv[0] in STRATEGIES else sys.exit(f"strategy: {STRATEGIES}")
    seconds = float(argv[1]) if len(argv) > 1 else SECONDS
    if os.geteuid() == 0:
        sys.exit("the hostile nova user never runs as root")
    Adversary(strategy, seconds).run()


if __name__ == "__main__":
    main(sys.argv[1:])
