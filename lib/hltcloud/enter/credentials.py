"""The credentials of an openstack-enter role, from the root-only credentials directory.

The directory ([enter] credentials_dir) holds ROLE.openrc files and/or one clouds.yaml;
ROLE.openrc wins when both name the role (the file named after the role is the more
specific one). The directory and the file read must be the effective user's, with no
permission for group or others, and neither may be a symbolic link: they are opened
without following links and checked on the opened descriptor, so they cannot be swapped
between check and read. Messages name files and line numbers, never a value.
"""
import errno
import os
import stat
from dataclasses import dataclass

import yaml

from hltcloud.enter import openrc
from hltcloud.validate import check_name, is_safe_name
from hltcloud.errors import UsageError

MAX_BYTES = 1 << 20  # an openrc is a few hundred bytes, a clouds.yaml a few KiB
OPENRC_SUFFIX = ".openrc"
MAX_ROLES = 100  # names listed in a message or offered by completion
CLOUDS_YAML = "clouds.yaml"
SECURE_YAML = "secure.yaml"
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UnknownRole(UsageError):
    """No credentials for the role (or no credentials directory): bad input."""


class CredentialsRefused(UsageError):
    """The credentials are in an unsafe place or have unusable content."""


@dataclass(frozen=True)
class Credentials:
    role: str
    source: str  # the file read
    env: dict  # the OS_* variables the role's environment gets
    user: str  # who and which project, for the banner (not sanitised here)
    project: str


def load(directory, role):
    """The Credentials of ROLE from DIRECTORY (BadValue for a bad role name)."""
    check_name(role, "role name")
    dfd = _open_dir(directory)
    try:
        name = role + OPENRC_SUFFIX
        text = _read_in(dfd, directory, name)
        if text is not None:
            return _from_openrc(text, os.path.join(directory, name), role)
        path = os.path.join(directory, CLOUDS_YAML)
        text = _read_in(dfd, directory, CLOUDS_YAML)
        creds = None if text is None else _from_clouds_yaml(text, path, role,
                                                             _secure_file(dfd, directory, path))
        if creds is None:
            known = _roles_in(dfd, text)
            there = f"roles there: {', '.join(known)}" if known else "no role is defined there"
            raise UnknownRole(f"no credentials for role {role!r}: neither {name} nor an entry "
                              f"{role!r} in {CLOUDS_YAML} in {directory}; {there}")
    finally:
        os.close(dfd)
    return creds


def roles(directory):
    """The names of the roles DIRECTORY defines (checked as load() checks it), sorted."""
    dfd = _open_dir(directory)
    try:
        return _roles_in(dfd, _read_in(dfd, directory, CLOUDS_YAML))
    finally:
        os.close(dfd)


def _roles_in(dfd, clouds_text):
    """ROLE.openrc names in the directory open as DFD and the entries of its clouds.yaml
    (CLOUDS_TEXT, or None), of the role-name rule only and at most MAX_ROLES: they are
    printed and offered to the shell's completion."""
    names = {entry[:-len(OPENRC_SUFFIX)] for entry in os.listdir(dfd)
             if entry.endswith(OPENRC_SUFFIX)}
    try:
        data = yaml.safe_load(clouds_text) if clouds_text else None
    except yaml.YAMLError:
        data = None
    clouds = data.get("clouds") if isinstance(data, dict) else None
    if isinstance(clouds, dict):
        names.update(name for name in clouds if isinstance(name, str))
    return sorted(name for name in names if is_safe_name(name))[:MAX_ROLES]


def _open_dir(directory):
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ENOENT:
            raise UnknownRole(f"credentials directory {directory} does not exist") from None
        raise CredentialsRefused(_open_failure("credentials directory", directory, err)) from None
    try:
        _check_owner_and_mode(os.fstat(dfd), "credentials directory", directory)
    except CredentialsRefused:
        os.close(dfd)
        raise
    return dfd


def _read_in(dfd, directory, name):
    """The text of NAME in the directory open as DFD, or None when there is none."""
    path = os.path.join(directory, name)
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
    except OSError as err:
        if err.errno == errno.ENOENT:
            return None
        raise CredentialsRefused(_open_failure("credentials file", path, err)) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CredentialsRefused(f"credentials file {path} is not a regular file")
        _check_owner_and_mode(info, "credentials file", path)
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise CredentialsRefused(f"credentials file {path} is larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialsRefused(f"credentials file {path} is not UTF-8 text") from None
    if "\0" in text:  # no environment variable can hold it
        raise CredentialsRefused(f"credentials file {path} holds a NUL character")
    return text


def _secure_file(dfd, directory, clouds_yaml):
    """What the role's OS_CLIENT_SECURE_FILE pins: the directory's secure.yaml (checked as
    the other files), else the clouds.yaml itself (merged over itself: nothing changes).
    Unset, or naming a missing file, the openstack CLI would search ./secure.yaml first."""
    if _read_in(dfd, directory, SECURE_YAML) is None:
        return clouds_yaml
    return os.path.join(directory, SECURE_YAML)


def _open_failure(what, path, err):
    if err.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a symbolic link
        return f"{what} {path} is a symbolic link"
    if err.errno == errno.ENOTDIR:
        return f"{what} {path} is not a directory"
    return f"cannot open {what} {path}: {err.strerror}"


def _check_owner_and_mode(info, what, path):
    euid = os.geteuid()
    if info.st_uid != euid:
        raise CredentialsRefused(f"{what} {path} is owned by uid {info.st_uid}, not by "
                                 f"uid {euid}: only its owner may hold credentials")
    if info.st_mode & 0o077:
        raise CredentialsRefused(f"{what} {path} has mode {stat.S_IMODE(info.st_mode):04o}: "
                                 "group and others must have no access (chmod go= it)")


def _from_openrc(text, path, role):
    try:
        env = openrc.parse(text)
    except openrc.OpenrcError as err:
        raise CredentialsRefused(f"openrc {path}: {err}") from None
    user, project = _who(lambda key: env.get("OS_" + key.upper()))
    return Credentials(role, path, env, user, project)


def _from_clouds_yaml(text, path, role, secure):
    """Credentials of the entry ROLE, or None when the file has no such entry. The secret
    stays in the file: the environment only names the file, the entry and the SECURE file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:  # its str() quotes the line, which may hold a secret
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise CredentialsRefused(f"{path} is not valid YAML{where}") from None
    clouds = data.get("clouds") if isinstance(data, dict) else None
    if not isinstance(clouds, dict):
        raise CredentialsRefused(f"{path} has no `clouds:` mapping")
    entry = clouds.get(role)
    if entry is None:
        return None
    auth = entry.get("auth", {}) if isinstance(entry, dict) else None
    if not isinstance(auth, dict):
        raise CredentialsRefused(f"{path}: the entry {role!r} or its auth is not a mapping")
    user, project = _who(lambda key: auth.get(key))
    env = {"OS_CLOUD": role, "OS_CLIENT_CONFIG_FILE": path, "OS_CLIENT_SECURE_FILE": secure}
    return Credentials(role, path, env, user, project)


def _who(get):
    """(user, project) for the banner; GET reads an auth key by its clouds.yaml name."""
    def first(*keys):
        for key in keys:
            value = get(key)
            if value not in (None, ""):
                return str(value)
        return ""
    # An application credential stands for its user: its name (or id) is what was chosen.
    user = first("username", "user_id", "application_credential_name",
                 "application_credential_id")
    project = first("project_name", "project_id", "tenant_name", "tenant_id")
    return user, project
