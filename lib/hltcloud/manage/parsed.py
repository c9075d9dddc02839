"""The command line of one openstack-hlt-manage run as a frozen value: built once by
options.parse(), then only read (the context holds it, the engines receive it).

Its own module: dataclasses (with inspect) would cost --help and every usage error their
start-up; only a command line that parsed loads it.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class ManageOptions:
    command: str
    fanout: int
    vm_timeout: int
    hosts: tuple = ()  # full names, expanded, command line order, no duplicates
    exclude: tuple = ()  # -x: the names left out (status, listwns, vmstats: of the cloud's)
    # For the re-run line (rerun.py): the arguments, the host list words, where they are.
    argv: tuple = ()
    host_words: tuple = ()
    host_span: tuple = (0, 0)
    for_real: bool = False
    no_colors: bool = False
    line_output: bool = False
    parallel: bool = False
    force_shutoff: bool = False
    reason: str = None  # disable --reason TEXT
    drain: int = None  # disable --drain SECONDS
    prepared: bool = False  # a --parallel subworker: the parent ran takeback.py's phases
    ssh_config: str = None
    nvms: bool = False
    long: bool = False
    json: bool = False  # format == "json"
    format: str = "table"  # table, json, value or csv: all but table are for programs
    columns: tuple = ()  # -c: the columns asked for, in order
    config: str = None
    os_cloud: str = None
    flavor: str = None
    image: str = None
    key_name: str = None
    user_data: str = None
    name: str = None
    count: int = None
    failed_path: str = None
    ok_path: str = None
    no_syslog: bool = False
    subworker: bool = False
