# test-case-name: flocker_zfs.test.test_deployer
"""
The deployer: this node's discovered state, the cluster's, and the pure
plan that moves this node towards the desired deployment.

:func:`discover_state` is the only part with side effects (one backend
discovery and one scan of ``/proc`` for processes using the datasets).
:func:`calculate_changes` decides; :mod:`flocker_zfs._statechanges` acts.
The rules are conservative (docs/deployer.rst and :func:`calculate_changes`):
when in doubt a dataset is left as it is, never created a second time,
destroyed or moved; a dataset writable on two nodes is settled by
:mod:`flocker_zfs._conflict`'s rule.
"""

import os
import re

from eliot import start_action
from pyrsistent import PClass, field, pmap_field, pset_field
from twisted.internet.defer import gatherResults, maybeDeferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool

from ._actions import DEPLOYER_DISCOVER
from ._backend import _deferred
from ._conflict import is_conflict_copy, keeper, writable_copies
from ._protocol import ProtocolError
from ._replication import parse_marker
from ._statechanges import (
    CreateDataset, DeleteDataset, DemoteDataset, HandoffDataset, InParallel, PushDataset,
    RecoverHandoff, ResizeDataset, Sequentially)
from .errors import FlockerZFSError
from .model import Dataset, Snapshot
from .names import is_dataset_id


class NodeState(PClass):
    """
    What one node has, as discovered there.

    :ivar str node_uuid: the node.
    :ivar datasets: ``dataset id -> Dataset``: the managed datasets in its
        pool, owned or replicas.
    :ivar in_use: ids of its datasets that some process is using (a file
        open under the mountpoint, or its working directory there).
    :ivar unmanaged: ids of the filesystems ``<pool>/<id>`` in its pool
        that discovery ignored (our properties missing or inconsistent): not
        ours to touch, but a copy of that id exists, so it is never created
        elsewhere.
    """

    node_uuid = field(type=str, mandatory=True,
                      invariant=lambda v: (is_dataset_id(v), "node_uuid must be a UUID"))
    datasets = pmap_field(str, Dataset)
    in_use = pset_field(str)
    unmanaged = pset_field(str)

    def __invariant__(self):
        bad = [k for k, v in self.datasets.items() if k != v.dataset_id]
        stray = sorted(set(self.in_use) - set(self.datasets))
        both = sorted(set(self.unmanaged) & set(self.datasets))
        return (not bad and not stray and not both,
                "dataset keys must equal dataset_id (%r); in_use must name datasets "
                "held (%r); unmanaged must not (%r)" % (bad, stray, both))

    def holds(self, dataset_id):
        """
        :return: whether this node has a filesystem of ``dataset_id``,
            managed or not.
        """
        return dataset_id in self.datasets or dataset_id in self.unmanaged


class ClusterState(PClass):
    """
    The nodes whose state is known now: only those that answered.  A node
    missing here is unknown (unreachable), not empty.

    :ivar nodes: ``node uuid -> NodeState``.
    """

    nodes = pmap_field(str, NodeState)

    def __invariant__(self):
        bad = [k for k, v in self.nodes.items() if k != v.node_uuid]
        return (not bad, "keys must equal node_uuid: %r" % (bad,))


# -- discovery -------------------------------------------------------------------

class InUseScanFailed(FlockerZFSError):
    """
    ``/proc`` could not be read, so whether datasets are in use is unknown.
    """

    fix = "Run the agent as root on Linux with /proc mounted."


def _under(target, path):
    return target == path or target.startswith(path.rstrip("/") + "/")


