"""The one HTTP transport to Nova: the standard library's http.client, one kept-alive
connection, the session's timeouts and TLS settings, the environment's proxy, bounded
answers, one error type (ApiError, also raised for Placement's failures by placement.py).

Why not keystoneauth1's adapter (requests, urllib3) for Nova as well: a --parallel subworker
makes half a dozen requests for its host, and importing keystoneauth1 and requests would cost
it about twice the CPU of this client's imports (README, Dependencies), paid once a host by
the head. keystoneauth1 still logs in, renews the token and finds the endpoints; Nova's
requests carry its token (nova.py builds the one JsonApi for Nova).

What requests would take from the environment, this takes too: the CA bundle (ca_bundle,
the one place that choice is made, for keystoneauth1's session and the subworkers as well),
and http_proxy, https_proxy, all_proxy and no_proxy (proxy_for): through an http proxy, a
plain http request goes to the proxy with its absolute URL, an https one through a CONNECT
tunnel.
"""
import base64
import http.client
import json
import os
import urllib.parse

MAX_ANSWER = 64 * 1024 * 1024  # bytes: a page of 1,000 servers is a few MB


class ApiError(Exception):
    """An API answered with an error status (CODE), or could not be asked (CODE None)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        self.code = code


def origin(url):
    """(scheme, host, port) of URL, the port spelled out: where a token may go."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # no number: matches no endpoint
        port = -1
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def foreign(url, base):
    """True when URL (absolute, or relative to BASE) is at another scheme, host or port than
    BASE: no token, password or request of ours goes there."""
    return origin(urllib.parse.urljoin(base, url)) != origin(base)


def shown(url, limit=200):
    """URL from a cloud's answer, for a message: quoted, escaped, bounded."""
    return repr(url[:limit] + ("..." if len(url) > limit else ""))


def ca_bundle(verify=True, env=None):
    """VERIFY (True, False or a CA path) as every transport of ours takes it: True becomes the
    bundle requests would use, $REQUESTS_CA_BUNDLE, $CURL_CA_BUNDLE or certifi's (True when
    certifi is missing: the system's default), so that keystoneauth1, http.client and the
    subworkers check certificates against the very same file."""
    if verify is not True:
        return verify
    env = os.environ if env is None else env
    found = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
    if found:
        return found
    try:
        import certifi
    except ImportError:
        return True
    return certifi.where()


def proxy_for(url):
    """The proxy URL requests would send a request for URL through, or None: its scheme's
    *_proxy variable (else all_proxy), unless no_proxy names the host (a name, a domain, an
    address, or, as requests also takes them, an IPv4 network such as 10.0.0.0/8)."""
    if not any(value and name.lower().endswith("_proxy") for name, value in os.environ.items()):
        return None  # the usual case, without importing urllib.request
    import urllib.request
    proxies = urllib.request.getproxies_environment()
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        with_port = f"{host}:{parts.port}" if parts.port else host  # no_proxy may name either
    except ValueError:
        with_port = host
    if (urllib.request.proxy_bypass_environment(with_port, proxies)
            or _in_a_network(host, proxies.get("no", ""))):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


def _in_a_network(host, no_proxy):
    """True when HOST is an IPv4 address within a network (CIDR) that NO_PROXY lists."""
    networks = [entry for entry in no_proxy.replace(" ", "").split(",") if "/" in entry]
    if not networks:
        return False
    import ipaddress
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return False
    for entry in networks:
        try:
            if address in ipaddress.IPv4Network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


