"""What this machine adds to every simulated node's ssh session, and a real node does not:
root's ~/.bashrc runs `pyenv init` (about 100 processes, 0.1 CPU s and 0.22 s a session,
sessions queueing on pyenv's rehash lock when many start at once). The benchmarks take it
out, for before and after alike: /dev/null over it in each node's own mount namespace (its
sshd's, made private by netnodes.start_sshds), never the head's.
"""
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "simcluster"))
import netnodes  # noqa: E402


def without_root_bashrc(node_dirs):
    """Hide root's ~/.bashrc from the sessions of the nodes whose directories are NODE_DIRS
    (each holds its sshd.pid); False when there is none to hide."""
    bashrc = Path("~root/.bashrc").expanduser()
    if not bashrc.exists():
        return False
    for node_dir in node_dirs:
        sshd = netnodes.read_pid(Path(node_dir) / "sshd.pid")
        if not sshd:
            raise SystemExit(f"no sshd pid in {node_dir}")
        subprocess.run(["nsenter", "--mount", f"--target={sshd}", "mount", "--bind",
                        "/dev/null", str(bashrc)], check=True, capture_output=True)
    return True
