"""The ssh sessions of a pipelined run: SessionPool starts each one in a process group of its
own, reads its output in two threads, and turns what it says and its end into events
(events.py) on one queue, in order: every line of a session comes before its Ended.

    pool = SessionPool(events)              # events: a queue.Queue
    pool.start(number, argv, stdin)         # stdin: subprocess.PIPE (a lifeline) or a file
    pool.end(number)                        # SIGTERM to its group now, SIGKILL a second later
    pool.abort()                            # Ctrl-C: every group, at once
"""
import os
import signal
import subprocess
import threading

from hltcloud.proc import runner
from hltcloud.transfer.chain.events import Ended, Line

END_GRACE = 1.0  # seconds a session has to end after SIGTERM before SIGKILL
STDERR_KEPT = 5  # the last lines of a session's stderr kept (the last one is its failure)


class _Session:
    def __init__(self, proc):
        self.proc = proc
        self.stderr = []
        self.ended = threading.Event()  # its process has been waited for


class SessionPool:
    def __init__(self, events):
        self.events = events
        self.groups = runner.ProcessGroups()
        self.sessions = {}

    def start(self, number, argv, stdin):
        proc = self.groups.start(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        session = self.sessions[number] = _Session(proc)
        errors = threading.Thread(target=self._read_stderr, args=(session,), daemon=True)
        errors.start()
        threading.Thread(target=self._read_stdout, args=(number, session, errors),
                         daemon=True).start()

    def _read_stdout(self, number, session, errors):
        """Every line, then (its stderr read to the end, its process waited for) its end."""
        proc = session.proc
        for raw in proc.stdout:
            self.events.put(Line(number, raw.decode(errors="replace").rstrip("\n")))
        errors.join()
        code = proc.wait()
        session.ended.set()
        if proc.stdin:
            proc.stdin.close()
        self.events.put(Ended(number, code, session.stderr[-1] if session.stderr else ""))

    @staticmethod
    def _read_stderr(session):
        for raw in session.proc.stderr:
            line = raw.decode(errors="replace").strip()
            if line:
                session.stderr = (session.stderr + [line])[-STDERR_KEPT:]

    def end(self, number):
        """End session NUMBER's process group without waiting: SIGTERM now, SIGKILL after
        END_GRACE seconds if its process is still there."""
        session = self.sessions[number]
        if session.ended.is_set():
            return
        _signal_group(session.proc, signal.SIGTERM)
        timer = threading.Timer(END_GRACE, self._kill_hard, args=(session,))
        timer.daemon = True
        timer.start()

    @staticmethod
    def _kill_hard(session):
        if not session.ended.is_set():
            _signal_group(session.proc, signal.SIGKILL)

    def abort(self):
        """Every session's group ends (TERM at once, then KILL for those still there after
        END_GRACE); their lifelines close."""
        self.groups.abort(grace=END_GRACE)
        for session in list(self.sessions.values()):
            if session.proc.stdin:
                session.proc.stdin.close()


def _signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
