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
        "Waiting max 5 s for VMs to be deleted on cn1...all gone in 2s!",  # one line an event
    ]


def test_message_after_open_progress_line_starts_a_new_line():
    out = Tty()
    rep = Reporter(out, no_colors=True)
    rep.progress("Waiting").update("3 running")
    rep.fail("boom")
    assert out.getvalue().endswith("3 running\033[K\n[FAIL] boom\n")


TITLE = "cn01\033]0;owned\007\033[2J"  # retitles and clears the terminal
FORGED = TITLE + "\r\n[ OK ] forged"  # a name or error text from the cloud
SHOWN = "cn01\\x1b]0;owned\\x07\\x1b[2J\\r\\n[ OK ] forged"


def test_every_message_is_one_printable_line_whatever_the_cloud_wrote():
    out = io.StringIO()
    rep = Reporter(out)
    rep.ok(FORGED)
    rep.warn(FORGED)
    rep.info(FORGED)
    rep.fail(FORGED, host="cn01")
    rep.summary()
    rep.write_line(f"table line {TITLE}\nsecond line")  # a block keeps its own lines
    assert out.getvalue().splitlines() == [
        f"[ OK ] {SHOWN}", f"[WARN] {SHOWN}", SHOWN, f"[FAIL] {SHOWN}", "",
        "Failed on 1 host(s): cn01", f"  {SHOWN}",
        "table line cn01\\x1b]0;owned\\x07\\x1b[2J", "second line"]


def test_on_a_tty_only_the_reporters_own_colours_are_written():
    out = Tty()
    rep = Reporter(out)
    rep.fail(f"\033[32m{FORGED}")
    rep.write_line(rep.paint("ok", "done") + " \033[8mhidden")
    assert out.getvalue() == (f"\033[31m[FAIL]\033[0m \\x1b[32m{SHOWN}\n"
                              "\033[32mdone\033[0m \\x1b[8mhidden\n")


def test_progress_and_the_record_get_printable_text():
    seen = []
    out = Tty()
    rep = Reporter(out, no_colors=True, record=seen.append)
    prog = rep.progress(f"Waiting for {FORGED}")
    prog.update("1 running")
    prog.done("done")
    assert "\033]" not in out.getvalue() and "\r\n" not in out.getvalue()
    assert out.getvalue().endswith(f"\rWaiting for {SHOWN}...1 running...done\033[K\n")
    assert seen == []  # a progress line is not a status line: not recorded
    rep = Reporter(io.StringIO(), record=seen.append)
    rep.ok(FORGED)
    assert seen == [f"[ OK ] {SHOWN}"]


def test_a_nodes_words_in_a_transfer_summary_cannot_bring_their_own_colours():
    """Colours on: a failure reason a node wrote (ssh, rsync, the check) that holds one of the
    reporter's own colour codes is shown escaped; only the reporter's paint stays."""
    from hltcloud.transfer.cli import print_summary
    from hltcloud.transfer.common import HostResult, TransferResult
    out = Tty()
    rep = Reporter(out)
    reason = "\033[32m[ OK ] all good\033[0m"
    result = TransferResult({"cn01": HostResult("cn01", reason=reason)}, size=1, elapsed=1.0)
    assert print_summary(result, rep) is False
    assert out.getvalue().splitlines()[-1] == "  cn01: \\x1b[32m[ OK ] all good\\x1b[0m"
