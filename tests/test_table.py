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
