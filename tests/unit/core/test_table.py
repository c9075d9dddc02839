from hltcloud.table import render


def test_readme_layout():
    text = render(["Hypervisor", "Runs VMs?", "Alive?", "#VMs"],
                  [["cn43.internal", "yes", "alive", 2], ["cn44.internal", "no", "dead", 0]],
                  align="lccr")
    assert text.splitlines() == [
        "+---------------+-----------+--------+------+",
        "| Hypervisor    | Runs VMs? | Alive? | #VMs |",
        "+---------------+-----------+--------+------+",
        "| cn43.internal |    yes    | alive  |    2 |",
        "| cn44.internal |    no     |  dead  |    0 |",
        "+---------------+-----------+--------+------+",
    ]


def test_empty_table_has_header():
    assert render(["A"], []).splitlines()[1] == "| A |"


def test_a_cell_from_the_cloud_stays_in_its_row_and_prints():
    text = render(["Name", "Host"], [["wn-grid\033]0;owned\007\n[ OK ] forged", "cn01"]])
    assert text.splitlines() == [
        "+----------------------------------------+------+",
        "| Name                                   | Host |",
        "+----------------------------------------+------+",
        "| wn-grid\\x1b]0;owned\\x07\\n[ OK ] forged | cn01 |",
        "+----------------------------------------+------+",
    ]
