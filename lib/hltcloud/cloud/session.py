"""Access to the cloud: one keystoneauth1 session, credentials as the openstack CLI takes
them (credentials.py: a clouds.yaml entry or the OS_* variables).

keystoneauth1 logs in, renews the token, reads the catalog, and carries Placement's
(placement.py) and Glance's (glance.py) requests; Nova's go through nova.py, the standard
library's http.client with this session's token (jsonapi.py). keystoneauth1 is imported only
when a session is opened or used: --help and bad input never pay for it. A parent process
that fans out to subworkers authenticates once and hands them the token and endpoints
through the environment (HLTCLOUD_AUTH), never on a command line; subworkers then use the
token as is, never authenticate again, and load keystoneauth1 only if they need more than
Nova.
"""
import datetime
import json
import os
import urllib.parse

from hltcloud.cloud import credentials
from hltcloud.cloud import jsonapi
from hltcloud.errors import CLOUD, ToolError

PLACEMENT_MICROVERSION = "1.12"  # >= 1.10 allocation candidates, 1.12 their answer by provider
HANDOFF_VAR = "HLTCLOUD_AUTH"
SERVICES = ("compute", "placement", "image")
CONNECT_TIMEOUT = 5  # seconds to open a connection to an API
READ_TIMEOUT = 30  # seconds an API may take to answer (site configuration: cloud.read_timeout)
REDIRECTS = (301, 302, 303, 305, 307, 308)  # the statuses keystoneauth1 follows
MAX_HANDOFF = 64 * 1024  # bytes: a token and a few endpoints
TOKEN_MARGIN = datetime.timedelta(seconds=30)  # a token this close to its end counts as expired
POOL_SIZE = 16  # kept-alive connections an endpoint: placement.READERS threads share them


class CloudError(ToolError):
    """The cloud cannot be used at all: unreachable, bad credentials, missing settings (exit 3)."""
    exit_status = CLOUD


def _http_url(value, name):
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CloudError(f"{name} is not an http(s) URL: {value!r}")
    return value


def auth_plugin(settings):
    """The keystoneauth1 plugin for SETTINGS; CloudError naming what is missing.

    The v3 identity classes themselves, as keystoneauth1's loaders would build them: the
    loading API finds them through stevedore, which scans every installed entry point and
    writes a cache file into the home directory on each run."""
    from keystoneauth1.identity import v3
    plugin = {"v3password": v3.Password, "v3token": v3.Token,
              "v3applicationcredential": v3.ApplicationCredential}[settings.plugin]
    known = credentials.options(settings.plugin)
    auth = {key: value for key, value in settings.auth.items() if key in known}
    missing = [settings.name_of(option) if isinstance(option, str) else
               " or ".join(settings.name_of(o) for o in option)
               for option in credentials.required(settings.plugin) if not _has(auth, option)]
    if missing:
        raise CloudError(f"missing OpenStack credentials in {settings.source}: "
                         f"{', '.join(missing)}")
    _http_url(str(auth["auth_url"]), settings.name_of("auth_url"))
    return plugin(**auth)


def _has(auth, option):
    return any(auth.get(o) for o in ((option,) if isinstance(option, str) else option))


def _read_handoff(text):
    """The token, endpoints and project a --parallel parent handed over, checked."""
    if len(text) > MAX_HANDOFF:
        raise CloudError(f"{HANDOFF_VAR} is too large ({len(text)} bytes)")
    try:
        data = json.loads(text)
        token, endpoints, project = data["token"], data["endpoints"], data["project_id"]
        expires = datetime.datetime.fromisoformat(data["expires_at"])
        verify, cert = data["verify"], data["cert"]
        valid = (isinstance(token, str) and token and isinstance(project, str)
                 and isinstance(endpoints, dict) and expires.tzinfo is not None
                 and isinstance(verify, (bool, str)) and _is_cert(cert)
                 and all(isinstance(k, str) and (v is None or isinstance(v, str))
                         for k, v in endpoints.items()))
    except (ValueError, TypeError, KeyError):
        valid = False
    if not valid:
        raise CloudError(f"{HANDOFF_VAR} is malformed: it is set only by a --parallel parent "
                         "for its subworkers")
    for name, url in endpoints.items():
        if url:
            _http_url(url, f"the {name} endpoint in {HANDOFF_VAR}")
    if expires - TOKEN_MARGIN < datetime.datetime.now(datetime.timezone.utc):
        raise CloudError(f"the token handed over in {HANDOFF_VAR} expired at "
                         f"{expires.isoformat()}")
    return token, endpoints, project, expires, verify, tuple(cert) if isinstance(cert, list) else cert