def _links(proc, pid):
    """
    :return: the paths process ``pid`` uses: its working directory, root,
        open files and mapped files.
    """
    base = os.path.join(proc, pid)
    found = []
    for name in ("cwd", "root"):
        try:
            found.append(os.readlink(os.path.join(base, name)))
        except OSError:
            pass
    directory = os.path.join(base, "fd")
    try:
        fds = os.listdir(directory)
    except OSError:
        fds = []  # gone, or not ours to look at
    for fd in fds:
        try:
            found.append(os.readlink(os.path.join(directory, fd)))
        except OSError:
            pass
    try:
        with open(os.path.join(base, "maps")) as handle:
            for line in handle:
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith("/"):
                    found.append(fields[5].strip())
    except OSError:
        pass
    return found


def processes_using(paths, proc="/proc"):
    """
    One scan of ``/proc`` for every path at once (blocking: run it in a
    thread, see :func:`open_users`).

    :param paths: mountpoints.
    :return: ``{path: sorted pids}`` of the processes with a file open
        (for reading or writing), mapped, or their working or root
        directory under each path; every path is a key.
    :raises InUseScanFailed: ``proc`` cannot be listed.
    """
    result = {path: set() for path in paths}
    if not result:
        return {}
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError as error:
        raise InUseScanFailed("cannot list %s to find processes using datasets: %s"
                              % (proc, error.strerror or error))
    for pid in pids:
        for target in _links(proc, pid):
            for path in result:
                if _under(target, path):
                    result[path].add(int(pid))
    return {path: sorted(pids) for path, pids in result.items()}


def open_users(reactor, paths):
    """
    :func:`processes_using` in the reactor's thread pool where it has one.

    :return: ``Deferred`` firing with its ``{path: pids}``.
    """
    if IReactorThreads.providedBy(reactor):
        return deferToThreadPool(reactor, reactor.getThreadPool(), processes_using, paths)
    return maybeDeferred(processes_using, paths)


def _scan_each(open_files, paths):
    """
    ``{path: pids}`` from a per-path ``open_files(path)``.
    """
    paths = list(paths)
    d = gatherResults([maybeDeferred(open_files, path) for path in paths], consumeErrors=True)
    d.addCallbacks(lambda found: dict(zip(paths, found)),
                   lambda failure: failure.value.subFailure)  # the scan's own error
    return d


def unmanaged_ids(pool):
    """
    :param PoolState pool: a discovered pool.
    :return: the dataset ids of its ignored ``<pool>/<uuid>`` filesystems.
    """
    prefix = pool.pool + "/"
    return sorted(name[len(prefix):] for name in pool.ignored
                  if name.startswith(prefix) and is_dataset_id(name[len(prefix):])
                  and name[len(prefix):] not in pool.datasets)


@_deferred
async def discover_state(backend, open_files=None, reactor=None):
    """
    This node's state: one ``backend.discover()`` (a constant number of
    commands), then which mounted datasets are in use.

    :param backend: the node's started-or-not :class:`ZFSBackend`.
    :param open_files: ``callable(path) -> Deferred`` of the pids using
        anything under ``path``; default: one ``/proc`` scan for all
        mountpoints, in ``reactor``'s thread pool.
    :param reactor: for the default scan's thread pool; default the
        backend's reactor.
    :return: ``Deferred`` firing with a :class:`NodeState` (its
        ``unmanaged`` from the pool's ignored filesystems); failing (never
        an empty state) when discovery or the scan fails.
    """
    with start_action(action_type=DEPLOYER_DISCOVER, node_uuid=backend.node_uuid) as action:
        pool = await backend.discover()
        mounted = {}
        for dataset in pool.datasets.values():
            if dataset.mounted and dataset.mountpoint:
                mounted.setdefault(dataset.mountpoint, []).append(dataset.dataset_id)
        if open_files is None:
            if reactor is None:
                reactor = getattr(backend, "_reactor", None)
            users = await open_users(reactor, sorted(mounted))
        else:
            users = await _scan_each(open_files, sorted(mounted))
        in_use = sorted(dataset_id for path, ids in mounted.items() if users.get(path)
                        for dataset_id in ids)
        unmanaged = unmanaged_ids(pool)
        action.add_success_fields(datasets=len(pool.datasets), in_use=in_use,
                                  unmanaged=unmanaged)
        return NodeState(node_uuid=backend.node_uuid, datasets=pool.datasets, in_use=in_use,
                         unmanaged=unmanaged)


