"""Keystone v3: password, token or application credential authentication scoped to the admin
project, the catalog, application credentials of the admin user."""
import hmac
import secrets
import uuid

from .base import Service, UNAUTHORIZED
from .http import Response
from .model import ADMIN_PROJECT_ID, ADMIN_USER_ID, ApiError, now_iso

DOMAIN = {"id": "default", "name": "Default"}
PROJECT = {"id": ADMIN_PROJECT_ID, "name": "admin", "domain": DOMAIN}
USER = {"id": ADMIN_USER_ID, "name": "admin", "domain": DOMAIN, "password_expires_at": None}
ROLES = [{"id": "4f2e6a0c8b9d4e1fa3c5b7d9e1f3a5c7", "name": "admin"},
         {"id": "9b1d3f5a7c9e4b2d8f0a2c4e6a8c0e2f", "name": "member"},
         {"id": "1c3e5a7b9d1f4a3c5e7b9d1f3a5c7e9b", "name": "reader"}]
# (service type, name, path under the simulator's base URL)
CATALOG = [("identity", "keystone", "/identity/v3"), ("compute", "nova", "/compute/v2.1"),
           ("image", "glance", "/image"), ("placement", "placement", "/placement")]


def version_v3(base):
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base}/identity/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.identity-v3+json"}]}


class Keystone(Service):
    name = "identity"
    name_prefix = "identity"
    public_paths = ("/", "/v3", "/v3/auth/tokens")

    def routes(self):
        r = self.router
        r.add("GET", "/", self.versions)
        r.add("GET", "/v3", self.version)
        r.add("POST", "/v3/auth/tokens", self.authenticate)
        r.add("GET", "/v3/auth/tokens", self.validate)
        r.add("GET", "/v3/auth/catalog", self.get_catalog)
        r.add("GET", "/v3/projects", self.projects)
        r.add("GET", "/v3/auth/projects", self.projects)
        r.add("POST", "/v3/users/([^/]+)/application_credentials", self.create_app_credential)

    def versions(self, req):
        return Response(300, {"versions": {"values": [version_v3(self.sim.base_url)]}})

    def version(self, req):
        return Response(200, {"version": version_v3(self.sim.base_url)})

    def catalog(self):
        base = self.sim.base_url
        entries = []
        for stype, name, path in CATALOG:
            endpoints = []
            for interface in ("public", "internal", "admin"):
                endpoint_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{base}{path} {interface}").hex
                endpoints.append({"id": endpoint_id, "interface": interface,
                                  "region": "RegionOne", "region_id": "RegionOne",
                                  "url": f"{base}{path}"})
            entries.append({"type": stype, "name": name, "endpoints": endpoints,
                            "id": uuid.uuid5(uuid.NAMESPACE_DNS, stype).hex})
        return entries

    def token_body(self, expiry, methods):
        return {"token": {
            "methods": methods, "user": USER, "project": PROJECT, "roles": ROLES,
            "is_domain": False, "audit_ids": [uuid.uuid4().hex[:22]],
            "issued_at": now_iso(micro=True) + "Z", "expires_at": now_iso(expiry, micro=True) + "Z",
            "catalog": self.catalog(),
        }}

    def authenticate(self, req):
        body = req.json()
        identity = (body.get("auth") or {}).get("identity") or {}
        methods = identity.get("methods") or []
        ok = False
        if "password" in methods:
            user = (identity.get("password") or {}).get("user") or {}
            name_ok = user.get("name") == "admin" or user.get("id") == ADMIN_USER_ID
            password = str(user.get("password", ""))
            ok = name_ok and hmac.compare_digest(password.encode(), self.cloud.password.encode())
        elif "token" in methods:
            with self.cloud.lock:
                ok = self.cloud.token_valid((identity.get("token") or {}).get("id"))
        elif "application_credential" in methods:
            ok = self._app_credential_ok(identity.get("application_credential") or {})
        scope = ((body.get("auth") or {}).get("scope") or {}).get("project")
        if scope and not (scope.get("name") == "admin" or scope.get("id") == ADMIN_PROJECT_ID):
            ok = False
        if not ok:
            raise ApiError(401, UNAUTHORIZED)
        with self.cloud.lock:
            token, expiry = self.cloud.issue_token()
        return Response(201, self.token_body(expiry, methods), {"X-Subject-Token": token})

    def _app_credential_ok(self, given):
        """By id, or by name with its user (name or id); the secret must match. Keystone
        scopes the token to the credential's project itself."""
        user = given.get("user") or {}
        with self.cloud.lock:
            for cred in self.cloud.app_credentials.values():
                by_id = given.get("id") == cred["id"]
                by_name = (given.get("name") == cred["name"] and
                           (user.get("id") == cred["user_id"] or user.get("name") == USER["name"]))
                if by_id or by_name:
                    return hmac.compare_digest(str(given.get("secret", "")).encode(),
                                               cred["secret"].encode())
        return False

    def create_app_credential(self, req, user_id):
        self.check_token(req, "")
        body = (req.json() or {}).get("application_credential") or {}
        name = body.get("name")
        if not isinstance(name, str) or not name or user_id != ADMIN_USER_ID:
            raise ApiError(400, "Invalid input for field 'name'.")
        cred = {"id": uuid.uuid4().hex, "name": name, "user_id": user_id,
                "secret": body.get("secret") or secrets.token_urlsafe(32)}
        with self.cloud.lock:
            if any(c["name"] == name for c in self.cloud.app_credentials.values()):
                raise ApiError(409, "Conflict occurred attempting to store application_credential")
            self.cloud.app_credentials[cred["id"]] = cred
        view = dict(cred, project_id=PROJECT["id"], roles=ROLES, unrestricted=False,
                    expires_at=None, description=body.get("description"))
        return Response(201, {"application_credential": view})

    def _subject(self, req):
        token = req.headers.get("X-Subject-Token")
        with self.cloud.lock:
            if not self.cloud.token_valid(req.headers.get("X-Auth-Token")):
                raise ApiError(401, UNAUTHORIZED)
            if not self.cloud.token_valid(token):
                raise ApiError(404, f"Could not find token: {token}")
            return token, self.cloud.tokens[token]

    def validate(self, req):
        token, expiry = self._subject(req)
        return Response(200, self.token_body(expiry, ["password"]), {"X-Subject-Token": token})

    def get_catalog(self, req):
        self.check_token(req, "")
        return Response(200, {"catalog": self.catalog()})

    def projects(self, req):
        self.check_token(req, "")
        return Response(200, {"projects": [dict(PROJECT, domain_id="default", enabled=True,
                                                description="Admin project", parent_id="default",
                                                is_domain=False, tags=[], options={})]})