def _is_cert(cert):
    """None, a path, or [certificate, key] (as requests takes it)."""
    return cert is None or isinstance(cert, str) or (
        isinstance(cert, list) and len(cert) == 2 and all(isinstance(c, str) for c in cert))


class Cloud:
    """An authenticated session and the endpoints of the services the tools use.

    HANDOFF: take the token from HLTCLOUD_AUTH (only a --parallel subworker does; anywhere
    else a leftover variable must not win over the operator's own credentials)."""

    def __init__(self, env=None, handoff=False, read_timeout=READ_TIMEOUT, os_cloud=None):
        env = os.environ if env is None else env
        self.read_timeout = read_timeout
        self._origins = set()  # where requests may go: Keystone, then the endpoints
        if handoff and env.get(HANDOFF_VAR):
            (self.token, self.endpoints, self.project_id, self.expires_at, self.verify,
             self.cert) = _read_handoff(env[HANDOFF_VAR])
            self._allow(self.endpoints.values())
            self._session_obj = None  # made only if Placement or Glance is asked for
            return
        try:
            settings = credentials.resolve(env, os_cloud)
        except credentials.CredentialsError as err:
            raise CloudError(str(err)) from None
        # requests' own CA bundle named: every transport and every subworker uses that file
        self.verify, self.cert = jsonapi.ca_bundle(settings.verify), settings.cert
        from keystoneauth1 import exceptions as ks_exc
        plugin = auth_plugin(settings)  # checks that auth_url and the rest are there
        url = settings.auth["auth_url"]
        self._allow([url])
        self._session_obj = self._session(plugin)
        try:
            self.token = self.session.get_token()
            self.project_id = self.session.get_project_id()
            self.expires_at = self.session.auth.get_access(self.session).expires
            self.endpoints = {name: self._endpoint(name, settings) for name in SERVICES}
            # the catalog's Keystone too: it may differ from auth_url (public, internal)
            self._allow([*self.endpoints.values(), self._endpoint("identity", settings)])
        except ks_exc.Unauthorized:
            raise CloudError(f"authentication failed: check {credentials.hint(settings)}") from None
        except ks_exc.ConnectTimeout:
            raise CloudError(f"the cloud did not answer within {read_timeout} s "
                             f"(Keystone at {url})") from None
        except ks_exc.SSLError as err:
            raise CloudError(f"TLS error talking to Keystone at {url}: {_short(err)}") from None
        except ks_exc.ConnectFailure as err:
            raise CloudError(f"cannot reach Keystone at {url}: {_short(err)}") from None
        except ks_exc.ClientException as err:
            raise CloudError(f"authentication failed: {_short(err)}") from None
        if not self.endpoints.get("compute"):
            where = f" in region {settings.region}" if settings.region else ""
            raise CloudError(f"no {settings.interface} compute endpoint{where} in the service "
                             "catalog (OS_INTERFACE, OS_REGION_NAME)")

    @property
    def session(self):
        """The keystoneauth1 session (a subworker makes one from the handed-over token only
        when it needs Placement or Glance)."""
        if self._session_obj is None:
            from keystoneauth1 import token_endpoint
            self._session_obj = self._session(token_endpoint.Token(None, self.token))
        return self._session_obj

    def current_token(self):
        """The token for the next request: the parent's session renews it when it is about
        to expire (jsonapi.ApiError when that fails); a subworker's is the handed-over one."""
        if self._session_obj is None:
            return self.token
        from keystoneauth1 import exceptions as ks_exc
        try:
            return self._session_obj.get_token()
        except ks_exc.ClientException as err:
            raise jsonapi.ApiError(f"renewing the token: {describe_error(err)}") from None

    def _endpoint(self, service, settings):
        """The catalog's URL of SERVICE, or None (only compute is indispensable)."""
        from keystoneauth1 import exceptions as ks_exc
        try:
            return self.session.get_endpoint(service_type=service, interface=settings.interface,
                                             region_name=settings.region)
        except ks_exc.EndpointNotFound:
            return None

    def _allow(self, urls):
        self._origins.update(jsonapi.origin(url) for url in urls if url)

    def _session(self, auth):
        from keystoneauth1 import session as ks_session
        session = ks_session.Session(auth=auth, verify=self.verify, cert=self.cert,
                                     session=_pinned_requests(self._origins))
        # requests takes (connect, read): a cloud that accepts connections but never answers
        # is noticed after READ_TIMEOUT, an address where nothing listens after a few seconds.
        session.timeout = (CONNECT_TIMEOUT, self.read_timeout)
        return session

    def handoff_env(self):
        """Environment entries that let a subworker use this session without authenticating."""
        return {HANDOFF_VAR: json.dumps({"token": self.token, "endpoints": self.endpoints,
                                         "project_id": self.project_id,
                                         "expires_at": self.expires_at.isoformat(),
                                         # the parent's TLS settings, the same in every process
                                         "verify": self.verify,
                                         "cert": self.cert})}

    def adapter(self, service, microversion=None):
        endpoint = self.endpoints.get(service)
        if not endpoint:
            raise CloudError(f"no {service} endpoint in the service catalog")
        from keystoneauth1 import adapter
        return adapter.Adapter(self.session, service_type=service, endpoint_override=endpoint,
                               default_microversion=microversion)

    def placement(self):
        """The keystoneauth1 adapter for Placement (placement.py reads through it)."""
        return self.adapter("placement", PLACEMENT_MICROVERSION)

    def glance(self):
        return self.adapter("image")


