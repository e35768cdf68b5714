"""
Tests for :mod:`flocker_zfs._deployer`: discovering this node's state, the
node state as JSON for peers, and the pure plan :func:`calculate_changes`
(one example per rule).  The hypothesis properties are in
``test_deployer_properties``, which uses the builders below.
"""

import json
import os
import subprocess
import uuid

from eliot.testing import assertHasAction, capture_logging
from twisted.internet.defer import fail, succeed
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from .._actions import DEPLOYER_DISCOVER
from .._deployer import (
    ClusterState, InUseScanFailed, InvalidNodeState, NodeState, calculate_changes,
    discover_state, node_state_from_json, node_state_to_json, open_users, processes_using)
from .._deployment import DesiredDataset, Deployment, NodeAddress
from .._statechanges import (
    CreateDataset, DeleteDataset, DemoteDataset, HandoffDataset, InParallel, PushDataset,
    RecoverHandoff, ResizeDataset, Sequentially)
from ..errors import PoolNotFound
from ..model import Dataset, Snapshot
from ..testing import make_fake_backend

MiB = 1024 * 1024

#: Nodes of the deployment, and one that answers but is not in it.
N0, N1, N2, OUTSIDER = ["%08x-0000-4000-8000-%012x" % (i, i) for i in range(1, 5)]
NODES = (N0, N1, N2)
#: Datasets of the deployment, and one that is not in it.
D0, D1, D2, UNLISTED = ["%08x-1111-4111-8111-%012x" % (i, i) for i in range(1, 5)]


def desired(*datasets, nodes=NODES):
    return Deployment(
        nodes={n: NodeAddress(uuid=n, address="10.0.0.%d" % (i + 1,))
               for i, n in enumerate(nodes)},
        datasets={d.dataset_id: d for d in datasets})


def want(dataset_id, primary, replicas=(), deleted=False, maximum_size=None):
    return DesiredDataset(dataset_id=dataset_id, primary=primary, replicas=replicas,
                          deleted=deleted, maximum_size=maximum_size)


def copy(dataset_id, owner, writable=False, guids=(7,), maximum_size=None, handoff=None):
    return Dataset(dataset_id=dataset_id, owner=owner, writable=writable,
                   maximum_size=maximum_size, handoff=handoff,
                   snapshots=[Snapshot(name="s%d" % (g,), guid=g, createtxg=g)
                              for g in guids])


def conflicted(dataset_id, owner, guids=(7,), generation=1):
    """
    :return: a conflict copy: read-only, its newest snapshot the conflict
        snapshot that :class:`DemoteDataset` takes.
    """
    demoted = copy(dataset_id, owner, guids=guids)
    return demoted.set(generation=generation, snapshots=demoted.snapshots.append(Snapshot(
        name="flocker-conflict-20250102T030405Z-%s-0a1b2c" % (N1[:8],), guid=1000,
        createtxg=1000, managed=True)))


def node(node_uuid, *datasets, in_use=(), unmanaged=()):
    return NodeState(node_uuid=node_uuid, datasets={d.dataset_id: d for d in datasets},
                     in_use=in_use, unmanaged=unmanaged)


def cluster(*states):
    return ClusterState(nodes={s.node_uuid: s for s in states})


def plan_for(deployment, states, me, refresh=frozenset()):
    """
    :return: the plan of node ``me`` when ``states`` are the nodes that
        answered (``me`` among them).
    """
    local = [s for s in states if s.node_uuid == me][0]
    return calculate_changes(deployment, cluster(*states), local, refresh=refresh)


def flatten(change):
    """
    :return: the leaf changes of ``change``, in order.
    """
    if isinstance(change, (Sequentially, InParallel)):
        return [leaf for child in change.changes for leaf in flatten(child)]
    return [change]


class SyncPool(object):
    """
    A thread pool stand-in that runs each call at once, counting them.
    """

    calls = 0

    def callInThreadWithCallback(self, on_result, function, *args, **kwargs):
        self.calls += 1
        try:
            result = function(*args, **kwargs)
        except Exception:
            on_result(False, Failure())
        else:
            on_result(True, result)


@implementer(IReactorThreads)
class ThreadedReactor(MemoryReactorClock):
    """
    A memory reactor with a (synchronous) thread pool.
    """

    def __init__(self):
        MemoryReactorClock.__init__(self)
        self.pool = SyncPool()

    def getThreadPool(self):
        return self.pool

    def callFromThread(self, function, *args, **kwargs):
        function(*args, **kwargs)

    def callInThread(self, function, *args, **kwargs):
        function(*args, **kwargs)

    def suggestThreadPoolSize(self, size):
        pass


# -- discovery ---------------------------------------------------------------------

