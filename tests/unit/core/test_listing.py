"""-f table|json|value|csv and -c COLUMN over records: the openstack CLI's habits."""
import json

import pytest

from hltcloud import listing
from hltcloud.errors import UsageError

COLUMNS = [listing.Column("hypervisor", "Hypervisor"), listing.Column("enabled", "Enabled", "c"),
           listing.Column("nvms", "#VMs", "r"), listing.Column("vms", "VMs")]
RECORDS = [{"hypervisor": "cn01.internal", "enabled": True, "nvms": 2, "vms": ["10.0.0.1", "x"]},
           {"hypervisor": "cn02.internal", "enabled": False, "nvms": 0, "vms": []}]


def test_json_keeps_types_and_keys():
    assert json.loads(listing.render("json", COLUMNS, RECORDS)) == RECORDS


def test_value_and_csv_as_the_openstack_cli_prints_them():
    assert listing.render("value", COLUMNS, RECORDS) == (
        "cn01.internal yes 2 10.0.0.1 x\ncn02.internal no 0 ")
    assert listing.render("csv", COLUMNS, RECORDS).splitlines() == [
        '"Hypervisor","Enabled","#VMs","VMs"',
        '"cn01.internal","yes",2,"10.0.0.1 x"',
        '"cn02.internal","no",0,""']


def test_table_aligns_and_selects_columns_in_the_order_asked():
    chosen = listing.select(COLUMNS, ["NVMS", "Hypervisor"])
    assert [c.key for c in chosen] == ["nvms", "hypervisor"]
    assert listing.render("table", chosen, RECORDS).splitlines()[3] == "|    2 | cn01.internal |"
    assert json.loads(listing.render("json", chosen, RECORDS))[1] == {
        "nvms": 0, "hypervisor": "cn02.internal"}


def test_an_unknown_column_or_format_is_named_with_the_choices():
    with pytest.raises(UsageError, match=r"no column 'ips' \(columns: hypervisor, enabled, "
                                         r"nvms, vms\)"):
        listing.select(COLUMNS, ["ips"])
    with pytest.raises(UsageError, match="unknown format 'yaml'"):
        listing.render("yaml", COLUMNS, RECORDS)


def test_text_from_the_cloud_stays_in_its_cell_in_every_text_format():
    hostile = [{"hypervisor": "cn\n01\x1b[2J", "enabled": True, "nvms": 1, "vms": ["a\rb"]}]
    for fmt in ("table", "value", "csv"):
        text = listing.render(fmt, COLUMNS, hostile)
        assert "\x1b" not in text and "\r" not in text
        assert len(text.splitlines()) == {"table": 5, "value": 1, "csv": 2}[fmt]
