"""Where the cloud's credentials come from, as the `openstack` CLI takes them.

Either a clouds.yaml entry (OS_CLOUD or --os-cloud; secure.yaml merged into it) or the OS_*
variables. The result is one Settings value: the keystoneauth1 plugin and its options, TLS,
interface and region. Nothing here talks to the network; cloud.py does.

Keystone v3 only: `password`, `token` and `v3applicationcredential` (the v3 plugins of
keystoneauth1's loading API, so no version discovery request is made).
"""
import os
from dataclasses import dataclass, field

from hltcloud.filetrust import UntrustedFile
from hltcloud.inputs import InputError, read_small_text

# OS_AUTH_TYPE (or clouds.yaml auth_type) -> keystoneauth1 plugin
AUTH_TYPES = {"password": "v3password", "v3password": "v3password",
              "token": "v3token", "v3token": "v3token",
              "v3applicationcredential": "v3applicationcredential",
              "applicationcredential": "v3applicationcredential"}
SECRETS = ("OS_PASSWORD", "OS_TOKEN", "OS_APPLICATION_CREDENTIAL_SECRET")
CLOUDS_FILES = ("clouds.yaml", "clouds.yml")
SECURE_FILES = ("secure.yaml", "secure.yml")
MAX_YAML = 1 << 20  # bytes: a clouds.yaml holds a few entries
# Auth options the plugins take, and the OS_* variable of each.
AUTH_OPTIONS = ("auth_url", "username", "user_id", "password", "user_domain_name",
                "user_domain_id", "project_name", "project_id", "project_domain_name",
                "project_domain_id", "domain_name", "domain_id", "token",
                "application_credential_id", "application_credential_name",
                "application_credential_secret", "system_scope", "trust_id")


class CredentialsError(Exception):
    """Missing or wrong credentials or settings: one line naming the setting (exit 3)."""


@dataclass
class Settings:
    plugin: str  # a keystoneauth1 loader name
    auth: dict  # its options
    verify: object = True  # requests' verify: True, False or a CA bundle path
    cert: object = None  # a client certificate path, or (cert, key)
    interface: str = "public"
    region: str = None
    source: str = "the environment"  # where they came from, for messages
    names: dict = field(default_factory=dict)  # option -> how the operator spells it

    def name_of(self, option):
        return self.names.get(option, option)


def search_dirs(env):
    """Where clouds.yaml and secure.yaml are looked for, first found wins (as the CLI, but
    never the current directory: root may stand in one that another user can write)."""
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(home, ".config", "openstack"), "/etc/openstack"]


def _first_file(env, variable, names):
    if env.get(variable):
        return env[variable]
    for directory in search_dirs(env):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                return path
    return None


def _load_yaml(path):
    import yaml  # comes with python-novaclient (oslo.utils)
    try:  # it holds, or points root's password at, a cloud: nobody else may control it
        data = yaml.safe_load(read_small_text(path, MAX_YAML, "cloud configuration",
                                              trusted=True))
    except (InputError, UntrustedFile) as err:
        raise CredentialsError(str(err)) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise CredentialsError(f"{path} is not valid YAML{where}") from None
    if data is not None and not isinstance(data, dict):
        raise CredentialsError(f"{path} must hold a mapping")
    return data or {}


