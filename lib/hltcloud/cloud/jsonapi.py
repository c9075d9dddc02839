"""Nova's JSON API over the standard library's http.client: one kept-alive connection,
the session's timeouts and TLS settings, bounded answers, one error type.

Why not the keystoneauth1 adapter for these requests: a --parallel subworker makes half a
dozen requests for its host, and importing keystoneauth1, requests and urllib3 would cost
it about 0.3 s of CPU, more than the rest of its work (the head pays it once a host). The
parent uses the same client with its keystoneauth1 session's token (keystoneauth1 still
authenticates, renews the token and finds the endpoints). When a proxy is configured in the
environment, requests would honour it and http.client would not: Cloud then keeps the
keystoneauth1 adapter (see proxied()).
"""
import http.client
import json
import os
import urllib.parse

MAX_ANSWER = 64 * 1024 * 1024  # bytes: a page of 1,000 servers is a few MB
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")


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


def proxied(env=None):
    """True when requests would send through a proxy set in the environment."""
    env = os.environ if env is None else env
    return any(env.get(name) or env.get(name.upper()) for name in PROXY_VARS)


def default_ca_bundle(env=None):
    """The CA bundle requests uses for verify=True: $REQUESTS_CA_BUNDLE, $CURL_CA_BUNDLE,
    certifi's (None: the system's default, when certifi is missing)."""
    env = os.environ if env is None else env
    found = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
    if found:
        return found
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def tls_context(verify, cert):
    """An ssl context as requests builds it from VERIFY (True, False or a CA path) and CERT
    (None, a path, or (certificate, key))."""
    import ssl
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        cafile = verify if isinstance(verify, str) else default_ca_bundle()
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
    are sent with every request (the microversion)."""

    def __init__(self, service, endpoint, token, headers, verify=True, cert=None,
                 connect_timeout=5, read_timeout=30, max_answer=MAX_ANSWER):
        self.service = service
        self.endpoint = endpoint.rstrip("/")
        parts = urllib.parse.urlsplit(self.endpoint)
        self._https = parts.scheme == "https"
        self._host, self._port, self._path = parts.hostname, parts.port, parts.path
        self._token = token
        self._headers = {"Accept": "application/json", "User-Agent": "hltcloud", **headers}
        self._verify, self._cert = verify, cert
        self._timeouts = (connect_timeout, read_timeout)
        self._max_answer = max_answer
        self._conn = None

    def request(self, method, path, body=None):
        """METHOD PATH (below the endpoint) with BODY as JSON -> the decoded answer (None when
        empty). ApiError for an error status, a timeout, a refused connection, a TLS error."""
        headers = {**self._headers, "X-Auth-Token": self._token()}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, reason, raw, location = self._exchange(method, self._path + path, data, headers)
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
                raise ApiError(f"{self.service} at {self.endpoint} closed the connection") from None
            except TimeoutError:
                self.close()
                raise ApiError(f"the cloud did not answer within {self._timeouts[1]} s "
                               f"({self.service} at {self.endpoint})") from None
            except (OSError, http.client.HTTPException) as err:
                self.close()
                raise ApiError(_connection_message(self.service, self.endpoint, err)) from None
            if raw is None:
                self.close()
                raise ApiError(f"{self.service} answered with more than {self._max_answer} bytes")
            if resp.will_close:
                self.close()
            return resp.status, resp.reason, raw, resp.getheader("Location")

    def _connect(self):
        connect, read = self._timeouts
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=connect,
                                               context=tls_context(self._verify, self._cert))
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=connect)
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


def _connection_message(service, endpoint, err):
    import ssl
    if isinstance(err, ssl.SSLError):
        return f"TLS error talking to {service} at {endpoint}: {err}"
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return f"cannot reach {service} at {endpoint}: {text}"


def error_message(answer, raw, reason):
    """Nova's {"itemNotFound": {"message": ...}} (or Keystone's {"error": {...}}), else the
    first line of the answer, else the HTTP reason."""
    if isinstance(answer, dict) and len(answer) == 1:
        inner = next(iter(answer.values()))
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
    text = raw[:500].decode(errors="replace").strip().splitlines()
    return text[0] if text else reason