class DiscoverStateTests(SynchronousTestCase):
    """
    Tests for :func:`discover_state` on a fake backend.
    """

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        self.backend, self.fake = make_fake_backend(self.root)
        self.addCleanup(self.fake.unmount_all)
        self.first, self.second = str(uuid.uuid4()), str(uuid.uuid4())
        self.successResultOf(self.backend.create(self.first, maximum_size=8 * MiB))
        self.successResultOf(self.backend.create(self.second))

    def test_datasets(self):
        """
        The state holds what the backend discovers, under this node's uuid;
        nothing is in use when no process uses the mountpoints.
        """
        state = self.successResultOf(discover_state(
            self.backend, open_files=lambda path: succeed([])))
        pool = self.successResultOf(self.backend.discover())
        self.assertEqual(state, NodeState(node_uuid=self.backend.node_uuid,
                                          datasets=pool.datasets, in_use=[]))

    def test_unmanaged(self):
        """
        A ``<pool>/<uuid>`` filesystem without our properties is not among
        the datasets but its id is in ``unmanaged``; other foreign
        filesystems are not.
        """
        foreign = str(uuid.uuid4())
        self.successResultOf(self.fake.run(["zfs", "create", "flocker/" + foreign]))
        self.successResultOf(self.fake.run(["zfs", "create", "flocker/not-a-uuid"]))
        state = self.successResultOf(discover_state(
            self.backend, open_files=lambda path: succeed([])))
        self.assertEqual((sorted(state.datasets), state.unmanaged),
                         (sorted([self.first, self.second]), {foreign}))

    def test_one_discovery(self):
        """
        Discovering the state runs exactly the commands of one
        ``backend.discover()``, whatever the number of datasets.
        """
        self.successResultOf(self.backend.discover())
        before = len(self.fake.commands)
        self.successResultOf(self.backend.discover())
        one = self.fake.commands[before:]
        before = len(self.fake.commands)
        self.successResultOf(discover_state(self.backend, open_files=lambda p: succeed([])))
        self.assertEqual(self.fake.commands[before:], one)

    def test_in_use(self):
        """
        A dataset whose mountpoint a process uses is in use; only mounted
        datasets' mountpoints are scanned.
        """
        self.successResultOf(self.fake.run(["zfs", "unmount", "flocker/" + self.second]))
        asked = []

        def open_files(path):
            asked.append(path)
            return succeed([4242] if path == self.backend.path(self.first).path else [])
        state = self.successResultOf(discover_state(self.backend, open_files=open_files))
        self.assertEqual((state.in_use, asked),
                         ({self.first}, [self.backend.path(self.first).path]))

    def test_default_scan(self):
        """
        By default ``/proc`` is scanned: a file open for reading in a dataset
        makes it in use.
        """
        path = self.backend.path(self.second).child("f")
        path.setContent(b"x")
        with open(path.path, "rb"):
            state = self.successResultOf(discover_state(self.backend))
        self.assertEqual(state.in_use, {self.second})
        self.assertEqual(self.successResultOf(discover_state(self.backend)).in_use, set())

    def test_scan_fails(self):
        """
        A failed in-use scan fails the discovery: in use is never guessed.
        """
        d = discover_state(self.backend, open_files=lambda path: fail(
            InUseScanFailed("no /proc")))
        self.failureResultOf(d, InUseScanFailed)

    def test_discovery_fails(self):
        """
        A failed discovery fails; it never reports an empty node.
        """
        class Broken(object):
            node_uuid = N0

            def discover(self):
                return fail(PoolNotFound(subject="flocker"))
        self.failureResultOf(discover_state(Broken(), open_files=lambda p: succeed([])),
                             PoolNotFound)

    @capture_logging(None)
    def test_logged(self, logger):
        """
        Discovery is a ``DEPLOYER_DISCOVER`` action naming the node and, on
        success, the datasets counted and those in use.
        """
        self.successResultOf(discover_state(
            self.backend, open_files=lambda path: succeed([1]) if self.first in path
            else succeed([])))
        assertHasAction(self, logger, DEPLOYER_DISCOVER, True,
                        startFields={"node_uuid": self.backend.node_uuid},
                        endFields={"datasets": 2, "in_use": [self.first]})