def _merge(base, extra):
    """secure.yaml over clouds.yaml: nested mappings merged, other values replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _truth(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _tls(verify, insecure, files, names):
    """requests' verify and cert from the CA bundle, client certificate and key (FILES,
    named NAMES for messages)."""
    for name, path in zip(names, files):
        if path and not os.path.isfile(path):
            raise CredentialsError(f"{name} is not a file: {path}")
    cacert, cert, key = files
    if key and not cert:
        raise CredentialsError(f"{names[2]} without {names[1]}")
    verify = False if insecure or verify is False else (cacert or True)
    return verify, ((cert, key) if key else cert) or None


def cloud_names(env):
    """The entries of the clouds.yaml that from_cloud() would read (none without one)."""
    path = _first_file(env, "OS_CLIENT_CONFIG_FILE", CLOUDS_FILES)
    clouds = (_load_yaml(path).get("clouds") if path else None) or {}
    return sorted(name for name in clouds if isinstance(name, str)) if isinstance(clouds, dict) else []


def from_cloud(name, env):
    """The clouds.yaml entry NAME, with secure.yaml merged in."""
    path = _first_file(env, "OS_CLIENT_CONFIG_FILE", CLOUDS_FILES)
    if not path:
        raise CredentialsError(f"cloud {name!r} asked for, but no clouds.yaml found "
                               f"(OS_CLIENT_CONFIG_FILE, ~/.config/openstack/, /etc/openstack/)")
    clouds = _load_yaml(path).get("clouds") or {}
    secure_path = _first_file(env, "OS_CLIENT_SECURE_FILE", SECURE_FILES)
    if secure_path:
        clouds = _merge(clouds, _load_yaml(secure_path).get("clouds") or {})
    entry = clouds.get(name) if isinstance(clouds, dict) else None
    if not isinstance(entry, dict):
        raise CredentialsError(f"no cloud named {name!r} in {path}")
    source = f"cloud {name!r} of {path}"
    auth = entry.get("auth") or {}
    if not isinstance(auth, dict):
        raise CredentialsError(f"auth of {source} must be a mapping")
    auth_type = str(entry.get("auth_type") or "password")
    verify, cert = _tls(entry.get("verify", True), _truth(entry.get("insecure", False)),
                        [entry.get(k) for k in ("cacert", "cert", "key")],
                        [f"{k} of {source}" for k in ("cacert", "cert", "key")])
    return Settings(_plugin(auth_type, source), {k: v for k, v in auth.items() if v is not None},
                    verify, cert, str(entry.get("interface") or "public"),
                    entry.get("region_name") or None, source,
                    {option: f"auth.{option}" for option in AUTH_OPTIONS})


def from_env(env):
    """The OS_* variables, as openrc files set them."""
    auth = {option: env[f"OS_{option.upper()}"] for option in AUTH_OPTIONS
            if env.get(f"OS_{option.upper()}")}
    if "project_name" not in auth and env.get("OS_TENANT_NAME"):
        auth["project_name"] = env["OS_TENANT_NAME"]
    auth_type = env.get("OS_AUTH_TYPE") or "password"
    if auth_type in ("password", "v3password"):
        for option in ("user_domain", "project_domain"):  # openrc files often leave them out
            if f"{option}_id" not in auth:
                auth.setdefault(f"{option}_name", "Default")
    names = ("OS_CACERT", "OS_CERT", "OS_KEY")
    verify, cert = _tls(True, _truth(env.get("OS_INSECURE", "")), [env.get(n) for n in names],
                        names)
    interface = env.get("OS_INTERFACE") or env.get("OS_ENDPOINT_TYPE") or "public"
    return Settings(_plugin(auth_type, "OS_AUTH_TYPE"), auth, verify, cert,
                    interface.removesuffix("URL"), env.get("OS_REGION_NAME") or None,
                    "the environment", {option: f"OS_{option.upper()}" for option in AUTH_OPTIONS})


def _plugin(auth_type, where):
    try:
        return AUTH_TYPES[auth_type]
    except KeyError:
        raise CredentialsError(f"auth type {auth_type!r} of {where} is not supported "
                               f"(password, token, v3applicationcredential)") from None


def resolve(env, os_cloud=None):
    """The settings to authenticate with: the clouds.yaml entry named by --os-cloud or
    OS_CLOUD, else the OS_* variables."""
    name = os_cloud or env.get("OS_CLOUD")
    return from_cloud(name, env) if name else from_env(env)


# What each plugin cannot do without (a tuple: one of them).
REQUIRED = {
    "v3password": ("auth_url", ("username", "user_id"), "password"),
    "v3token": ("auth_url", "token"),
    "v3applicationcredential": ("auth_url", ("application_credential_id",
                                             "application_credential_name"),
                                "application_credential_secret"),
}
_IDENTIFYING = {
    "v3password": ("username", "user_id", "password", "project_name", "project_id"),
    "v3token": ("token", "project_name", "project_id"),
    "v3applicationcredential": ("application_credential_id", "application_credential_name",
                                "application_credential_secret"),
}


_SCOPE = ("auth_url", "system_scope", "domain_id", "domain_name", "project_id", "project_name",
          "project_domain_id", "project_domain_name", "trust_id")
_USER = ("user_id", "username", "user_domain_id", "user_domain_name")
OPTIONS = {  # what each plugin takes (keystoneauth1's loader options of the same name)
    "v3password": _SCOPE + _USER + ("password",),
    "v3token": _SCOPE + ("token",),
    "v3applicationcredential": _SCOPE + _USER + ("application_credential_secret",
                                                 "application_credential_id",
                                                 "application_credential_name"),
}


def required(plugin):
    return REQUIRED[plugin]


def options(plugin):
    return OPTIONS[plugin]


def hint(settings):
    """The settings to check after Keystone refused them (names only, never values)."""
    present = [o for o in _IDENTIFYING[settings.plugin] if settings.auth.get(o)]
    names = "/".join(settings.name_of(o) for o in present)
    return names if settings.source == "the environment" else f"{names} of {settings.source}"
