"""Status lines, colours, line output, progress and the closing summary."""
import io

from hltcloud.report import Reporter, want_colors


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_without_tty():
    out = io.StringIO()
    rep = Reporter(out)
    rep.ok("Enabling hypervisor cn43.internal")
    rep.dry("Disabling hypervisor cn44.internal")
    rep.warn("slow")
    assert out.getvalue().splitlines() == [
        "[ OK ] Enabling hypervisor cn43.internal",
        "[DRY ] Disabling hypervisor cn44.internal",
        "[WARN] slow",
    ]


def test_colors_only_on_tty_and_never_when_refused():
    assert want_colors(Tty(), environ={}) is True
    assert want_colors(io.StringIO(), environ={}) is False
    assert want_colors(Tty(), no_colors=True, environ={}) is False
    assert want_colors(Tty(), environ={"NO_COLOR": "1"}) is False
    out = Tty()
    Reporter(out).ok("x")
    assert "\033[32m[ OK ]\033[0m x" in out.getvalue()


def test_summary_all_good():
    out = io.StringIO()
    assert Reporter(out).summary() is True
    assert out.getvalue().splitlines()[-1] == "All commands executed successfully."


def test_summary_folds_failed_hosts_and_lists_every_failure():
    out = io.StringIO()
    rep = Reporter(out)
    rep.fail("cn47.internal: ssh timed out", host="cn47.internal")
    rep.fail("cn45.internal: unknown host", host="cn45.internal")
    assert rep.summary() is False
    lines = out.getvalue().splitlines()
    assert "Failed on 2 host(s): cn[45,47].internal" in lines
    assert "  cn47.internal: ssh timed out" in lines
    assert "  cn45.internal: unknown host" in lines


def test_progress_in_place_on_tty():
    out = Tty()
    rep = Reporter(out, no_colors=True)
    prog = rep.progress("Waiting max 300 s for VMs to be deleted on cn47.internal")
    prog.update("2 running (300 s left)")
    prog.update("1 running (299 s left)")
    prog.done("all gone in 1s!")
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    final = text.split("\r")[-1]
    assert final.startswith("Waiting max 300 s for VMs to be deleted on cn47.internal"
                            "...2 running (300 s left)...all gone in 1s!")


def test_progress_whole_lines_in_line_output_mode():
    out = Tty()
    rep = Reporter(out, line_output=True)
    prog = rep.progress("Waiting max 5 s for VMs to be deleted on cn1")
    prog.update("2 running (5 s left)")
    prog.update("2 running (5 s left)")  # unchanged: not repeated
    prog.update("1 running (4 s left)")
    prog.done("all gone in 2s!")
    assert "\r" not in out.getvalue()
    assert out.getvalue().splitlines() == [
        "Waiting max 5 s for VMs to be deleted on cn1...2 running (5 s left)",
        "Waiting max 5 s for VMs to be deleted on cn1...1 running (4 s left)",
        "Waiting max 5 s for VMs to be deleted on cn1...2 running (5 s left)...all gone in 2s!",
    ]


def test_message_after_open_progress_line_starts_a_new_line():
    out = Tty()
    rep = Reporter(out, no_colors=True)
    rep.progress("Waiting").update("3 running")
    rep.fail("boom")
    assert out.getvalue().endswith("3 running\033[K\n[FAIL] boom\n")
