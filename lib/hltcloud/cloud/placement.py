"""Placement's resource providers and the room on them, read through keystoneauth1 (the
session's adapter: token, renewal, TLS, timeouts); every failure is a jsonapi.ApiError, as
Nova's are.

The reads do not grow with the farm. The room for a flavor comes as the scheduler asks for
it: GET /allocation_candidates names every provider where one VM of it fits now, with the
capacity and use of each class, in one answer. The capacity of the providers it leaves out
(full for the flavor), for the figures of an empty farm, comes the same way, one request a
resource class: one unit of a class, at microversion 1.27 (every class in each summary),
finds each provider with a unit of room left in that class. Only a provider full in every
class (or a Placement older than 1.27) has its inventories read one provider a request,
READERS at a time on the session's kept-alive connections.
"""
from hltcloud.cloud import placement_answers as answers
from hltcloud.cloud.jsonapi import ApiError, error_message
from hltcloud.cloud.session import POOL_SIZE, describe_error

READERS = POOL_SIZE  # concurrent requests: one kept-alive connection each
ALL_CLASSES = "1.27"  # the microversion whose provider summaries hold every class


def as_inventories(resources):
    """A provider summary's {class: {"capacity", "used"}} as inventories fit.py reads:
    {class: {"total": capacity}} (reserved and the allocation ratio already applied)."""
    return {rc: {"total": r["capacity"]} for rc, r in resources.items()}


def _room_for(resources, needs):
    """Does a provider summary show room for one VM of NEEDS?"""
    return all(rc in resources and resources[rc]["capacity"] - resources[rc]["used"] >= amount
               for rc, amount in needs.items())


class Placement:
    """Placement's reads for one cloud (session.Cloud)."""

    def __init__(self, cloud):
        self._api = cloud.placement()

    def _get(self, path, params=None, microversion=None):
        from keystoneauth1 import exceptions as ks_exc
        try:
            resp = self._api.get(path, params=params, raise_exc=False,
                                 **({"microversion": microversion} if microversion else {}))
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
        return answers.providers(self._get("/resource_providers"), "/resource_providers")

    def room(self, needs):
        """{uuid: {class: {"capacity": c, "used": u}}} of the providers that hold one VM of
        NEEDS ({class: amount}) now, each alone: one request. A candidate that takes a
        class from another provider (shared storage) does not count, as the inventories of
        a host's own provider would not."""
        resources = ",".join(f"{rc}:{amount}" for rc, amount in sorted(needs.items()))
        return self._candidates(resources)

    def _candidates(self, resources, microversion=None):
        path = "/allocation_candidates"
        return answers.candidates(self._get(path, {"resources": resources}, microversion), path)

    def capacities(self, uuids, needs):
        """{uuid: {class: {"total": capacity, ...}}} of UUIDS, providers with no room for a VM
        of NEEDS ({class: amount}): one request a class, in the order of NEEDS, until each
        provider is found; the inventories of the others (fit.py reads both). A provider
        whose summary shows room for the VM was refused for what no summary shows (a
        max_unit below the flavor's amount): its inventories are read too."""
        found, missing, unexplained = {}, set(uuids), set()
        for rc in needs:
            if not missing:
                break
            try:
                room = self._candidates(f"{rc}:1", ALL_CLASSES)
            except ApiError as err:
                if err.code != 406:  # 406: a Placement older than 1.27
                    raise
                break
            for uuid in missing & room.keys():
                if _room_for(room[uuid], needs):
                    unexplained.add(uuid)
                else:
                    found[uuid] = as_inventories(room[uuid])
            missing -= room.keys()
        found.update(self.inventories(sorted(missing | unexplained)))
        return found

    def inventories(self, uuids):
        """{uuid: its inventories} of UUIDS, READERS requests at a time. The first failure is
        raised, once; the reads not started by then are dropped."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        def read(uuid):
            path = f"/resource_providers/{uuid}/inventories"  # a uuid checked where it entered
            return uuid, answers.inventories(self._get(path), path)

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
