"""Site configuration: /etc/hltcloud.conf, overridable by $HLTCLOUD_CONFIG or --config.

Every key has a documented default (see man pages, "CONFIGURATION"), so a head node
without a configuration file works as the original tools did.
"""
import ast
import configparser
import errno
import os
import re
import shlex
from dataclasses import dataclass

from hltcloud.filetrust import UntrustedFile
from hltcloud.inputs import InputError, parse_whole, read_small_text
from hltcloud.errors import ToolError
from hltcloud.validate import BadValue, check_name, path_fault

MAX_BYTES = 1 << 20  # a site configuration is a few hundred bytes
CONNECT_TIMEOUT = (1, 300)  # seconds: ssh -o ConnectTimeout
READ_TIMEOUT = (1, 600)  # seconds an API may take to answer one request
MAX_VIRTUAL_SIZE = (1 << 20, 1 << 50)  # bytes: [prefill] max_virtual_size, 1M to 1024T
_SIZE = re.compile(r"([0-9]{1,16})([KMGT]?)\Z", re.IGNORECASE)  # at most 16 digits: bounded
_SHIFT = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}  # the units, powers of 1024
_OWNER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?\Z")

DEFAULT_PATH = "/etc/hltcloud.conf"
ENV_VAR = "HLTCLOUD_CONFIG"

DEFAULTS = {
    "cloud": {
        # Seconds an API may take to answer a request (connecting has a few seconds of its own).
        "read_timeout": "30",
    },
    "ssh": {
        # Empty: ssh uses the operator's own configuration (~/.ssh/config, /etc/ssh/ssh_config).
        "config": "",
        "user": "root",
        "connect_timeout": "10",
    },
    "services": {
        # Started in reverse order (libvirtd first), stopped in this order.
        "names": "openstack-nova-network openstack-nova-metadata-api openstack-nova-compute libvirtd",
        "start": "service {service} start",
        "stop": "service {service} stop",
        "status": "service {service} status",
    },
    "paths": {
        "instances_dir": "/var/lib/nova/instances",
        "base_dir": "",  # empty: <instances_dir>/_base
        "glance_images_dir": "/var/lib/glance/images",
        "image_owner": "nova:nova",
        # Read by openstack-prefill-cache --check: does Nova purge unused cached images?
        "nova_conf": "/etc/nova/nova.conf",
    },
    "runvms": {
        "flavor": "ali1.xlarge",
        "image": "CentOS6-build13",
        "key_name": "WorkerNodesSsh",
        "user_data": "/var/lib/elastiq/wn-user-data.txt",
        "name": "wn-grid",
        "network": "auto",  # nics of the boot: "auto", "none" or a network id
    },
    "prefill": {
        # The largest virtual size of an image that openstack-prefill-cache converts on the
        # nodes (raw, it fills that much of every node's disk): bytes, or with K, M, G, T.
        "max_virtual_size": "1T",
    },
    "enter": {
        # Root-only directory of openstack-enter: ROLE.openrc files and/or a clouds.yaml.
        "credentials_dir": "/etc/hltcloud/credentials",
    },
    "log": {
        # The record of real runs (audit.py): yes or no, and the local syslog socket.
        "syslog": "yes",
        "socket": "/dev/log",
    },
}


class ConfigError(ToolError):
    """The configuration file is unreadable or holds a bad value."""


@dataclass(frozen=True)
class Config:
    path: str  # the file read, or "" when none existed
    ssh_config: str
    ssh_user: str
    connect_timeout: int
    read_timeout: int
    services: tuple
    start_template: tuple
    stop_template: tuple
    status_template: tuple
    instances_dir: str
    base_dir: str
    glance_images_dir: str
    image_owner: str
    nova_conf: str
    runvms: dict
    credentials_dir: str
    syslog: bool = True  # [log] syslog: real runs are recorded in the system log
    syslog_socket: str = "/dev/log"  # [log] socket
    max_virtual_size: int = 1 << 40  # [prefill] max_virtual_size, in bytes

    def service_command(self, action, service):
        """The argument list that starts/stops/queries SERVICE on a node."""
        template = {"start": self.start_template, "stop": self.stop_template,
                    "status": self.status_template}[action]
        return [word.replace("{service}", service) for word in template]


def _seconds(parser, section, key, bounds):
    try:
        return parse_whole(parser.get(section, key).strip(), *bounds, unit=" of seconds")
    except InputError as err:
        raise ConfigError(f"{section}.{key}: {err}") from None


def _size(parser, section, key, bounds):
    """SECTION.KEY in bytes: a whole number, optionally with K, M, G or T (powers of 1024)."""
    text = parser.get(section, key).strip()
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"{section}.{key} must be a number of bytes, optionally with K, M, G "
                          f"or T: {text[:40]!r}")
    value = int(match[1]) << _SHIFT[match[2].upper()]
    if not bounds[0] <= value <= bounds[1]:
        raise ConfigError(f"{section}.{key} must be from 1M to 1024T: {text!r}")
    return value


def _name(parser, section, key, what):
    value = parser.get(section, key).strip()
    return _check(value, section, key, what) if value else value


def _check(value, section, key, what):
    try:
        return check_name(value, what)
    except BadValue as err:
        raise ConfigError(f"{section}.{key}: {err}") from None