def _pinned_requests(origins):
    """The requests session under keystoneauth1, the one place where the
    token and the password leave: a request goes only to ORIGINS (Keystone's and the
    catalog's endpoints', as (scheme, host, port)), and a redirect is followed only within
    the origin it came from. keystoneauth1 would follow any redirect, anywhere, resending
    the token, or the password with a POST to Keystone; a Glance "next" link or a version
    document could name any host."""
    import requests
    from keystoneauth1 import session as ks_session

    class Pinned(requests.Session):
        def send(self, request, **kwargs):
            if jsonapi.origin(request.url) not in origins:
                raise CloudError(f"refused to send {request.method} {jsonapi.shown(request.url)}: "
                                 "not the scheme, host and port of Keystone or of an endpoint")
            return super().send(request, **kwargs)

    def refuse_foreign_redirect(resp, *args, **kwargs):  # before anything follows it
        location = resp.headers.get("Location")
        if resp.status_code in REDIRECTS and location and jsonapi.foreign(location, resp.url):
            resp.close()
            raise CloudError(f"the cloud redirected {resp.request.method} {resp.url} to "
                             f"{jsonapi.shown(location)}: not followed (a token or password goes "
                             "only to the endpoint's own scheme, host and port)")
        return resp

    session = Pinned()
    # as keystoneauth1's own, with a connection for each of Placement's concurrent readers
    for scheme in ("https://", "http://"):
        session.mount(scheme, ks_session.TCPKeepAliveAdapter(pool_maxsize=POOL_SIZE))
    session.hooks["response"].extend([refuse_foreign_redirect, _read_bounded_answer])
    return session


def _read_bounded_answer(resp, *args, stream=False, **kwargs):
    """An answer read whole (Keystone's, Placement's, Glance's JSON) is read here, before
    requests would, at most jsonapi.MAX_ANSWER bytes: an endpoint cannot fill the head's
    memory. A streamed answer (an image's data) is left to its reader and its own bounds."""
    if stream:
        return resp
    limit = jsonapi.MAX_ANSWER
    declared = resp.headers.get("Content-Length", "")
    too_big = declared.isdigit() and int(declared) > limit
    pieces, total = [], 0
    for piece in () if too_big else resp.iter_content(1 << 20):
        pieces.append(piece)
        total += len(piece)
        if total > limit:
            too_big = True
            break
    if too_big:
        resp.close()
        raise CloudError(f"{jsonapi.shown(resp.url)} answered with more than {limit} bytes")
    resp._content = b"".join(pieces)  # what requests' own read would have kept
    return resp


def _short(err):
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def describe_error(err):
    """One line for an API error (ApiError, or keystoneauth1's), without a traceback."""
    message = getattr(err, "message", None) or str(err) or type(err).__name__
    code = getattr(err, "code", None) or getattr(err, "http_status", None)
    text = message.splitlines()[0]
    return f"{text} (HTTP {code})" if code and str(code) not in text else text