class ProcessesUsingTests(SynchronousTestCase):
    """
    Tests for :func:`processes_using` on a made-up ``/proc`` tree and on the
    real one.
    """

    def setUp(self):
        self.proc = os.path.abspath(self.mktemp())
        os.makedirs(self.proc)

    def process(self, pid, cwd="/", root="/", fds=(), maps=()):
        base = os.path.join(self.proc, str(pid))
        os.makedirs(os.path.join(base, "fd"))
        os.symlink(cwd, os.path.join(base, "cwd"))
        os.symlink(root, os.path.join(base, "root"))
        for i, target in enumerate(fds):
            os.symlink(target, os.path.join(base, "fd", str(i)))
        with open(os.path.join(base, "maps"), "w") as handle:
            for target in maps:
                handle.write("7f00-7f01 r--s 00000000 00:2a 12 %s\n" % (target,))

    def test_each_kind_of_use(self):
        """
        An open file, a mapped file, a working directory and a root directory
        under a path each count; uses elsewhere (even with a common prefix)
        do not.
        """
        self.process(10, fds=["/flocker/a/file", "/dev/null"])
        self.process(11, maps=["/flocker/a/lib.so"])
        self.process(12, cwd="/flocker/a/sub")
        self.process(13, root="/flocker/a")
        self.process(14, cwd="/flocker/ab", fds=["/flocker/abc/f"], maps=["/lib/x.so"])
        self.process(15, fds=["/flocker/b"])
        os.makedirs(os.path.join(self.proc, "self"))
        self.assertEqual(processes_using(["/flocker/a", "/flocker/b", "/flocker/c"],
                                         proc=self.proc),
                         {"/flocker/a": [10, 11, 12, 13], "/flocker/b": [15],
                          "/flocker/c": []})

    def test_vanished_process(self):
        """
        A process without readable entries (gone meanwhile) is skipped.
        """
        os.makedirs(os.path.join(self.proc, "20"))
        self.process(21, fds=["/flocker/a/f"])
        self.assertEqual(processes_using(["/flocker/a"], proc=self.proc),
                         {"/flocker/a": [21]})

    def test_no_proc(self):
        """
        When ``/proc`` cannot be listed the scan fails rather than say
        "not in use".
        """
        with self.assertRaises(InUseScanFailed):
            processes_using(["/flocker/a"], proc=os.path.join(self.proc, "missing"))

    def test_no_paths(self):
        """
        With nothing to look for nothing is read.
        """
        self.assertEqual(processes_using([], proc=os.path.join(self.proc, "missing")), {})

    def test_real_working_directory(self):
        """
        On the real ``/proc``, a child process whose working directory is
        under the path is found.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        child = subprocess.Popen(["sleep", "30"], cwd=directory)
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        self.assertIn(child.pid, processes_using([directory])[directory])

    def test_real_reader(self):
        """
        On the real ``/proc``, this process reading a file under the path is
        found.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(directory, "f"), "w"):
            pass
        with open(os.path.join(directory, "f"), "rb"):
            self.assertIn(os.getpid(), processes_using([directory])[directory])
        self.assertNotIn(os.getpid(), processes_using([directory])[directory])

    def test_thread_pool(self):
        """
        ``open_users`` runs the scan in the reactor's thread pool when it has
        one.
        """
        reactor = ThreadedReactor()
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(directory, "f"), "w"):
            found = self.successResultOf(open_users(reactor, [directory]))
        self.assertIn(os.getpid(), found[directory])
        self.assertEqual(reactor.pool.calls, 1)

    def test_default_without_threads(self):
        """
        ``discover_state`` scans at once on a reactor without a thread pool
        (the memory reactor), giving a result without iterating it.
        """
        backend, fake = make_fake_backend(os.path.abspath(self.mktemp()),
                                          reactor=MemoryReactorClock())
        self.addCleanup(fake.unmount_all)
        self.assertEqual(self.successResultOf(discover_state(backend)).datasets, {})


# -- JSON -------------------------------------------------------------------------

def sample_state():
    return NodeState(node_uuid=N0, datasets={
        D0: Dataset(dataset_id=D0, owner=N0, generation=3, writable=True,
                    maximum_size=8 * MiB, used=123, referenced=100,
                    mountpoint="/flocker/" + D0, mounted=True, origin=None,
                    handoff="%s:4:acquiring" % (N1,), peer_bases={N1: 2 ** 64 - 1},
                    resume_token=None,
                    snapshots=[Snapshot(name="flocker-x", guid=2 ** 64 - 1, createtxg=9,
                                        managed=True),
                               Snapshot(name="user snap", guid=5, createtxg=10)]),
        D1: Dataset(dataset_id=D1)}, in_use=[D0], unmanaged=[D2])


