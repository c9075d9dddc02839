"""Placement's resource providers and the room on them, read through keystoneauth1 (the
session's adapter: token, renewal, TLS, timeouts); every failure is a jsonapi.ApiError, as
Nova's are.

The reads do not grow with the farm one request after another. The room for a flavor comes
as the scheduler asks for it: GET /allocation_candidates names every provider where one VM
of it fits now, with the capacity and use of each class, in one answer. Only the
inventories of the providers it leaves out (full ones), for the capacity of an empty farm,
are read one provider a request, READERS at a time on the session's kept-alive connections.
"""
from hltcloud.cloud.jsonapi import ApiError, error_message
from hltcloud.cloud.session import POOL_SIZE, describe_error

READERS = POOL_SIZE  # concurrent requests: one kept-alive connection each


class Placement:
    """Placement's reads for one cloud (session.Cloud)."""

    def __init__(self, cloud):
        self._api = cloud.placement()

    def _get(self, path, params=None):
        from keystoneauth1 import exceptions as ks_exc
        try:
            resp = self._api.get(path, params=params, raise_exc=False)
        except ks_exc.ClientException as err:
            raise ApiError(describe_error(err)) from None
        try:
            answer = resp.json() if resp.content else None
        except ValueError:
            answer = None
        if resp.status_code >= 400:
            raise ApiError(error_message(answer, resp.content, resp.reason), resp.status_code)
        if not isinstance(answer, dict):
            raise ApiError(f"placement answered GET {path} with something that is not JSON",
                           resp.status_code)
        return answer

    def providers(self):
        """{name: uuid} of every resource provider."""
        return {p["name"]: p["uuid"] for p in self._get("/resource_providers")["resource_providers"]}

    def room(self, needs):
        """{uuid: {class: {"capacity": c, "used": u}}} of the providers that hold one VM of
        NEEDS ({class: amount}) now, each alone: one request. A candidate that takes a
        class from another provider (shared storage) does not count, as the inventories of
        a host's own provider would not."""
        resources = ",".join(f"{rc}:{amount}" for rc, amount in sorted(needs.items()))
        answer = self._get("/allocation_candidates", {"resources": resources})
        alone = {uuid for request in answer["allocation_requests"]
                 for uuid in request["allocations"] if len(request["allocations"]) == 1}
        return {uuid: summary["resources"] for uuid, summary in answer["provider_summaries"].items()
                if uuid in alone}

    def inventories(self, uuids):
        """{uuid: its inventories} of UUIDS, READERS requests at a time. The first failure is
        raised, once; the reads not started by then are dropped."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        def read(uuid):
            return uuid, self._get(f"/resource_providers/{uuid}/inventories")["inventories"]

        found = {}
        if not uuids:
            return found
        pool = ThreadPoolExecutor(max_workers=min(READERS, len(uuids)))
        futures = [pool.submit(read, uuid) for uuid in uuids]
        try:
            for future in as_completed(futures):
                uuid, inventories = future.result()
                found[uuid] = inventories
        finally:  # after a failure or Ctrl-C: start no more, wait for none (each has its timeout)
            pool.shutdown(wait=False, cancel_futures=True)
        return found