# -- the state as JSON, for peers ------------------------------------------------

class InvalidNodeState(ProtocolError):
    """
    A peer's node state does not have the expected shape; it is not used.
    """


_LIMIT_64 = 2 ** 64
_TEXT_LIMIT = 4096
_SNAPSHOT_NAME = re.compile(r"\A[A-Za-z0-9_.: -]{1,255}\Z")

_DATASET_KEYS = frozenset((
    "owner", "generation", "writable", "maximum_size", "used", "referenced", "mountpoint",
    "mounted", "origin", "handoff", "peer_bases", "resume_token", "snapshots"))
_SNAPSHOT_KEYS = frozenset(("name", "guid", "createtxg", "managed"))
_TOP_KEYS = frozenset(("node_uuid", "datasets", "in_use"))
#: Keys an older peer omits.
_OPTIONAL_KEYS = frozenset(("unmanaged",))
_MAX_UNMANAGED = 100000


def node_state_to_json(state):
    """
    :param NodeState state: a node's state.
    :return: a JSON-able ``dict``; guids are decimal strings (JSON numbers
        lose precision above 2**53).  ``unmanaged`` is always written;
        :func:`node_state_from_json` accepts its absence (older peers).
    """
    datasets = {}
    for dataset_id, d in state.datasets.items():
        datasets[dataset_id] = {
            "owner": d.owner, "generation": d.generation, "writable": d.writable,
            "maximum_size": d.maximum_size, "used": d.used, "referenced": d.referenced,
            "mountpoint": d.mountpoint, "mounted": d.mounted, "origin": d.origin,
            "handoff": d.handoff, "resume_token": d.resume_token,
            "peer_bases": {peer: str(guid) for peer, guid in d.peer_bases.items()},
            "snapshots": [{"name": s.name, "guid": str(s.guid), "createtxg": s.createtxg,
                           "managed": s.managed} for s in d.snapshots],
        }
    return {"node_uuid": state.node_uuid, "datasets": datasets,
            "in_use": sorted(state.in_use), "unmanaged": sorted(state.unmanaged)}


def _bad(path, message, value):
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise InvalidNodeState("invalid node state from peer: %s: %s, got %s"
                           % (path, message, shown))


def _object(path, value, keys, optional=frozenset()):
    if not isinstance(value, dict):
        _bad(path, "expected an object", value)
    if not keys <= set(value) <= keys | optional:
        unknown = sorted(str(k) for k in set(value) - keys - optional)
        missing = sorted(keys - set(value))
        also = " (optional: %s)" % (", ".join(sorted(optional)),) if optional else ""
        _bad(path, "expected exactly the keys %s%s (unknown: %s; missing: %s)"
             % (", ".join(sorted(keys)), also, unknown, missing), sorted(map(str, value)))
    return value


def _uuid(path, value):
    if not is_dataset_id(value):
        _bad(path, "expected a lowercase UUID string", value)
    return value