class NodeStateJSONTests(SynchronousTestCase):
    """
    Tests for :func:`node_state_to_json` and :func:`node_state_from_json`.
    """

    def test_round_trip(self):
        """
        A state survives JSON exactly, with guids as decimal strings.
        """
        state = sample_state()
        obj = node_state_to_json(state)
        self.assertEqual(obj["datasets"][D0]["snapshots"][0]["guid"], str(2 ** 64 - 1))
        self.assertEqual(obj["datasets"][D0]["peer_bases"], {N1: str(2 ** 64 - 1)})
        self.assertEqual(node_state_from_json(json.loads(json.dumps(obj))), state)
        self.assertEqual(obj["unmanaged"], [D2])

    def test_older_peer(self):
        """
        A state without ``unmanaged`` (an older peer) reads as none unmanaged.
        """
        obj = node_state_to_json(sample_state())
        del obj["unmanaged"]
        self.assertEqual(node_state_from_json(obj), sample_state().set(unmanaged=[]))

    def mangle(self, change):
        obj = json.loads(json.dumps(node_state_to_json(sample_state())))
        change(obj)
        with self.assertRaises(InvalidNodeState) as caught:
            node_state_from_json(obj)
        return str(caught.exception)

    def test_rejects(self):
        """
        Each kind of malformed field is refused, naming the field.
        """
        def setter(*path_and_value):
            *path, key, value = path_and_value

            def change(obj):
                for part in path:
                    obj = obj[part]
                obj[key] = value
            return change
        snap = ("datasets", D0, "snapshots", 0)
        cases = [
            (setter("node_uuid", "NODE"), "node_uuid: expected a lowercase UUID"),
            (setter("datasets", "not-a-uuid", {}), "datasets key"),
            (setter("in_use", [D2]), "in_use[0]: expected a dataset listed"),
            (setter("in_use", "x"), "in_use: expected a list"),
            (setter("unmanaged", "x"), "unmanaged: expected a list"),
            (setter("unmanaged", {D2: 1}), "unmanaged: expected a list"),
            (setter("unmanaged", [D2] * 100001), "unmanaged: expected a list of at most"),
            (setter("unmanaged", [D2, "D3"]), "unmanaged[1]: expected a lowercase UUID"),
            (setter("unmanaged", [None]), "unmanaged[0]: expected a lowercase UUID"),
            (setter("unmanaged", [D1]), "unmanaged[0]: expected a dataset not listed"),
            (setter("datasets", []), "datasets: expected an object"),
            (setter("extra", 1), "unknown: ['extra']"),
            (setter("datasets", D0, "generation", True), "generation: expected an integer"),
            (setter("datasets", D0, "generation", -1), "generation: expected an integer"),
            (setter("datasets", D0, "used", 2 ** 64), "used: expected an integer"),
            (setter("datasets", D0, "used", 1.5), "used: expected an integer"),
            (setter("datasets", D0, "maximum_size", 0), "maximum_size: expected an integer"),
            (setter("datasets", D0, "writable", 1), "writable: expected true or false"),
            (setter("datasets", D0, "owner", "me"), "owner: expected a lowercase UUID"),
            (setter("datasets", D0, "mountpoint", "/a\nb"), "mountpoint: expected a string"),
            (setter("datasets", D0, "handoff", 5), "handoff: expected a string"),
            (setter("datasets", D0, "peer_bases", {"x": "1"}), "peer_bases key"),
            (setter("datasets", D0, "peer_bases", {N1: 1}), "expected a guid"),
            (setter("datasets", D0, "peer_bases", []), "peer_bases: expected an object"),
            (setter("datasets", D0, "snapshots", {}), "snapshots: expected a list"),
            (setter(*snap, "guid", 5), "snapshots[0].guid: expected a guid"),
            (setter(*snap, "guid", str(2 ** 64)), "snapshots[0].guid: expected a guid"),
            (setter(*snap, "guid", "-1"), "snapshots[0].guid: expected a guid"),
            (setter(*snap, "name", "-o x;rm"), "snapshots[0].name: expected a ZFS"),
            (setter(*snap, "managed", "yes"), "snapshots[0].managed: expected true"),
            (setter(*snap, "createtxg", None), "snapshots[0].createtxg: expected an"),
        ]
        for change, expected in cases:
            self.assertIn(expected, self.mangle(change), expected)

    def test_missing_key(self):
        """
        A missing key is named.
        """
        message = self.mangle(lambda obj: obj["datasets"][D0].pop("owner"))
        self.assertIn("missing: ['owner']", message)

    def test_not_an_object(self):
        """
        Anything but an object at the top is refused.
        """
        for value in (None, [], "x", 3):
            with self.assertRaises(InvalidNodeState):
                node_state_from_json(value)


# -- planning: one example per rule ------------------------------------------------

