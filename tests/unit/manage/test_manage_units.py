"""Pure parts of openstack-hlt-manage with literal inputs: the fit arithmetic and the
command line (bad input is refused before anything is done)."""
import pytest

from hltcloud.manage import fit
from hltcloud.manage import options as manage_cli
from hltcloud.errors import UsageError

# The shape of a Placement inventory of a worker node (GET /resource_providers/{uuid}/inventories).
NODE = {
    "VCPU": {"total": 8, "reserved": 0, "allocation_ratio": 2.0, "min_unit": 1, "max_unit": 8, "step_size": 1},
    "MEMORY_MB": {"total": 16384, "reserved": 512, "allocation_ratio": 1.0, "min_unit": 1,
                  "max_unit": 16384, "step_size": 1},
    "DISK_GB": {"total": 400, "reserved": 0, "allocation_ratio": 1.0, "min_unit": 1, "max_unit": 400,
                "step_size": 1},
}
XLARGE = fit.flavor_needs(4, 4096, 40)


def test_capacity_applies_reserved_and_ratio():
    assert fit.capacity(NODE["VCPU"]) == 16
    assert fit.capacity(NODE["MEMORY_MB"]) == 15872


def test_empty_node_is_ram_bound():
    # 15872 MB / 4096 = 3.87 -> 3, though 16 vCPU would allow 4.
    assert fit.fit_empty_host(NODE, XLARGE) == 3


def test_usage_reduces_fit_and_never_goes_negative():
    assert fit.fit_on_host(NODE, {"VCPU": 4, "MEMORY_MB": 4096, "DISK_GB": 40}, XLARGE) == 2
    assert fit.fit_on_host(NODE, {"VCPU": 16, "MEMORY_MB": 0}, XLARGE) == 0
    assert fit.fit_on_host(NODE, {"MEMORY_MB": 20000}, XLARGE) == 0


def test_cpu_bound_with_a_low_ratio():
    inv = dict(NODE, VCPU=dict(NODE["VCPU"], allocation_ratio=1.0, reserved=2))
    assert fit.fit_empty_host(inv, XLARGE) == 1  # (8-2)*1.0 / 4


def test_missing_class_or_above_max_unit_fits_nothing():
    assert fit.fit_empty_host({"VCPU": NODE["VCPU"]}, XLARGE) == 0
    assert fit.fit_empty_host(NODE, fit.flavor_needs(12, 1024, 10)) == 0  # max_unit 8


def test_flavor_needs_counts_ephemeral_and_swap_as_disk():
    assert fit.flavor_needs(2, 2048, 10, ephemeral_gb=5, swap_mb=1500) == {
        "VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 17}
    assert fit.flavor_needs(1, 512, 0) == {"VCPU": 1, "MEMORY_MB": 512}


def test_quota_fit_takes_the_tightest_limit():
    absolute = {"maxTotalInstances": 10, "totalInstancesUsed": 3, "maxTotalCores": 20,
                "totalCoresUsed": 12, "maxTotalRAMSize": 51200, "totalRAMUsed": 0}
    assert fit.quota_fit(absolute, 4, 4096) == 2  # cores: 8 left / 4
    absolute["maxTotalCores"] = -1
    assert fit.quota_fit(absolute, 4, 4096) == 7  # instances
    assert fit.quota_fit({"maxTotalInstances": -1}, 4, 4096) is None
    assert fit.quota_fit({"maxTotalInstances": 2, "totalInstancesUsed": 5}, 1, 1) == 0


def test_how_many_caps_by_quota_and_count():
    assert fit.how_many([3, 3, 2], None) == 8
    assert fit.how_many([3, 3, 2], 5) == 5
    assert fit.how_many([3, 3, 2], None, upper_bound=4) == 4
    assert fit.how_many([], 10) == 0


def test_cli_expands_hosts_and_keeps_order():
    opts = manage_cli.parse(["--for-real", "--vm-timeout", "5", "disable", "cn[03,01-02].internal",
                             "cn01.internal"])
    assert opts.hosts == ("cn03.internal", "cn01.internal", "cn02.internal")
    assert opts.for_real and opts.vm_timeout == 5


@pytest.mark.parametrize("argv, words", [
    (["disable", "cn[4-2]"], "reversed"),
    (["disable", "cn[01-02"], "cn[01-02"),
    (["disable"], "needs HOSTS"),
    (["--vm-timout", "10", "disable", "cn01"], "unknown switch --vm-timout (did you mean "
                                                "--vm-timeout?)"),
    (["--ssh-config", "relative/config", "status"], "absolute"),
    (["--vm-timeout", "soon", "disable", "cn01"], "soon"),
    (["runvms", "cn01"], "no HOSTS"),
    (["frobnicate"], "frobnicate"),
])
def test_cli_refuses_bad_input_in_one_line(argv, words):
    with pytest.raises(UsageError) as err:
        manage_cli.parse(argv)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_subworkers_get_the_parents_switches():
    opts = manage_cli.parse(["--for-real", "--parallel", "--fanout", "4", "--vm-timeout", "7",
                             "--force-shutoff", "--config", "/etc/x.conf", "disable", "cn01"])
    assert manage_cli.forwarded_switches(opts) == [
        "--for-real", "--vm-timeout", "7", "--force-shutoff", "--config", "/etc/x.conf"]


def test_switches_before_or_after_the_command_and_hosts_parse_alike():
    """The openstack CLI's habit: `status --json`, `disable cn01 --for-real`."""
    first = manage_cli.parse(["--for-real", "--vm-timeout", "9", "disable", "cn01", "cn02"])
    for argv in (["disable", "cn01", "cn02", "--for-real", "--vm-timeout", "9"],
                 ["disable", "--for-real", "cn01", "--vm-timeout", "9", "cn02"]):
        again = manage_cli.parse(argv)
        assert (again.command, again.hosts, again.for_real, again.vm_timeout) == (
            first.command, first.hosts, first.for_real, first.vm_timeout)
    assert manage_cli.parse(["status", "--json"]).format == "json"


def test_command_help_shows_that_commands_switches_only():
    text = manage_cli.command_help(["disable", "--help"])
    assert text.startswith("usage: openstack-hlt-manage disable ")
    assert "--vm-timeout" in text and "--reason" in text and "--nvms" not in text
    status = manage_cli.command_help(["--help", "status"])
    assert "--long" in status and "--for-real" not in status
    assert manage_cli.command_help(["--help"]) is None


def test_exclude_leaves_hosts_out_of_the_run_and_of_the_whole_cloud_listings():
    opts = manage_cli.parse(["disable", "cn[01-04]", "-x", "cn02", "--exclude", "cn[04-09]"])
    assert opts.hosts == ("cn01", "cn03")
    assert manage_cli.parse(["-x", "cn[01-02]", "status"]).exclude == ("cn01", "cn02")


@pytest.mark.parametrize("name, found", [
    ("cn01.internal", "cn01.internal"),
    ("cn01", "cn01.internal"),  # the one host named cn01.DOMAIN
    ("cn02", "cn02: 2 compute hosts have that name: cn02.a, cn02.b (give the full name)"),
    ("cn03", "cn03: not a compute host known to Nova"),
    ("zz", "zz: not a compute host known to Nova"),
])
def test_a_short_name_means_the_one_host_of_that_name(name, found):
    from hltcloud.cloud.computes import match_host
    services = {"cn01.internal": {}, "cn02.a": {}, "cn02.b": {}}
    try:
        assert match_host(name, services) == found
    except LookupError as err:
        assert str(err).startswith(found), err
