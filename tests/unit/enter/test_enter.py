"""openstack-enter: the role's shell through a pseudo-terminal (bash and sh), -- COMMAND,
and the credentials it refuses (nothing is run then)."""
import fcntl
import os
from pathlib import Path
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from hltcloud.enter import cli as enter
from hltcloud.enter import openrc
from hltcloud.enter import credentials

ROOT = str(Path(__file__).resolve().parents[3])
TOOL = os.path.join(ROOT, "bin", "openstack-enter")
SECRET = "Pw-7f3c9e-never-on-screen"
URL = "http://127.0.0.1:5000/v3"
OPENRC = f"""# admin of the test cloud
export OS_AUTH_URL={URL}
export OS_USERNAME=admin
export OS_PROJECT_NAME="admin"
OS_USER_DOMAIN_NAME='Default'  # a comment
export OS_PASSWORD='{SECRET}'
"""
CLOUDS_YAML = f"""clouds:
  ops:
    region_name: RegionOne
    auth:
      auth_url: {URL}
      username: cloudadmin
      password: "{SECRET}"
      project_name: operations
"""
NOBODY = 65534


class Site:
    """A site configuration whose credentials directory is a private temporary one."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.creds = tmp_path / "credentials"
        self.creds.mkdir(mode=0o700)
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.config = tmp_path / "hltcloud.conf"
        self.config.write_text(f"[enter]\ncredentials_dir = {self.creds}\n")
        self.marker = tmp_path / "ran"  # made by a command that must not run

    def write(self, name, text, mode=0o600):
        path = self.creds / name
        path.write_text(text)
        path.chmod(mode)
        return path

    def env(self, **extra):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
               "TERM": "dumb", "HLTCLOUD_CONFIG": str(self.config), "LC_ALL": "C"}
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}


@pytest.fixture
def site(tmp_path):
    return Site(tmp_path)


def _take_terminal():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # after setsid: the pty becomes our terminal


class Terminal:
    """TOOL's process on a pseudo-terminal; everything it shows is kept in .output."""

    def __init__(self, argv, env, cwd=None):
        master, slave = os.openpty()
        # wide enough that readline never scrolls a long prompt sideways
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 400, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     cwd=cwd, start_new_session=True, preexec_fn=_take_terminal)
        os.close(slave)
        self.master, self.output, self.seen = master, b"", 0

    def _read(self, deadline):
        ready, _, _ = select.select([self.master], [], [], max(0, deadline - time.monotonic()))
        if not ready:
            return False
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EIO: every process left the terminal
            data = b""
        self.output += data
        return bool(data)

    def expect(self, text, timeout=10):
        """Wait until TEXT shows after what was already expected."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output[self.seen:]:
            if time.monotonic() > deadline or not self._read(deadline):
                raise AssertionError(f"{text!r} not shown; terminal: {self.output!r}")
        self.seen = self.output.index(text.encode(), self.seen) + len(text)

    def send(self, line):
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout=10):
        status = self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        os.close(self.master)
        return status

    def shell_pid(self):
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as handle:
            (pid,) = handle.read().split()
        return int(pid)


def _proc(pid, name):
    with open(f"/proc/{pid}/{name}", "rb") as handle:
        return handle.read()


def _shell_sees_secret_only_in_environment(term):
    pid = term.shell_pid()
    cmdline = _proc(pid, "cmdline")
    assert SECRET.encode() not in cmdline
    return pid, cmdline.split(b"\0"), _proc(pid, "environ")


def test_bash_shows_banner_sources_bashrc_and_exits(site):
    site.write("admin.openrc", OPENRC)
    (site.home / ".bashrc").write_text("PS1='bashrc-prompt\\$ '\nFROM_BASHRC=yes\n")
    term = Terminal([TOOL, "admin"], site.env(SHELL="/bin/bash"))
    term.expect("[OpenStack] admin@admin bashrc-prompt# ")
    pid, argv, environ = _shell_sees_secret_only_in_environment(term)
    assert os.path.basename(argv[0]) == b"bash" and argv[1] == b"--rcfile"
    rcfile = argv[2].decode()
    assert SECRET.encode() in environ and SECRET not in open(rcfile).read()
    term.send('echo "U=$OS_USERNAME/$OS_PROJECT_NAME R=$HLTCLOUD_ROLE B=$FROM_BASHRC"')
    term.expect("U=admin/admin R=admin B=yes")
    term.send("exit")
    assert term.finish() == 0
    assert SECRET.encode() not in term.output
    assert not os.path.exists(os.path.dirname(rcfile))  # the private directory is gone


def test_sh_gets_banner_in_ps1_keeps_its_env_file_and_passes_exit_status(site):
    site.write("admin.openrc", OPENRC)
    own_env = site.home / ".shrc"
    own_env.write_text("PS1='shrc> '\nFROM_SHRC=yes\n")
    term = Terminal([TOOL], site.env(SHELL="/bin/sh", ENV=str(own_env)))
    term.expect("[OpenStack] admin@admin shrc> ")
    pid, argv, environ = _shell_sees_secret_only_in_environment(term)
    assert argv[0] == b"/bin/sh" and SECRET.encode() in environ
    term.send('echo "U=$OS_USERNAME/$OS_PROJECT_NAME S=$FROM_SHRC E=$ENV"')
    term.expect(f"U=admin/admin S=yes E={own_env}")  # nested shells get the operator's ENV
    term.send("exit 5")
    assert term.finish() == 5
    assert SECRET.encode() not in term.output


def test_without_shell_variable_sh_is_used_and_root_prompt_kept(site):
    site.write("admin.openrc", OPENRC)
    term = Terminal([TOOL, "admin"], site.env())
    term.expect("[OpenStack] admin@admin # ")
    assert _proc(term.shell_pid(), "cmdline").split(b"\0")[0] == b"/bin/sh"
    term.send("exit")
    assert term.finish() == 0


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"])
def test_clouds_yaml_entry_keeps_the_secret_in_the_file(site, shell):
    path = site.write("clouds.yaml", CLOUDS_YAML)
    term = Terminal([TOOL, "ops"], site.env(SHELL=shell, OS_PASSWORD="leftover"))
    term.expect("[OpenStack] cloudadmin@operations ")
    _pid, _argv, environ = _shell_sees_secret_only_in_environment(term)
    assert SECRET.encode() not in environ and b"leftover" not in environ
    term.send('echo "C=$OS_CLOUD F=$OS_CLIENT_CONFIG_FILE P=${OS_PASSWORD-unset}"')
    term.expect(f"C=ops F={path} P=unset")
    term.send("exit")
    assert term.finish() == 0
    assert SECRET.encode() not in term.output


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"])
def test_banner_values_cannot_run_anything_in_the_prompt(site, shell):
    site.write("admin.openrc", "OS_USERNAME='a$(touch ran)`id`\\w'\n"
                               "OS_PROJECT_ID='p r;$HOME'\nOS_PASSWORD=x\n")
    term = Terminal([TOOL, "admin"], site.env(SHELL=shell), cwd=site.tmp)  # ran: site.marker
    term.expect("[OpenStack] a??touch?ran??id??w@p?r??HOME ")
    term.send("exit")
    assert term.finish() == 0
    assert not site.marker.exists()


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"])
def test_sigterm_ends_the_shell_and_removes_its_directory(site, shell):
    site.write("admin.openrc", OPENRC)
    term = Terminal([TOOL, "admin"], site.env(SHELL=shell))
    term.expect("[OpenStack] admin@admin ")
    startup = _proc(term.shell_pid(), "environ" if shell == "/bin/sh" else "cmdline")
    tmpdir = [os.path.dirname(w.split(b"=")[-1]) for w in startup.split(b"\0")
              if b"hltcloud-enter-" in w][0]
    assert os.path.isdir(tmpdir)
    term.proc.send_signal(signal.SIGTERM)
    assert term.finish() == 128 + signal.SIGHUP
    assert not os.path.exists(tmpdir)


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"])
def test_ctrl_c_interrupts_a_command_of_the_shell_not_the_shell(site, shell):
    site.write("admin.openrc", OPENRC)
    term = Terminal([TOOL, "admin"], site.env(SHELL=shell))
    term.expect("[OpenStack] admin@admin ")
    term.send("sh -c 'echo st\"\"arted; exec sleep 30'")
    term.expect("started")  # its output, not the echo of the line typed
    os.write(term.master, b"\x03")
    term.send('echo "after=$?"')
    term.expect("after=130", timeout=5)
    term.send("exit")
    assert term.finish() == 0


def test_application_credential_banner(site):
    site.write("ops.openrc", "OS_AUTH_TYPE=v3applicationcredential\n"
                             "OS_APPLICATION_CREDENTIAL_NAME=hlt-ops\n"
                             f"OS_APPLICATION_CREDENTIAL_SECRET='{SECRET}'\n")
    creds = credentials.load(str(site.creds), "ops")
    assert enter.banner(creds) == "[OpenStack] hlt-ops@-"
    assert creds.env["OS_APPLICATION_CREDENTIAL_SECRET"] == SECRET


def test_nested_enter_replaces_the_banner(site):
    site.write("admin.openrc", OPENRC)
    site.write("clouds.yaml", CLOUDS_YAML)
    term = Terminal([TOOL, "admin"], site.env(SHELL="/bin/sh"))
    term.expect("[OpenStack] admin@admin # ")
    term.send(f"{TOOL} ops")
    term.expect("[OpenStack] cloudadmin@operations # ")
    assert b"[OpenStack] cloudadmin@operations [OpenStack]" not in term.output
    term.send("exit")
    term.expect("[OpenStack] admin@admin # ")
    term.send("exit")
    assert term.finish() == 0


def run(site, *args, **env):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=30,
                          env=site.env(**env))


def test_command_runs_in_the_environment_with_its_status(site):
    site.write("admin.openrc", OPENRC)
    res = run(site, "admin", "--", "sh", "-c", 'echo "$OS_AUTH_URL ${OS_CLOUD-none}"',
              OS_CLOUD="stale")
    assert (res.returncode, res.stdout, res.stderr) == (0, f"{URL} none\n", "")
    res = run(site, "--", "sh", "-c", 'test "$HLTCLOUD_ROLE" = admin && exit 7')
    assert res.returncode == 7
    res = run(site, "--", "no-such-command-here")
    assert res.returncode == 127 and res.stderr.count("\n") == 1
    assert "cannot run no-such-command-here" in res.stderr


def test_openrc_wins_over_clouds_yaml(site):
    site.write("admin.openrc", OPENRC)
    site.write("clouds.yaml", CLOUDS_YAML.replace("ops:", "admin:"))
    res = run(site, "--", "sh", "-c", 'echo "${OS_CLOUD-none} $OS_USERNAME"')
    assert res.stdout == "none admin\n"


def test_unknown_role_lists_only_names_of_the_role_rule(site):
    """File names in the directory are shown: one that a shell or a terminal would act on
    is left out of the list."""
    site.write("admin.openrc", OPENRC)
    site.write("x\x1b[2Jy.openrc", OPENRC)
    site.write("clouds.yaml", CLOUDS_YAML.replace("ops:", "'$(reboot)':"))
    res = run(site, "ghost")
    assert res.returncode == USAGE
    assert res.stderr.endswith("; roles there: admin\n"), res.stderr


@pytest.mark.parametrize("args, shown", [
    (["admin", "true"], "unexpected 'true' after the role: a command goes after -- "
                        "(openstack-enter admin -- true)"),
    (["--config", "/nowhere", "admin", "touch", "MARKER"],
     "unexpected 'touch MARKER' after the role"),
])
def test_a_command_without_dashes_gets_the_hint_and_runs_nothing(site, args, shown):
    site.write("admin.openrc", OPENRC)
    res = run(site, *args)
    assert res.returncode == USAGE and res.stderr.count("\n") == 1
    assert shown in res.stderr, res.stderr
    assert not site.marker.exists()


def _symlinked_openrc(site):
    real = site.tmp / "real.openrc"
    real.write_text(OPENRC)
    real.chmod(0o600)
    (site.creds / "admin.openrc").symlink_to(real)


def _symlinked_dir(site):
    site.write("admin.openrc", OPENRC)
    site.creds.rename(site.tmp / "real")
    site.creds.symlink_to(site.tmp / "real")


def _owned_by_nobody(site):
    os.chown(site.write("admin.openrc", OPENRC), NOBODY, -1)


def _dir_owned_by_nobody(site):
    site.write("admin.openrc", OPENRC)
    os.chown(site.creds, NOBODY, -1)


def _fifo(site):
    os.mkfifo(site.creds / "admin.openrc", 0o600)


REFUSED, USAGE = 4, 2


@pytest.mark.parametrize("prepare, args, status, message", [
    (lambda s: s.write("admin.openrc", OPENRC, 0o644), ["admin"], REFUSED, "mode 0644"),
    (lambda s: s.write("admin.openrc", OPENRC, 0o640), ["admin"], REFUSED, "mode 0640"),
    (lambda s: (s.write("admin.openrc", OPENRC), s.creds.chmod(0o770)), ["admin"], REFUSED,
     "credentials directory"),
    (lambda s: (s.write("admin.openrc", OPENRC), s.creds.chmod(0o705)), ["admin"], REFUSED,
     "mode 0705"),
    (_symlinked_openrc, ["admin"], REFUSED, "admin.openrc is a symbolic link"),
    (_symlinked_dir, ["admin"], REFUSED, "credentials directory"),
    (_owned_by_nobody, ["admin"], REFUSED, "owned by uid 65534"),
    (_dir_owned_by_nobody, ["admin"], REFUSED, "owned by uid 65534"),
    (_fifo, ["admin"], REFUSED, "not a regular file"),
    (lambda s: s.write("admin.openrc", OPENRC + f"export OS_REGION_NAME=$(touch {s.marker})\n"),
     ["admin"], REFUSED, "line 7 (OS_REGION_NAME)"),
    (lambda s: s.write("admin.openrc", OPENRC + f'OS_X="`touch {s.marker}`"\n'),
     ["admin"], REFUSED, "line 7 (OS_X)"),
    (lambda s: s.write("admin.openrc", f"touch {s.marker}\n" + OPENRC), ["admin"], REFUSED,
     "line 1: not an assignment"),
    (lambda s: s.write("admin.openrc", f"OS_PASSWORD={SECRET} touch {s.marker}\n"), ["admin"],
     REFUSED, "more than one word"),
    (lambda s: s.write("clouds.yaml", CLOUDS_YAML, 0o604), ["ops"], REFUSED, "mode 0604"),
    (lambda s: s.write("clouds.yaml", CLOUDS_YAML + f"  x: [{SECRET}\n"), ["ops"], REFUSED,
     "not valid YAML"),
    (lambda s: s.write("admin.openrc", OPENRC), ["ghost"], USAGE,
     "no credentials for role 'ghost'"),
    (lambda s: s.write("clouds.yaml", CLOUDS_YAML), ["admin"], USAGE,
     "no credentials for role 'admin'"),
    (lambda s: (s.write("admin.openrc", OPENRC), s.write("clouds.yaml", CLOUDS_YAML)),
     ["ghost"], USAGE, "; roles there: admin, ops"),
    (lambda s: None, ["ghost"], USAGE, "; no role is defined there"),
    (lambda s: s.write("admin.openrc", OPENRC), ["../credentials/admin"], USAGE,
     "invalid role name"),
    (lambda s: s.write(".admin.openrc", OPENRC), [".admin"], USAGE, "invalid role name"),
    (lambda s: s.creds.rmdir(), ["admin"], USAGE, "does not exist"),
])
def test_refused_credentials_run_nothing(site, prepare, args, status, message):
    prepare(site)
    res = run(site, *args, "--", "touch", str(site.marker))
    assert res.returncode == status, res.stderr
    assert message in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("openstack-enter: ")
    assert SECRET not in res.stderr + res.stdout
    assert not site.marker.exists()


@pytest.mark.parametrize("text, expected", [
    ("export OS_A=plain\n", {"OS_A": "plain"}),
    ("OS_A='it''s' # comment\n\n# only a comment\n", {"OS_A": "its"}),
    ('OS_A="a \\"q\\" \\$ \\\\ b"\n', {"OS_A": 'a "q" $ \\ b'}),
    ("OS_A='$(not run) `nor this`'\r\n", {"OS_A": "$(not run) `nor this`"}),
    ("OS_A=a\\ b\nexport   OS_A=again\n", {"OS_A": "again"}),
    ("OS_A=\nOS_B=x#y\n", {"OS_A": "", "OS_B": "x#y"}),
])
def test_openrc_values_are_read_as_sh_reads_them(text, expected):
    assert openrc.parse(text) == expected


@pytest.mark.parametrize("text, message", [
    (f"OS_PASSWORD=\"{SECRET}$HOME\"\n", "line 1 (OS_PASSWORD): '$' inside double quotes"),
    (f"OS_PASSWORD={SECRET};id\n", "';' outside single quotes"),
    (f"\nOS_PASSWORD='{SECRET}\n", "line 2 (OS_PASSWORD): unterminated single quote"),
    (f"OS_PASSWORD=\"{SECRET}\n", "unterminated double quote"),
    (f"OS_PASSWORD={SECRET}*\n", "'*' outside single quotes"),
    ("OS_HOME=~/x\n", "'~' outside single quotes"),
    (f"export os_password={SECRET}\n", "line 1: not an assignment"),
    (f"if true; then OS_PASSWORD={SECRET}; fi\n", "line 1: not an assignment"),
    (f"OS_PASSWORD={SECRET}\\\n", "backslash at the end"),
    ("# nothing\n", "no OS_* assignment"),
])
def test_openrc_refusals_name_the_line_never_the_value(text, message):
    with pytest.raises(openrc.OpenrcError) as err:
        openrc.parse(text)
    assert message in str(err.value) and SECRET not in str(err.value)


def test_prompt_safe_and_role_environment():
    assert enter.prompt_safe("ad min\\$`!%\x1b") == "ad?min??????"
    assert enter.prompt_safe("") == "-"
    assert enter.prompt_safe("x" * 100) == "x" * 64 + "..."
    creds = credentials.Credentials("ops", "/c/clouds.yaml", {"OS_CLOUD": "ops"}, "u", "p")
    env = enter.role_environment({"OS_PASSWORD": "old", "HLTCLOUD_AUTH": "tok", "PATH": "/b"},
                                 creds)
    assert env == {"OS_CLOUD": "ops", "PATH": "/b", "HLTCLOUD_ROLE": "ops"}