class CalculateChangesTests(SynchronousTestCase):
    """
    One example per rule of :func:`calculate_changes`, seen from the node
    whose plan is computed.
    """

    def test_converged_empty(self):
        """
        Owner on the primary, replicas up to date: nothing to do anywhere.
        """
        deployment = desired(want(D0, N0, replicas=[N1]))
        states = [node(N0, copy(D0, N0, writable=True)), node(N1, copy(D0, N0)), node(N2)]
        for me in NODES:
            self.assertEqual(plan_for(deployment, states, me), InParallel(changes=[]))

    def test_unlisted_untouched(self):
        """
        A dataset that is not in the deployment is never touched, whatever
        its state (even an interrupted handoff, or owned here elsewhere).
        """
        states = [node(N0, copy(UNLISTED, N0, writable=True),
                       copy(D1, N0, handoff="%s:2" % (N1,)), in_use=[UNLISTED]),
                  node(N1), node(N2)]
        self.assertEqual(plan_for(desired(), states, N0).changes, [])

    def test_create(self):
        """
        With every node known and no copy anywhere, the primary creates the
        dataset and pushes it to the replicas; the other nodes do nothing.
        """
        deployment = desired(want(D0, N0, replicas=[N1, N2, N0], maximum_size=8 * MiB))
        states = [node(N0), node(N1), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes, [Sequentially(
            dataset_id=D0, changes=[CreateDataset(dataset_id=D0, maximum_size=8 * MiB),
                                    PushDataset(dataset_id=D0, node_uuid=N1),
                                    PushDataset(dataset_id=D0, node_uuid=N2)])])
        for me in (N1, N2):
            self.assertEqual(plan_for(deployment, states, me).changes, [])

    def test_create_needs_everyone(self):
        """
        No create while a node of the deployment is unknown: it may hold the
        dataset.
        """
        deployment = desired(want(D0, N0))
        self.assertEqual(plan_for(deployment, [node(N0), node(N1)], N0).changes, [])

    def test_no_create_when_held_elsewhere(self):
        """
        No create when any known node holds a copy, owned or replica, even a
        node outside the deployment.
        """
        deployment = desired(want(D0, N0))
        for holder in (node(N1, copy(D0, N1, writable=True)), node(N1, copy(D0, N2))):
            states = [node(N0), holder, node(N2)]
            self.assertEqual(plan_for(deployment, states, N0).changes, [])
        states = [node(N0), node(N1), node(N2), node(OUTSIDER, copy(D0, OUTSIDER))]
        self.assertEqual(plan_for(deployment, states, N0).changes, [])

    def test_no_create_when_unmanaged(self):
        """
        No create when a known node, this one included, has a filesystem of
        that id that discovery ignored (no or inconsistent properties); the
        other datasets are planned as usual.
        """
        deployment = desired(want(D0, N0), want(D1, N0))
        create = CreateDataset(dataset_id=D1, maximum_size=None)
        for holder in (N0, N1, OUTSIDER):
            states = [node(n, unmanaged=[D0] if n == holder else [])
                      for n in NODES + (OUTSIDER,)]
            self.assertEqual(plan_for(deployment, states, N0).changes, [create], holder)

    def test_replica_on_primary(self):
        """
        A primary holding only a replica waits for the owner to hand it over.
        """
        deployment = desired(want(D0, N0))
        states = [node(N0, copy(D0, N1)), node(N1), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes, [])

    def test_push_missing_and_stale(self):
        """
        The owner pushes to a wanted replica node that lacks a copy or whose
        newest snapshot differs; not to an up-to-date one, nor to a node
        that holds a copy but is not wanted.
        """
        deployment = desired(want(D0, N0, replicas=[N1, N2]), nodes=NODES + (OUTSIDER,))
        states = [node(N0, copy(D0, N0, writable=True, guids=(5, 7))),
                  node(N1, copy(D0, N0, guids=(5,))), node(N2),
                  node(OUTSIDER, copy(D0, N0, guids=(1,)))]
        self.assertEqual(plan_for(deployment, states, N0).changes, [Sequentially(
            dataset_id=D0, changes=[PushDataset(dataset_id=D0, node_uuid=N1),
                                    PushDataset(dataset_id=D0, node_uuid=N2)])])
        states[1] = node(N1, copy(D0, N0, guids=(5, 7)))
        self.assertEqual(plan_for(deployment, states, N0).changes,
                         [PushDataset(dataset_id=D0, node_uuid=N2)])

    def test_refresh(self):
        """
        A dataset in ``refresh`` is pushed by its owner to every wanted
        replica node that answered, up to date or not; not to an unknown
        one, a conflicting one or one that is not wanted.  Other datasets,
        and the same one on other nodes, are not refreshed.
        """
        deployment = desired(want(D0, N0, replicas=[N1, N2]), want(D1, N0, replicas=[N1]),
                             nodes=NODES + (OUTSIDER,))
        states = [node(N0, copy(D0, N0, writable=True), copy(D1, N0, writable=True)),
                  node(N1, copy(D0, N0), copy(D1, N0)),
                  node(OUTSIDER, copy(D0, N0, guids=(1,)))]
        self.assertEqual(plan_for(deployment, states, N0).changes, [])
        self.assertEqual(plan_for(deployment, states, N0, refresh={D0}).changes,
                         [PushDataset(dataset_id=D0, node_uuid=N1)])
        self.assertEqual(plan_for(deployment, states, N1, refresh={D0, D1}).changes, [])
        states[1] = node(N1, copy(D0, N1, writable=True), copy(D1, N0))
        self.assertEqual(plan_for(deployment, states, N0, refresh={D0}).changes, [])

    def test_no_push_to_unknown(self):
        """
        A wanted replica node that did not answer is not pushed to.
        """
        deployment = desired(want(D0, N0, replicas=[N1, N2]))
        states = [node(N0, copy(D0, N0, writable=True)), node(N2, copy(D0, N0))]
        self.assertEqual(plan_for(deployment, states, N0).changes, [])

    def test_no_push_over_writable(self):
        """
        A wanted replica node that holds a writable copy (or one mid-handoff)
        is left alone: a conflict for the operator.
        """
        deployment = desired(want(D0, N0, replicas=[N1, N2]))
        states = [node(N0, copy(D0, N0, writable=True, guids=(9,))),
                  node(N1, copy(D0, N1, writable=True)),
                  node(N2, copy(D0, N2, handoff="%s:2" % (N0,)))]
        self.assertEqual(plan_for(deployment, states, N0).changes, [])

    def test_resize(self):
        """
        The owner resizes when the size differs, before pushing.
        """
        deployment = desired(want(D0, N0, replicas=[N1], maximum_size=16 * MiB))
        states = [node(N0, copy(D0, N0, writable=True, maximum_size=8 * MiB)), node(N1),
                  node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes, [Sequentially(
            dataset_id=D0, changes=[ResizeDataset(dataset_id=D0, maximum_size=16 * MiB),
                                    PushDataset(dataset_id=D0, node_uuid=N1)])])
        deployment = desired(want(D0, N0))
        self.assertEqual(plan_for(deployment, states, N0).changes,
                         [ResizeDataset(dataset_id=D0, maximum_size=None)])

    def test_in_use_not_resized(self):
        """
        A dataset in use is not resized; pushes still happen.
        """
        deployment = desired(want(D0, N0, replicas=[N1], maximum_size=16 * MiB))
        states = [node(N0, copy(D0, N0, writable=True), in_use=[D0]), node(N1), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes,
                         [PushDataset(dataset_id=D0, node_uuid=N1)])

    def test_handoff(self):
        """
        The owner hands the dataset to a new primary that answered.
        """
        deployment = desired(want(D0, N1, replicas=[N1]))
        states = [node(N0, copy(D0, N0, writable=True)), node(N1, copy(D0, N0)), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes,
                         [HandoffDataset(dataset_id=D0, node_uuid=N1)])
        for me in (N1, N2):
            self.assertEqual(plan_for(deployment, states, me).changes, [])

    def test_no_handoff_to_unknown(self):
        """
        No handoff to a primary that did not answer.
        """
        deployment = desired(want(D0, N1))
        states = [node(N0, copy(D0, N0, writable=True)), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes, [])

    def test_no_handoff_in_use(self):
        """
        A dataset in use here is not moved.
        """
        deployment = desired(want(D0, N1))
        states = [node(N0, copy(D0, N0, writable=True), in_use=[D0]), node(N1), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes, [])

    def test_no_handoff_to_claimed_primary(self):
        """
        No handoff to a primary whose copy is mid-handoff or a conflict copy
        (its writable copy is a conflict: see :class:`ConflictPlanTests`).
        """
        deployment = desired(want(D0, N1))
        for theirs in (copy(D0, N1, handoff="%s:2" % (N2,)), conflicted(D0, N1)):
            states = [node(N0, copy(D0, N0, writable=True)), node(N1, theirs), node(N2)]
            self.assertEqual(plan_for(deployment, states, N0).changes, [], theirs)

    def test_replica_not_primary(self):
        """
        A replica on a node that is not the primary is kept as it is.
        """
        deployment = desired(want(D0, N1))
        states = [node(N0, copy(D0, N1)), node(N1, copy(D0, N1, writable=True)), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes, [])

    def test_delete(self):
        """
        A deleted dataset is deleted by each node holding a copy, owned or
        replica, whether or not the other nodes answered.
        """
        deployment = desired(want(D0, N0, replicas=[N1], deleted=True))
        states = [node(N0, copy(D0, N0, writable=True)), node(N1, copy(D0, N0)), node(N2)]
        for me in (N0, N1):
            self.assertEqual(plan_for(deployment, states, me).changes,
                             [DeleteDataset(dataset_id=D0)])
            self.assertEqual(plan_for(deployment, [states[NODES.index(me)]], me).changes,
                             [DeleteDataset(dataset_id=D0)])
        self.assertEqual(plan_for(deployment, states, N2).changes, [])

    def test_delete_in_use(self):
        """
        A deleted dataset in use here is kept (until it is no longer in use).
        """
        deployment = desired(want(D0, N0, deleted=True))
        states = [node(N0, copy(D0, N0, writable=True), in_use=[D0]), node(N1), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes, [])

    def test_recover_finish(self):
        """
        An interrupted handoff towards the desired primary is recovered
        without abort, and nothing else is done for that dataset.
        """
        deployment = desired(want(D0, N1, maximum_size=16 * MiB))
        states = [node(N0, copy(D0, N0, handoff="%s:2:acquiring" % (N1,)), in_use=[D0]),
                  node(N1), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes,
                         [RecoverHandoff(dataset_id=D0, node_uuid=N1, abort=False)])

    def test_recover_abort(self):
        """
        An interrupted handoff away from this node, which is the desired
        primary, is recovered with abort when the marker shows no acquire
        was sent; even when the peer did not answer (an abort before any
        acquire needs no peer).
        """
        deployment = desired(want(D0, N0, deleted=False))
        states = [node(N0, copy(D0, N0, handoff="%s:2" % (N2,)))]
        self.assertEqual(plan_for(deployment, states, N0).changes,
                         [RecoverHandoff(dataset_id=D0, node_uuid=N2, abort=True)])

    def test_recover_acquiring_not_aborted(self):
        """
        When an acquire may have been sent (``:acquiring``), the handoff is
        finished even though this node is the desired primary again (the
        replicator would refuse the abort every time); the new owner hands
        it back later.
        """
        deployment = desired(want(D0, N0))
        states = [node(N0, copy(D0, N0, handoff="%s:2:acquiring" % (N2,))), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes,
                         [RecoverHandoff(dataset_id=D0, node_uuid=N2, abort=False)])

    def test_recover_each_marker(self):
        """
        ``abort`` is asked for exactly when this node is the desired primary
        and the marker has no ``:acquiring``, whoever else is the primary.
        """
        for primary, marker, abort in [(N0, "%s:2" % (N1,), True),
                                       (N0, "%s:2:acquiring" % (N1,), False),
                                       (N1, "%s:2" % (N1,), False),
                                       (N1, "%s:2:acquiring" % (N1,), False),
                                       (N2, "%s:2" % (N1,), False),
                                       (N2, "%s:2:acquiring" % (N1,), False)]:
            deployment = desired(want(D0, primary))
            states = [node(N0, copy(D0, N0, handoff=marker)), node(N1), node(N2)]
            self.assertEqual(plan_for(deployment, states, N0).changes,
                             [RecoverHandoff(dataset_id=D0, node_uuid=N1, abort=abort)],
                             (primary, marker))

    def test_recover_before_delete(self):
        """
        A deleted dataset with an interrupted handoff is recovered first.
        """
        deployment = desired(want(D0, N1, deleted=True))
        states = [node(N0, copy(D0, N0, handoff="%s:2" % (N1,))), node(N1), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0).changes,
                         [RecoverHandoff(dataset_id=D0, node_uuid=N1, abort=False)])

    def test_unrecoverable_marker(self):
        """
        A malformed marker, or one naming a node the deployment does not
        list, is left to the operator.
        """
        deployment = desired(want(D0, N0))
        for marker in ("garbage", "%s:2" % (OUTSIDER,)):
            states = [node(N0, copy(D0, N0, writable=True, handoff=marker)), node(N1),
                      node(N2)]
            self.assertEqual(plan_for(deployment, states, N0).changes, [], marker)

    def test_several_datasets(self):
        """
        Each dataset is one element of the plan, in dataset id order.
        """
        deployment = desired(want(D1, N0), want(D0, N0, deleted=True), want(D2, N1))
        states = [node(N0, copy(D0, N0), copy(D2, N0, writable=True)), node(N1), node(N2)]
        self.assertEqual(plan_for(deployment, states, N0), InParallel(changes=[
            DeleteDataset(dataset_id=D0), CreateDataset(dataset_id=D1),
            HandoffDataset(dataset_id=D2, node_uuid=N1)]))

    def test_local_state_wins(self):
        """
        This node's own state is the one passed as ``local_state``, not an
        older entry in ``cluster_state``; the plan is the same whether or not
        the cluster state lists this node.
        """
        deployment = desired(want(D0, N0))
        local = node(N0, copy(D0, N0, writable=True, maximum_size=8 * MiB))
        others = [node(N1), node(N2)]
        stale = cluster(node(N0), *others)
        self.assertEqual(calculate_changes(deployment, stale, local).changes,
                         [ResizeDataset(dataset_id=D0, maximum_size=None)])
        self.assertEqual(calculate_changes(deployment, cluster(*others), local),
                         calculate_changes(deployment, stale, local))