def _template(parser, key):
    text = parser.get("services", key)
    try:
        words = shlex.split(text)
    except ValueError as err:  # unbalanced quotes
        raise ConfigError(f"services.{key}: {str(err).lower()}: {text!r}") from None
    if not words or not any("{service}" in w for w in words):
        raise ConfigError(f"services.{key} must be a command containing {{service}}: {text!r}")
    return tuple(words)


def _absolute(parser, section, key):
    """The path under SECTION.KEY, or "" when empty; refused unless absolute."""
    value = parser.get(section, key).strip()
    if value and not os.path.isabs(value):
        raise ConfigError(f"{section}.{key} must be an absolute path: {value!r}")
    return value


def _yes_no(parser, section, key):
    try:
        return parser.getboolean(section, key)
    except ValueError:
        raise ConfigError(f"{section}.{key} must be yes or no: "
                          f"{parser.get(section, key).strip()!r}") from None


def _node_path(section, key, value):
    """VALUE (from SECTION.KEY) goes into remote commands: absolute, plain characters."""
    if path_fault(value):
        raise ConfigError(f"{section}.{key} must be an absolute path of letters, digits "
                          f"and . _ + - /: {value!r}")
    return value


def _read(chosen, explicit, parser):
    """Parse CHOSEN into PARSER; False when it is the default path and absent."""
    try:  # root takes ssh commands and paths from it: nobody else may control it
        text = read_small_text(chosen, MAX_BYTES, "configuration", trusted=True)
    except UntrustedFile as err:
        raise ConfigError(str(err)) from None
    except InputError as err:
        if err.errno == errno.ENOENT:
            if explicit:
                raise ConfigError(f"configuration file not found: {chosen}") from None
            return False
        raise ConfigError(str(err)) from None
    try:
        parser.read_string(text, source=chosen)
    except configparser.MissingSectionHeaderError as err:
        raise ConfigError(f"cannot read configuration {chosen}: no [section] before "
                          f"line {err.lineno}: {err.line.strip()!r}") from None
    except configparser.ParsingError as err:  # its message spans lines: the first bad line
        lineno, line = err.errors[0]  # line is kept as its repr()
        raise ConfigError(f"cannot read configuration {chosen}: line {lineno}: "
                          f"{ast.literal_eval(line).strip()!r}") from None
    except configparser.Error as err:
        raise ConfigError(f"cannot read configuration {chosen}: {err}") from None
    return True


def load(path=None):
    """Read the site configuration. PATH (from --config) wins over $HLTCLOUD_CONFIG.

    An explicitly named file must exist; the default /etc/hltcloud.conf may be absent.
    Every value is checked here, so that a bad one is found before the first request.
    """
    explicit = path or os.environ.get(ENV_VAR) or ""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(DEFAULTS)
    chosen = explicit or DEFAULT_PATH
    if not _read(chosen, explicit, parser):
        chosen = ""

    ssh_config = _absolute(parser, "ssh", "config")
    timeout = _seconds(parser, "ssh", "connect_timeout", CONNECT_TIMEOUT)
    read_timeout = _seconds(parser, "cloud", "read_timeout", READ_TIMEOUT)
    user = _name(parser, "ssh", "user", "user name")  # ssh -l USER
    instances = _absolute(parser, "paths", "instances_dir").rstrip("/") or "/"
    _node_path("paths", "instances_dir", instances)
    base = _absolute(parser, "paths", "base_dir") or os.path.join(instances, "_base")
    _node_path("paths", "base_dir", base)
    glance_images_dir = _absolute(parser, "paths", "glance_images_dir").rstrip("/")
    if not glance_images_dir:
        raise ConfigError("paths.glance_images_dir must be an absolute path: ''")
    owner = parser.get("paths", "image_owner").strip()
    if not _OWNER.match(owner):
        raise ConfigError(f"paths.image_owner must be USER or USER:GROUP: {owner!r}")
    nova_conf = _node_path("paths", "nova_conf", parser.get("paths", "nova_conf").strip())
    _absolute(parser, "runvms", "user_data")
    credentials_dir = _absolute(parser, "enter", "credentials_dir").rstrip("/")
    if not credentials_dir:
        raise ConfigError("enter.credentials_dir must be an absolute path: ''")
    syslog_socket = _absolute(parser, "log", "socket")
    if not syslog_socket:
        raise ConfigError("log.socket must be an absolute path: ''")
    services = tuple(parser.get("services", "names").split())
    for service in services:
        _check(service, "services", "names", "service name")
    return Config(
        path=chosen,
        ssh_config=ssh_config,
        ssh_user=user,
        connect_timeout=timeout,
        read_timeout=read_timeout,
        services=services,
        start_template=_template(parser, "start"),
        stop_template=_template(parser, "stop"),
        status_template=_template(parser, "status"),
        instances_dir=instances,
        base_dir=base,
        glance_images_dir=glance_images_dir,
        image_owner=owner,
        nova_conf=nova_conf,
        runvms=dict(parser.items("runvms")),
        credentials_dir=credentials_dir,
        syslog=_yes_no(parser, "log", "syslog"),
        syslog_socket=syslog_socket,
        max_virtual_size=_size(parser, "prefill", "max_virtual_size", MAX_VIRTUAL_SIZE),
    )