def _integer(path, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or not \
            minimum <= value < _LIMIT_64:
        _bad(path, "expected an integer from %d to 2**64-1" % (minimum,), value)
    return value


def _boolean(path, value):
    if not isinstance(value, bool):
        _bad(path, "expected true or false", value)
    return value


def _text(path, value, optional=True):
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > _TEXT_LIMIT or \
            any(ord(c) < 32 for c in value):
        _bad(path, "expected a string of printable characters%s"
             % (" or null" if optional else ""), value)
    return value


def _guid(path, value):
    if not (isinstance(value, str) and value.isdigit() and value.isascii()
            and len(value) <= 20 and int(value) < _LIMIT_64):
        _bad(path, "expected a guid as a decimal string", value)
    return int(value)


def _snapshot(path, value):
    _object(path, value, _SNAPSHOT_KEYS)
    name = value["name"]
    if not (isinstance(name, str) and _SNAPSHOT_NAME.match(name)):
        _bad(path + ".name", "expected a ZFS snapshot name", name)
    return Snapshot(name=name, guid=_guid(path + ".guid", value["guid"]),
                    createtxg=_integer(path + ".createtxg", value["createtxg"]),
                    managed=_boolean(path + ".managed", value["managed"]))


def _dataset(path, dataset_id, value):
    _object(path, value, _DATASET_KEYS)
    owner = value["owner"]
    if owner is not None:
        _uuid(path + ".owner", owner)
    maximum_size = value["maximum_size"]
    if maximum_size is not None:
        _integer(path + ".maximum_size", maximum_size, minimum=1)
    bases = value["peer_bases"]
    if not isinstance(bases, dict):
        _bad(path + ".peer_bases", "expected an object", bases)
    snapshots = value["snapshots"]
    if not isinstance(snapshots, list):
        _bad(path + ".snapshots", "expected a list", snapshots)
    return Dataset(
        dataset_id=dataset_id, owner=owner,
        generation=_integer(path + ".generation", value["generation"]),
        writable=_boolean(path + ".writable", value["writable"]),
        maximum_size=maximum_size,
        used=_integer(path + ".used", value["used"]),
        referenced=_integer(path + ".referenced", value["referenced"]),
        mountpoint=_text(path + ".mountpoint", value["mountpoint"]),
        mounted=_boolean(path + ".mounted", value["mounted"]),
        origin=_text(path + ".origin", value["origin"]),
        handoff=_text(path + ".handoff", value["handoff"]),
        resume_token=_text(path + ".resume_token", value["resume_token"]),
        peer_bases={_uuid("%s.peer_bases key" % (path,), peer):
                    _guid("%s.peer_bases.%s" % (path, peer), guid)
                    for peer, guid in bases.items()},
        snapshots=[_snapshot("%s.snapshots[%d]" % (path, i), snap)
                   for i, snap in enumerate(snapshots)])


def node_state_from_json(obj):
    """
    Validate a peer's node state (untrusted input) and build the record.

    :param obj: the parsed JSON (what :func:`node_state_to_json` made).
    :return: a :class:`NodeState`.
    :raises InvalidNodeState: naming the first field that is wrong.
    """
    _object("(top level)", obj, _TOP_KEYS, _OPTIONAL_KEYS)
    node_uuid = _uuid("node_uuid", obj["node_uuid"])
    datasets = obj["datasets"]
    if not isinstance(datasets, dict):
        _bad("datasets", "expected an object", datasets)
    parsed = {}
    for dataset_id, value in datasets.items():
        _uuid("datasets key", dataset_id)
        parsed[dataset_id] = _dataset("datasets.%s" % (dataset_id,), dataset_id, value)
    in_use = obj["in_use"]
    if not isinstance(in_use, list):
        _bad("in_use", "expected a list", in_use)
    for i, dataset_id in enumerate(in_use):
        _uuid("in_use[%d]" % (i,), dataset_id)
        if dataset_id not in parsed:
            _bad("in_use[%d]" % (i,), "expected a dataset listed under datasets", dataset_id)
    unmanaged = obj.get("unmanaged", [])
    if not isinstance(unmanaged, list) or len(unmanaged) > _MAX_UNMANAGED:
        _bad("unmanaged", "expected a list of at most %d ids" % (_MAX_UNMANAGED,), unmanaged)
    for i, dataset_id in enumerate(unmanaged):
        _uuid("unmanaged[%d]" % (i,), dataset_id)
        if dataset_id in parsed:
            _bad("unmanaged[%d]" % (i,), "expected a dataset not listed under datasets",
                 dataset_id)
    return NodeState(node_uuid=node_uuid, datasets=parsed, in_use=in_use, unmanaged=unmanaged)


# -- planning ---------------------------------------------------------------------

def _newest_guid(dataset):
    newest = dataset.newest_snapshot()
    return None if newest is None else newest.guid


def _owns(dataset, node_uuid):
    return dataset.owned_by(node_uuid) and dataset.writable


def _not_a_target(dataset):
    """
    A peer's copy that is never pushed to or handed off to: writable or
    mid-handoff (the peer thinks it owns it), or a conflict copy (it keeps
    writes nobody else has, and shares no snapshot with the writable copy).
    """
    return dataset.writable or dataset.handoff is not None or is_conflict_copy(dataset)


def _recovery(desired, local, me, deployment):
    """
    The change settling an interrupted handoff (``local.handoff`` set), or
    ``None`` when it cannot be settled automatically.

    It aborts (takes the dataset back) only when this node is the desired
    primary and the marker shows no acquire may have been sent; once one may
    have been (``:acquiring``) the replicator refuses to abort, so the
    handoff is finished instead and the new owner hands it back on a later
    iteration.
    """
    marker = parse_marker(local.handoff)
    if marker is None or marker[0] not in deployment.nodes or marker[0] == me:
        return None  # malformed, or a peer the deployment cannot reach: the operator decides
    peer, _, acquire_maybe_sent = marker
    return RecoverHandoff(dataset_id=desired.dataset_id, node_uuid=peer,
                          abort=desired.primary == me and not acquire_maybe_sent)


def _as_primary(desired, local, me, nodes, deployment, in_use, refresh):
    """
    Changes on the desired primary; with ``refresh``, a push to every wanted
    replica that answered, even one already holding our newest snapshot.
    """
    dataset_id = desired.dataset_id
    wanted = sorted(desired.replicas - {me})
    if local is None:
        everyone_known = all(uuid in nodes for uuid in deployment.nodes)
        held = any(state.holds(dataset_id) for state in nodes.values())
        if not everyone_known or held:
            return []
        return [CreateDataset(dataset_id=dataset_id, maximum_size=desired.maximum_size)] + [
            PushDataset(dataset_id=dataset_id, node_uuid=uuid) for uuid in wanted]
    if not _owns(local, me):
        return []  # a replica: its owner hands it to this node
    changes = []
    if local.maximum_size != desired.maximum_size and not in_use:
        changes.append(ResizeDataset(dataset_id=dataset_id, maximum_size=desired.maximum_size))
    ours = _newest_guid(local)
    for uuid in wanted:
        if uuid not in nodes:
            continue  # unknown or unreachable: never pushed to blindly
        remote = nodes[uuid].datasets.get(dataset_id)
        if remote is None:
            changes.append(PushDataset(dataset_id=dataset_id, node_uuid=uuid))
        elif _not_a_target(remote):
            continue
        elif refresh or _newest_guid(remote) != ours:
            changes.append(PushDataset(dataset_id=dataset_id, node_uuid=uuid))
    return changes


def _plan_dataset(desired, local_state, nodes, deployment, refresh):
    me = local_state.node_uuid
    dataset_id = desired.dataset_id
    local = local_state.datasets.get(dataset_id)
    in_use = dataset_id in local_state.in_use
    writable = writable_copies(dataset_id, nodes)
    if len(writable) > 1:
        # Split brain: only demotions until one writable copy is left.
        keep = keeper(desired.primary, writable)
        if me in writable and me != keep:
            return [DemoteDataset(dataset_id=dataset_id, node_uuid=keep)]
        return []
    if local is not None and local.handoff is not None:
        recovery = _recovery(desired, local, me, deployment)
        return [] if recovery is None else [recovery]
    if desired.deleted:
        if local is None or in_use or is_conflict_copy(local):
            return []
        return [DeleteDataset(dataset_id=dataset_id)]
    if desired.primary == me:
        return _as_primary(desired, local, me, nodes, deployment, in_use,
                           dataset_id in refresh)
    if local is None or not _owns(local, me) or in_use:
        return []
    primary = nodes.get(desired.primary)
    if primary is None:
        return []  # unreachable: keep it here
    theirs = primary.datasets.get(dataset_id)
    if theirs is not None and _not_a_target(theirs):
        return []  # the primary claims a copy, or holds a conflict copy: for the operator
    return [HandoffDataset(dataset_id=dataset_id, node_uuid=desired.primary)]


def calculate_changes(desired, cluster_state, local_state, refresh=frozenset()):
    """
    Plan this node's part of converging on ``desired``.  Pure: it only reads
    its arguments.  ``local_state`` is this node's own state (it replaces
    this node's entry in ``cluster_state``, if any); nodes missing from
    ``cluster_state`` are unknown (unreachable), not empty.  ``refresh``
    names the datasets whose replicas are due for new data (the agent
    decides when, from its clock); nothing else depends on time.

    Rules, per dataset of the deployment (others are never touched):

    - More than one node (this one included) has a writable copy: a split
      brain (:mod:`flocker_zfs._conflict`).  If this node's copy is writable
      and not the keeper (the desired primary's copy, else the highest
      generation, then the greatest node uuid), ``DemoteDataset`` (made
      read-only, nothing lost), even in use; nothing else is planned for the
      dataset on any node until one writable copy is left.
    - A copy here with a handoff marker (an interrupted handoff) gets only
      ``RecoverHandoff`` to the marker's peer, with ``abort`` when this node
      is the desired primary and no acquire may have been sent (no
      ``:acquiring`` in the marker; otherwise the handoff is finished and
      handed back later); a malformed marker, or a peer the deployment does
      not list, is left to the operator.
    - ``deleted``: ``DeleteDataset`` of this node's copy, if it has one, it
      is not in use and it is not a conflict copy (every node deletes its
      own copy; a conflict copy waits for the operator).
    - This node is the primary and owns the writable copy: ``ResizeDataset``
      when the maximum size differs (not while in use), then ``PushDataset``
      to each wanted replica node that is known and whose copy is missing or
      whose newest snapshot is not ours, or to every known wanted replica
      node when the dataset is in ``refresh`` (a push takes a new snapshot,
      so writes since the last one reach the replicas); a node whose copy is
      writable, mid-handoff or a conflict copy is left alone.
    - This node is the primary and holds nothing: ``CreateDataset`` (then
      pushes to the replicas) only if every node of the deployment is known
      and none of the known nodes (this one included) holds a copy, managed
      or not (``NodeState.unmanaged``: a filesystem of that id without our
      properties, which discovery ignores).
    - This node is the primary and holds a replica: nothing (the owner
      hands it over).
    - Another node is the primary and this node owns the writable copy:
      ``HandoffDataset`` to it, if it is known, the dataset is not in use here
      and the primary's copy, if any, is none of writable, mid-handoff or a
      conflict copy.

    :param Deployment desired: the desired deployment.
    :param ClusterState cluster_state: the nodes that answered.
    :param NodeState local_state: this node.
    :param refresh: ids of the datasets whose replicas are due; a converged
        cluster with nothing due gets an empty plan.
    :return: an :class:`InParallel` with at most one element per dataset
        (a change, or a :class:`Sequentially` of that dataset's changes), in
        dataset id order; empty when this node has nothing to do.
    """
    nodes = cluster_state.nodes.set(local_state.node_uuid, local_state)
    elements = []
    for dataset_id in sorted(desired.datasets):
        changes = _plan_dataset(desired.datasets[dataset_id], local_state, nodes, desired,
                                refresh)
        if len(changes) == 1:
            elements.append(changes[0])
        elif changes:
            elements.append(Sequentially(changes=changes, dataset_id=dataset_id))
    return InParallel(changes=elements)
