"""Site configuration: /etc/hltcloud.conf, overridable by $HLTCLOUD_CONFIG or --config.

Every key has a documented default (see man pages, "CONFIGURATION"), so a head node
without a configuration file works as the original tools did.
"""
import configparser
import os
import shlex
from dataclasses import dataclass

from .validate import BadValue, check_name

DEFAULT_PATH = "/etc/hltcloud.conf"
ENV_VAR = "HLTCLOUD_CONFIG"
MAX_READ_TIMEOUT = 600

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
    },
    "runvms": {
        "flavor": "ali1.xlarge",
        "image": "CentOS6-build13",
        "key_name": "WorkerNodesSsh",
        "user_data": "/var/lib/elastiq/wn-user-data.txt",
        "name": "wn-grid",
        "network": "auto",  # nics of the boot: "auto", "none" or a network id
    },
}


class ConfigError(Exception):
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
    runvms: dict

    def service_command(self, action, service):
        """The argument list that starts/stops/queries SERVICE on a node."""
        template = {"start": self.start_template, "stop": self.stop_template,
                    "status": self.status_template}[action]
        return [word.replace("{service}", service) for word in template]


def _template(parser, key):
    words = shlex.split(parser.get("services", key))
    if not words or not any("{service}" in w for w in words):
        raise ConfigError(f"services.{key} must be a command containing {{service}}: "
                          f"{parser.get('services', key)!r}")
    return tuple(words)


def load(path=None):
    """Read the site configuration. PATH (from --config) wins over $HLTCLOUD_CONFIG.

    An explicitly named file must exist; the default /etc/hltcloud.conf may be absent.
    """
    explicit = path or os.environ.get(ENV_VAR) or ""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(DEFAULTS)
    chosen = explicit or DEFAULT_PATH
    try:
        with open(chosen, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"configuration file not found: {chosen}") from None
        chosen = ""
    except (OSError, configparser.Error) as err:
        raise ConfigError(f"cannot read configuration {chosen}: {err}") from None

    ssh_config = parser.get("ssh", "config").strip()
    if ssh_config and not os.path.isabs(ssh_config):
        raise ConfigError(f"ssh.config must be an absolute path: {ssh_config}")
    try:
        timeout = parser.getint("ssh", "connect_timeout")
    except ValueError:
        raise ConfigError("ssh.connect_timeout must be a whole number of seconds") from None
    try:
        read_timeout = parser.getint("cloud", "read_timeout")
    except ValueError:
        read_timeout = 0
    if not 1 <= read_timeout <= MAX_READ_TIMEOUT:
        raise ConfigError(f"cloud.read_timeout must be a whole number of seconds from 1 to "
                          f"{MAX_READ_TIMEOUT}: {parser.get('cloud', 'read_timeout')!r}")
    instances = parser.get("paths", "instances_dir").rstrip("/") or "/"
    base = parser.get("paths", "base_dir").strip() or os.path.join(instances, "_base")
    services = tuple(parser.get("services", "names").split())
    for service in services:
        try:
            check_name(service, "service name")
        except BadValue as err:
            raise ConfigError(f"services.names: {err}") from None
    return Config(
        path=chosen,
        ssh_config=ssh_config,
        ssh_user=parser.get("ssh", "user").strip(),
        connect_timeout=timeout,
        read_timeout=read_timeout,
        services=services,
        start_template=_template(parser, "start"),
        stop_template=_template(parser, "stop"),
        status_template=_template(parser, "status"),
        instances_dir=instances,
        base_dir=base,
        glance_images_dir=parser.get("paths", "glance_images_dir").rstrip("/"),
        image_owner=parser.get("paths", "image_owner").strip(),
        runvms=dict(parser.items("runvms")),
    )