class ConflictPlanTests(SynchronousTestCase):
    """
    A dataset writable on more than one node: every node but the keeper's
    demotes its writable copy, and nothing else is planned for it; the
    conflict copies left afterwards are never pushed over, handed off to or
    deleted.
    """

    def plans(self, deployment, states):
        return {n.node_uuid: plan_for(deployment, states, n.node_uuid).changes
                for n in states}

    def test_primary_kept(self):
        """
        With two writable copies, the node that is not the desired primary
        demotes its own (towards the primary), whatever the generations;
        the primary does nothing, not even the push to that node that the
        deployment wants, nor a resize.
        """
        deployment = desired(want(D0, N1, replicas=[N0, N2], maximum_size=8 * MiB))
        states = [node(N0, copy(D0, N0, writable=True).set(generation=5)),
                  node(N1, copy(D0, N1, writable=True, guids=(9,))), node(N2)]
        self.assertEqual(self.plans(deployment, states), {
            N0: [DemoteDataset(dataset_id=D0, node_uuid=N1)], N1: [], N2: []})

    def test_in_use_demoted(self):
        """
        A copy in use is demoted too (its application gets EROFS instead of
        writing into a copy that can never become the dataset); the keeper's
        use changes nothing.
        """
        deployment = desired(want(D0, N1))
        states = [node(N0, copy(D0, N0, writable=True), in_use=[D0]),
                  node(N1, copy(D0, N1, writable=True), in_use=[D0]), node(N2)]
        self.assertEqual(self.plans(deployment, states)[N0],
                         [DemoteDataset(dataset_id=D0, node_uuid=N1)])

    def test_primary_without_writable_copy(self):
        """
        When the desired primary has no writable copy (none, a replica, or it
        did not answer), the keeper is the highest generation, then the
        greatest node uuid; everyone else demotes towards it, whatever
        owner each copy records.
        """
        deployment = desired(want(D0, N2, replicas=[N0, N1]))
        for third in (node(N2), node(N2, copy(D0, N0))):
            states = [node(N0, copy(D0, N0, writable=True).set(generation=3)),
                      node(N1, copy(D0, N1, writable=True).set(generation=2)), third]
            self.assertEqual(self.plans(deployment, states), {
                N0: [], N1: [DemoteDataset(dataset_id=D0, node_uuid=N0)], N2: []})
        states = [node(N0, copy(D0, N0, writable=True)), node(N1, copy(D0, N2, writable=True))]
        self.assertEqual(self.plans(deployment, states), {
            N0: [DemoteDataset(dataset_id=D0, node_uuid=N1)], N1: []})

    def test_three_writable(self):
        """
        Every writable copy but the keeper's is demoted towards it, in one
        round, also by a node outside the deployment.
        """
        deployment = desired(want(D0, N1))
        states = [node(N0, copy(D0, N0, writable=True)), node(N1, copy(D0, N1, writable=True)),
                  node(N2, copy(D0, N2, writable=True)),
                  node(OUTSIDER, copy(D0, OUTSIDER, writable=True).set(generation=9))]
        demote = [DemoteDataset(dataset_id=D0, node_uuid=N1)]
        self.assertEqual(self.plans(deployment, states),
                         {N0: demote, N1: [], N2: demote, OUTSIDER: demote})

    def test_only_what_is_seen(self):
        """
        A node that sees no other writable copy (the other node did not
        answer) plans as usual; one that sees a higher-ranked copy demotes
        even while another node is unknown.
        """
        deployment = desired(want(D0, N1))
        self.assertEqual(plan_for(deployment, [node(N0, copy(D0, N0, writable=True))],
                                  N0).changes, [])
        states = [node(N0, copy(D0, N0, writable=True)), node(N1, copy(D0, N1, writable=True))]
        self.assertEqual(plan_for(deployment, states, N0).changes,
                         [DemoteDataset(dataset_id=D0, node_uuid=N1)])

    def test_before_recovery_and_delete(self):
        """
        The conflict comes first: a writable copy that also carries a
        handoff marker is demoted rather than recovered, and a deleted
        dataset's writable copies are demoted, not deleted.
        """
        deployment = desired(want(D0, N1, deleted=True))
        states = [node(N0, copy(D0, N0, writable=True, handoff="%s:2" % (N1,))),
                  node(N1, copy(D0, N1, writable=True)), node(N2, copy(D0, N1))]
        self.assertEqual(self.plans(deployment, states), {
            N0: [DemoteDataset(dataset_id=D0, node_uuid=N1)], N1: [], N2: []})

    def test_conflict_copy_left_alone(self):
        """
        Once demoted, the conflict copy is not pushed to even where a
        replica is wanted, refreshed or not; it is not deleted with the
        dataset, while the other copies are; its node plans nothing for it.
        """
        deployment = desired(want(D0, N1, replicas=[N0, N2]))
        states = [node(N0, conflicted(D0, N0)), node(N1, copy(D0, N1, writable=True)),
                  node(N2, copy(D0, N1))]
        self.assertEqual(self.plans(deployment, states),
                         {N0: [], N1: [], N2: []})
        self.assertEqual(plan_for(deployment, states, N1, refresh={D0}).changes,
                         [PushDataset(dataset_id=D0, node_uuid=N2)])
        deleted = desired(want(D0, N1, deleted=True))
        self.assertEqual(self.plans(deleted, states), {
            N0: [], N1: [DeleteDataset(dataset_id=D0)], N2: [DeleteDataset(dataset_id=D0)]})

    def test_conflict_copy_on_new_primary(self):
        """
        A primary holding a conflict copy is not handed the dataset (the
        push would find no common snapshot); it is not created there again.
        """
        deployment = desired(want(D0, N0))
        states = [node(N0, conflicted(D0, N0)), node(N1, copy(D0, N1, writable=True)),
                  node(N2)]
        self.assertEqual(self.plans(deployment, states), {N0: [], N1: [], N2: []})

    def test_conflict_copy_needs_marker_snapshot_newest(self):
        """
        Only a read-only copy without a handoff marker whose newest snapshot
        is a conflict snapshot is a conflict copy: a replica that received
        newer snapshots since is pushed to and deleted as usual.
        """
        deployment = desired(want(D0, N1, replicas=[N0]))
        later = conflicted(D0, N1)
        later = later.set(snapshots=later.snapshots.append(
            Snapshot(name="s2000", guid=2000, createtxg=2000)))
        states = [node(N0, later), node(N1, copy(D0, N1, writable=True)), node(N2)]
        self.assertEqual(plan_for(deployment, states, N1).changes,
                         [PushDataset(dataset_id=D0, node_uuid=N0)])
