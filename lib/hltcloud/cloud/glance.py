"""Glance v2 image lookup and a verified local copy of its data, for openstack-prefill-cache.

Everything goes through the keystoneauth1 adapter of cloud.Cloud().glance(): no CLI tables.
"""
import hashlib
import os
import re
import tempfile

from keystoneauth1 import exceptions as ks_exc

from hltcloud.cloud import images as image_check
from hltcloud.cloud import jsonapi
from hltcloud.cloud.session import CloudError, describe_error
from hltcloud.errors import ToolError

_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                   r"[0-9a-fA-F]{12}\Z")
_CHUNK = 1 << 20


class ImageError(ToolError):
    """The image cannot be used (exit status 2: bad IMAGE; 1: unusable data)."""


class ImageNotFound(ImageError):
    """No image has that name or id."""


class AmbiguousImage(ImageError):
    """Several images have that name."""


def _get(glance, path, **kwargs):
    try:
        return glance.get(path, raise_exc=False, **kwargs)
    except ks_exc.ConnectFailure as err:
        raise CloudError(f"cannot reach Glance: {describe_error(err)}") from None
    except ks_exc.ClientException as err:
        raise CloudError(f"Glance request failed: {describe_error(err)}") from None


def _json(resp, what):
    if resp.status_code != 200:
        raise CloudError(f"Glance answered {resp.status_code} to {what}")
    return resp.json()


def pages(glance, path, params, what="the image list"):
    """Each page (decoded) of the Glance listing PATH?PARAMS. Its "next" link (the query and
    the marker) is followed only within the endpoint's own scheme, host and port: an
    absolute link elsewhere would take the token with it."""
    endpoint = glance.endpoint_override
    while path:
        body = _json(_get(glance, path, params=params), what)
        yield body
        path, params = body.get("next"), None
        if path and (not isinstance(path, str) or jsonapi.foreign(path, endpoint)):
            raise CloudError(f"Glance's next link {jsonapi.shown(str(path))} in {what} is not "
                             f"a path of {endpoint}: not followed")


def find_image(glance, ref):
    """The one active image whose id or name is REF (an id wins over a name)."""
    if _UUID.match(ref):
        resp = _get(glance, f"/v2/images/{ref}")
        if resp.status_code == 200:
            return _active(resp.json())
        if resp.status_code != 404:
            raise CloudError(f"Glance answered {resp.status_code} to image {ref}")
    images = []
    for body in pages(glance, "/v2/images", {"name": ref, "limit": 100}):
        images += body.get("images", [])
    if not images:
        raise ImageNotFound(f"Cannot find image with name {ref}")
    if len(images) > 1:
        ids = ", ".join(f"{img['id']} (created {img.get('created_at', '?')})"  # one line
                        for img in sorted(images, key=lambda i: i.get("created_at", "")))
        raise AmbiguousImage(f"{len(images)} images are named {ref}; use an id: {ids}")
    return _active(images[0])


def _active(image):
    if image.get("status") != "active":
        raise ImageError(f"Image {image.get('name')} (id={image['id']}) is not active yet "
                         f"(status: {image.get('status')})")
    return image


class Digests:
    """The checksums Glance records (md5 `checksum`, `os_hash_algo`/`os_hash_value`) plus the
    sha1 the wave verifies on the nodes, all in one pass over the data."""

    def __init__(self, image):
        self.image = image
        self.hashes = {"sha1": hashlib.sha1()}
        if image.get("checksum"):
            self.hashes["md5"] = hashlib.md5()
        algo = image.get("os_hash_algo")
        if algo and image.get("os_hash_value") and algo in hashlib.algorithms_available:
            self.hashes[algo] = hashlib.new(algo)
        self.size = 0

    def update(self, data):
        self.size += len(data)
        for digest in self.hashes.values():
            digest.update(data)

    def mismatch(self):
        """Why the data differs from what Glance records, or ""."""
        image = self.image
        if image.get("size") is not None and image["size"] != self.size:
            return f"size {self.size}, Glance records {image['size']}"
        if "md5" in self.hashes and self.hashes["md5"].hexdigest() != image["checksum"]:
            return f"md5 {self.hashes['md5'].hexdigest()}, Glance records {image['checksum']}"
        algo = image.get("os_hash_algo")
        multihash = algo in self.hashes and image.get("os_hash_value")
        if multihash and self.hashes[algo].hexdigest() != image["os_hash_value"]:
            return f"{algo} differs from what Glance records"
        if not multihash and "md5" not in self.hashes:
            return "Glance records no checksum for this image"
        return ""

    def sha1(self):
        return self.hashes["sha1"].hexdigest()


def verify_store_copy(path, image):
    """Check the Glance file store copy against Glance's checksums; returns its sha1."""
    digests = Digests(image)
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digests.update(block)
    problem = digests.mismatch()
    if problem:
        raise ImageError(f"Glance store copy {path} of image {image['name']} is corrupt "
                         f"({problem}): nothing sent", exit_status=1)
    return digests.sha1()


def check_data(path, image, max_virtual_size):
    """Refuse (exit 1) an image whose data at PATH must not reach a hypervisor (image_check);
    returns its virtual size."""
    try:
        return image_check.check(path, image.get("disk_format") or "", max_virtual_size)
    except image_check.ImageRefused as err:
        raise ImageError(f"Image {image['name']} (id={image['id']}) refused: {err}",
                         exit_status=1) from None


def download(glance, image, directory=None):
    """Fetch the image data through the API into a temporary file; returns (path, sha1).

    The caller removes the file. A download that does not match Glance's checksum is removed.
    """
    resp = _get(glance, f"/v2/images/{image['id']}/file", stream=True)
    if resp.status_code == 204:
        raise ImageError(f"Image {image['name']} (id={image['id']}) has no data", exit_status=1)
    if resp.status_code != 200:
        raise CloudError(f"Glance answered {resp.status_code} to the download of {image['id']}")
    digests = Digests(image)
    handle = tempfile.NamedTemporaryFile(prefix="hlt-glance-", suffix=".img", dir=directory,
                                         delete=False)
    try:
        with handle:
            for block in resp.iter_content(_CHUNK):
                digests.update(block)
                handle.write(block)
        problem = digests.mismatch()
        if problem:
            raise ImageError(f"download of image {image['name']} is corrupt ({problem}): "
                             "nothing sent", exit_status=1)
    except BaseException:
        os.unlink(handle.name)
        raise
    return handle.name, digests.sha1()