class Proxy:
    """An http proxy from its URL (as requests reads it: the scheme http when none is given;
    user:password@ becomes a Proxy-Authorization header, never shown)."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        try:
            port = parts.port or 80
        except ValueError:
            port = None
        if parts.scheme != "http" or not parts.hostname or port is None:
            raise ApiError(f"the proxy {shown(_without_credentials(parts))} is not an "
                           "http://HOST[:PORT] proxy: only those are supported")
        self.host, self.port = parts.hostname, port
        self.name = f"{self.host}:{self.port}"  # for messages: no credentials
        self.headers = {}
        if parts.username is not None:
            pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self.headers["Proxy-Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()


def _without_credentials(parts):
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def tls_context(verify, cert):
    """An ssl context as requests builds it from VERIFY (True, False or a CA path) and CERT
    (None, a path, or (certificate, key))."""
    import ssl
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        cafile = ca_bundle(verify)
        cafile = cafile if isinstance(cafile, str) else None
        if cafile and os.path.isdir(cafile):
            context = ssl.create_default_context(capath=cafile)
        else:
            context = ssl.create_default_context(cafile=cafile)
    if cert:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        context.load_cert_chain(certfile, keyfile)
    return context


class JsonApi:
    """Requests to one service's ENDPOINT: TOKEN() gives the token for each request; HEADERS
    are sent with every request (the microversion); PROXY: the proxy's URL (proxy_for)."""

    def __init__(self, service, endpoint, token, headers, verify=True, cert=None,
                 connect_timeout=5, read_timeout=30, max_answer=MAX_ANSWER, proxy=None):
        self.service = service
        self.endpoint = endpoint.rstrip("/")
        parts = urllib.parse.urlsplit(self.endpoint)
        self._https = parts.scheme == "https"
        self._host, self._port, self._path = parts.hostname, parts.port, parts.path
        # through an http proxy, a plain http request names its whole URL
        self._prefix = "" if self._https or not proxy else f"http://{parts.netloc}"
        self._token = token
        self._headers = {"Accept": "application/json", "User-Agent": "hltcloud", **headers}
        self._verify, self._cert = verify, cert
        self._timeouts = (connect_timeout, read_timeout)
        self._max_answer = max_answer
        self._proxy = Proxy(proxy) if proxy else None
        if self._proxy and not self._https:
            self._headers.update(self._proxy.headers)
        self._conn = None

    def request(self, method, path, body=None):
        """METHOD PATH (below the endpoint) with BODY as JSON -> the decoded answer (None when
        empty). ApiError for an error status, a timeout, a refused connection, a TLS error."""
        headers = {**self._headers, "X-Auth-Token": self._token()}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, reason, raw, location = self._exchange(method, self._prefix + self._path + path,
                                                       data, headers)
        if 300 <= status < 400:  # http.client follows none: say so rather than read it as JSON
            raise ApiError(f"{self.service} redirected {method} {path} to "
                           f"{shown(location or '')}: not followed (the token goes only to "
                           f"{self.endpoint})", status)
        try:
            answer = json.loads(raw) if raw.strip() else None
        except ValueError:
            answer = None
            if status < 400:
                raise ApiError(f"{self.service} answered {method} {path} with something that "
                               f"is not JSON", status) from None
        if status >= 400:
            raise ApiError(error_message(answer, raw, reason), status)
        return answer

    def _exchange(self, method, url, data, headers):
        """One request on the kept-alive connection; a connection the server closed while
        idle is opened again once (every request we send is idempotent)."""
        for attempt in (1, 2):
            reused = self._conn is not None
            try:
                conn = self._conn or self._connect()
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                raw = _read_bounded(resp, self._max_answer)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if reused and attempt == 1:
                    continue
                raise ApiError(f"{self.service} at {self._where()} closed the connection") from None
            except TimeoutError:
                self.close()
                raise ApiError(f"the cloud did not answer within {self._timeouts[1]} s "
                               f"({self.service} at {self._where()})") from None
            except (OSError, http.client.HTTPException) as err:
                self.close()
                raise ApiError(_connection_message(self.service, self._where(), err)) from None
            if raw is None:
                self.close()
                raise ApiError(f"{self.service} answered with more than {self._max_answer} bytes")
            if resp.will_close:
                self.close()
            return resp.status, resp.reason, raw, resp.getheader("Location")

    def _where(self):
        return self.endpoint + (f" through the proxy {self._proxy.name}" if self._proxy else "")

    def _connect(self):
        connect, read = self._timeouts
        host, port = (self._proxy.host, self._proxy.port) if self._proxy else (self._host, self._port)
        if self._https:
            conn = http.client.HTTPSConnection(host, port, timeout=connect,
                                               context=tls_context(self._verify, self._cert))
            if self._proxy:  # CONNECT, then TLS with the endpoint itself through the tunnel
                conn.set_tunnel(self._host, self._port, headers=self._proxy.headers)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect)
        conn.connect()  # connecting (and TLS) within CONNECT seconds, each answer within READ
        conn.sock.settimeout(read)
        self._conn = conn
        return conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _read_bounded(resp, limit):
    """The answer's body, or None when it is larger than LIMIT bytes (read in pieces: one read
    of LIMIT bytes would reserve that much memory at once)."""
    if resp.length is not None and resp.length > limit:
        return None
    pieces, total = [], 0
    while piece := resp.read(1 << 20):
        total += len(piece)
        if total > limit:
            return None
        pieces.append(piece)
    return b"".join(pieces)


def _connection_message(service, where, err):
    import ssl
    if isinstance(err, ssl.SSLError):
        return f"TLS error talking to {service} at {where}: {err}"
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return f"cannot reach {service} at {where}: {text}"


def error_message(answer, raw, reason):
    """Nova's {"itemNotFound": {"message": ...}} (or Keystone's {"error": {...}}), Placement's
    {"errors": [{"title": ...}]} (its first error's title, as keystoneauth1 shows it), else
    the first line of the answer, else the HTTP reason."""
    if isinstance(answer, dict) and len(answer) == 1:
        inner = next(iter(answer.values()))
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if (isinstance(answer.get("errors"), list) and answer["errors"]
                and isinstance(answer["errors"][0], dict)
                and isinstance(answer["errors"][0].get("title"), str)):
            return answer["errors"][0]["title"]
    text = raw[:500].decode(errors="replace").strip().splitlines()
    return text[0] if text else reason
