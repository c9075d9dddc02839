"""One error hierarchy (issue 20): a ToolError carries its exit status and becomes one line;
anything else is a bug and keeps its traceback, a stray ValueError included."""
import pytest

from hltcloud import errors
from hltcloud.cloud.images import ImageRefused
from hltcloud.cloud.session import CloudError
from hltcloud.filetrust import UntrustedFile
from hltcloud.hostlist import HostListError, expand
from hltcloud.inputs import InputError
from hltcloud.ops.privatedir import PrivateDirError
from hltcloud.transfer.common import TransferError
from hltcloud.validate import BadValue


def run(body):
    return errors.run_main("tool", body)


def raising(err):
    def body():
        raise err
    return body


@pytest.mark.parametrize("err, status", [
    (errors.UsageError("--fanout must be at least 1: 0"), errors.USAGE),
    (InputError("cannot read @file 'x': No such file"), errors.USAGE),
    (BadValue("bad name"), errors.USAGE),
    (UntrustedFile("configuration /tmp/x is writable by others"), errors.USAGE),
    (TransferError("DEST must be an absolute file path"), errors.USAGE),
    (PrivateDirError("lock directory /run/x is a link: refusing it"), errors.USAGE),
    (CloudError("cannot reach Keystone"), errors.CLOUD),
    (ImageRefused("its data is qcow2, not raw"), errors.FAILED),
])
def test_each_kind_of_error_is_one_line_and_its_status(capsys, err, status):
    assert run(raising(err)) == status
    out, errtext = capsys.readouterr()
    assert out == "" and errtext == f"tool: {err}\n"


def test_a_host_list_error_from_the_parser_itself_is_bad_input(capsys):
    def body():
        expand("cn[3-1]")
    assert run(body) == errors.USAGE
    line = capsys.readouterr().err
    assert line.startswith("tool: ") and line.count("\n") == 1 and "cn[3-1]" in line
    assert issubclass(HostListError, errors.UsageError)


@pytest.mark.parametrize("bug", [
    lambda: int("x"),  # a ValueError nobody expected: not "bad input"
    lambda: {}["key"],
    lambda: None.attribute,
])
def test_a_bug_keeps_its_traceback(bug):
    with pytest.raises((ValueError, KeyError, AttributeError)):
        run(bug)


def test_bad_input_errors_are_still_value_errors_for_argparse_and_local_checks():
    for kind in (errors.UsageError, InputError, BadValue, UntrustedFile, TransferError,
                 HostListError):
        assert issubclass(kind, ValueError) and issubclass(kind, errors.ToolError)
