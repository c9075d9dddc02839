"""The command lines of one pipelined run: RECV on a host, FORWARD from a host to the next,
the cleanup after Ctrl-C or a route-around; the node scripts themselves are in
hltcloud/node/ (recv.sh, forward.sh, cleanup.sh).

Every run has a private directory per host, hidden beside DEST; when the hosts behind a slow
node get a new upstream they start again in a new one (generation 1, 2, ...), so that what
the old sessions leave behind while they end never meets the new ones. Every such name is
random (the head's secrets): nova reads the run's name in ps, it cannot guess a restart's."""
import secrets
import shlex

from hltcloud.node.scripts import CLEANUP_SCRIPT, FORWARD_SCRIPT, RECV_SCRIPT
from hltcloud.transfer.common import CHECKSUM_TOOLS, hidden_twin
from hltcloud.proc.runner import ssh_argv
from hltcloud.validate import check_name


class ChainCommands:
    """The command lines of one pipelined run."""

    def __init__(self, ssh, dest, size, checksum, timeout, node_ssh_config, run_id=None):
        self.ssh = ssh
        self.dest = dest
        self.size = int(size)
        self.algorithm, self.digest = checksum
        self.tool = CHECKSUM_TOOLS[self.algorithm]
        self.timeout = int(timeout)
        self.node_ssh_config = node_ssh_config
        # The run's private directory, hidden in DEST's directory: the final rename is atomic.
        self.run_id = run_id or secrets.token_hex(8)
        self.private = hidden_twin(dest, "pipe", self.run_id)

    def private_dir(self, generation=0):
        """The private directory of a host's GENERATION-th start in this run: the run's, or a
        new random one for a restart (called once per generation)."""
        if not generation:
            return self.private
        return hidden_twin(self.dest, "pipe", secrets.token_hex(8))

    def _options(self, config_file):
        """Fast ciphers; keepalives every 5 s at most: a chain notices a dead link early."""
        return self.ssh.options(stall=self.timeout, keepalive=max(1, min(5, self.timeout // 3)),
                                fast=True, config_file=config_file)

    def recv(self, host, last, private=None, take_over=None):
        """The remote command string that receives on HOST (for a forwarder there unless LAST).
        TAKE_OVER: the byte the sender starts at, for a new receiver that takes over the one
        in PRIVATE (its upstream was slow)."""
        check_name(host, "host name")
        argv = ["sh", "-c", RECV_SCRIPT, "hltpipe-recv", host, self.dest, private or self.private,
                "" if last else "1", str(self.size), self.digest, self.tool, str(self.timeout)]
        if take_over is not None:
            argv.append(str(int(take_over)))
        return shlex.join(argv)

    def head_recv(self, host, last, private=None, take_over=None):
        """Run on the head: ssh HOST RECV, the file (from byte TAKE_OVER, if given) on its stdin."""
        return ssh_argv(self._options(self.ssh.config_file), host,
                        self.recv(host, last, private, take_over))

    def head_forward(self, host, next_host, next_last, private=None, next_private=None,
                     late=False, take_over=None):
        """Run on the head: ssh HOST FORWARD, which sends HOST's file (in PRIVATE) into NEXT_HOST's
        RECV (in NEXT_PRIVATE). LATE: HOST is receiving already (a new downstream); TAKE_OVER:
        the byte to start at, for a receiver that takes over on NEXT_HOST."""
        node_ssh = ssh_argv(self._options(self.node_ssh_config), next_host,
                            self.recv(next_host, next_last, next_private, take_over))
        remote = shlex.join(["sh", "-c", FORWARD_SCRIPT, "hltpipe-fwd", host,
                             private or self.private, next_host,
                             "0" if late else str(self.timeout), str(int(take_over or 0)),
                             *node_ssh])
        return ssh_argv(self._options(self.ssh.config_file), host, remote)

    def cleanup(self, host, private=None):
        """Remove our temporary twins on HOST (after an interrupted run)."""
        return ssh_argv(self._options(self.ssh.config_file), host,
                        shlex.join(["sh", "-c", CLEANUP_SCRIPT, "hltpipe-clean", private or self.private]))
