"""Common behaviour of the simulated services: token check, error bodies, microversions."""
import re

from .http import Response, Router
from .model import ApiError

UNAUTHORIZED = "The request you have made requires authentication."


class Service:
    name = ""
    public_paths = ("/",)  # version documents need no token

    def __init__(self, sim):
        self.sim = sim
        self.cloud = sim.cloud
        self.router = Router()
        self.routes()

    def routes(self):
        raise NotImplementedError

    def url(self, suffix=""):
        return f"{self.sim.base_url}/{self.name_prefix}{suffix}"

    def check_token(self, req, sub):
        if sub in self.public_paths:
            return
        with self.cloud.lock:
            ok = self.cloud.token_valid(req.headers.get("X-Auth-Token"))
        if not ok:
            raise ApiError(401, UNAUTHORIZED)

    def serve(self, req, sub):
        self.check_token(req, sub)
        return self.router.dispatch(req, sub)

    def error(self, err):
        headers = {}
        if err.status == 401:
            headers["WWW-Authenticate"] = f'Keystone uri="{self.sim.base_url}/identity"'
        return Response(err.status, {"error": {"code": err.status, "message": err.message,
                                               "title": TITLES.get(err.status, "Error")}},
                        headers)


TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict"}


def parse_microversion(req, service_type, legacy_header, minimum, maximum):
    """The requested microversion as (major, minor); the minimum when none is asked for."""
    wanted = None
    header = req.headers.get("OpenStack-API-Version")
    if header:
        for item in header.split(","):
            words = item.split()
            if len(words) == 2 and words[0].lower() == service_type:
                wanted = words[1]
    if wanted is None and legacy_header:
        wanted = req.headers.get(legacy_header)
    if not wanted:
        return minimum
    if wanted.strip().lower() == "latest":
        return maximum
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", wanted)
    if not match:
        raise ApiError(400, f"Invalid format for version {wanted!r}")
    version = (int(match.group(1)), int(match.group(2)))
    if not minimum <= version <= maximum:
        raise ApiError(406, "Version %d.%d is not supported by the API. Minimum is %d.%d and "
                       "maximum is %d.%d." % (version + minimum + maximum))
    return version


def vtext(version):
    return "%d.%d" % version


def int_arg(req, name, default=None, minimum=0):
    value = req.arg(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"{name} param must be an integer") from None
    if number < minimum:
        raise ApiError(400, f"{name} param must be >= {minimum}")
    return number
