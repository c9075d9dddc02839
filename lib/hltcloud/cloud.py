"""Access to the cloud: one keystoneauth1 session from the standard OS_* variables.

Nova through python-novaclient; Placement and Glance through keystoneauth1 adapters on the
same session. A parent process that fans out to subworkers authenticates once and hands
them the token and endpoints through the environment (HLTCLOUD_AUTH), never on a command
line; subworkers then use the token as is and never authenticate again.
"""
import json
import os

from keystoneauth1 import adapter, exceptions as ks_exc, session as ks_session
from keystoneauth1.identity import v3
from keystoneauth1 import token_endpoint

NOVA_MICROVERSION = "2.60"  # >= 2.53 (service ids, hypervisors with servers), >= 2.37 (nics)
PLACEMENT_MICROVERSION = "1.10"
HANDOFF_VAR = "HLTCLOUD_AUTH"
SERVICES = ("compute", "placement", "image")
TIMEOUT = 60  # seconds for one API request


class CloudError(Exception):
    """The cloud cannot be used at all: unreachable, bad credentials, missing settings (exit 3)."""


def _password_auth(env):
    missing = [name for name in ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD") if not env.get(name)]
    if missing:
        raise CloudError(f"missing OpenStack credentials in the environment: {', '.join(missing)}")
    return v3.Password(
        auth_url=env["OS_AUTH_URL"],
        username=env["OS_USERNAME"],
        password=env["OS_PASSWORD"],
        project_name=env.get("OS_PROJECT_NAME") or env.get("OS_TENANT_NAME"),
        project_id=env.get("OS_PROJECT_ID"),
        user_domain_name=env.get("OS_USER_DOMAIN_NAME", "Default"),
        project_domain_name=env.get("OS_PROJECT_DOMAIN_NAME", "Default"),
    )


class Cloud:
    """An authenticated session and the endpoints of the services the tools use."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.interface = env.get("OS_INTERFACE", "public")
        self.region = env.get("OS_REGION_NAME") or None
        handoff = env.get(HANDOFF_VAR)
        if handoff:
            data = json.loads(handoff)
            self.endpoints = data["endpoints"]
            self.project_id = data["project_id"]
            self.token = data["token"]
            self.session = ks_session.Session(
                auth=token_endpoint.Token(None, self.token), timeout=TIMEOUT)
            return
        self.session = ks_session.Session(auth=_password_auth(env), timeout=TIMEOUT,
                                          verify=env.get("OS_CACERT") or True)
        try:
            self.token = self.session.get_token()
            self.project_id = self.session.get_project_id()
            self.endpoints = {
                name: self.session.get_endpoint(service_type=name, interface=self.interface,
                                                region_name=self.region)
                for name in SERVICES
            }
        except ks_exc.Unauthorized:
            raise CloudError("authentication failed: check OS_USERNAME/OS_PASSWORD/OS_PROJECT_NAME") from None
        except ks_exc.ConnectFailure as err:
            raise CloudError(f"cannot reach Keystone at {env['OS_AUTH_URL']}: {_short(err)}") from None
        except ks_exc.ClientException as err:
            raise CloudError(f"authentication failed: {_short(err)}") from None
        if not self.endpoints.get("compute"):
            raise CloudError("no compute endpoint in the service catalog")

    def handoff_env(self):
        """Environment entries that let a subworker use this session without authenticating."""
        return {HANDOFF_VAR: json.dumps({"token": self.token, "endpoints": self.endpoints,
                                         "project_id": self.project_id})}

    def adapter(self, service, microversion=None):
        endpoint = self.endpoints.get(service)
        if not endpoint:
            raise CloudError(f"no {service} endpoint in the service catalog")
        return adapter.Adapter(self.session, service_type=service, endpoint_override=endpoint,
                               default_microversion=microversion)

    def nova(self):
        from novaclient import client as nova_client
        return nova_client.Client(NOVA_MICROVERSION, session=self.session,
                                  endpoint_override=self.endpoints["compute"])

    def placement(self):
        return self.adapter("placement", PLACEMENT_MICROVERSION)

    def glance(self):
        return self.adapter("image")


def _short(err):
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def describe_error(err):
    """One line for an API error (novaclient or keystoneauth), without a traceback."""
    message = getattr(err, "message", None) or str(err) or type(err).__name__
    code = getattr(err, "code", None) or getattr(err, "http_status", None)
    text = message.splitlines()[0]
    return f"{text} (HTTP {code})" if code and str(code) not in text else text
