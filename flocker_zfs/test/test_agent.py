"""
Tests for :mod:`flocker_zfs._agent`: agents on the nodes of a
:class:`~flocker_zfs.testing.FakeNetwork` converge a deployment file, driven
by a :class:`~twisted.internet.task.Clock`.  What a user sees is checked: the
datasets on each node (writable or replica, the files in them), what was
streamed, and the eliot log.
"""

import os
import uuid

from eliot.testing import LoggedAction, LoggedMessage, capture_logging
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from .._actions import (
    AGENT_CLUSTER_STATE, AGENT_DEPLOYMENT, AGENT_ITERATION, CHANGE_CREATE, CHANGE_PUSH)
from .. import _agent as agent_module
from .._agent import AgentService, agent_from_config, backoff_delay
from .._config import parse_config
from .._deployment import NodeAddress
from .._protocol import DATASETS, ProtocolError, RemoteError
from .._replication import STEPS, Replicator, SimulatedCrash
from .._sshpeer import SSHPeer
from ..errors import ConfigError, PoolNotFound, TransferFailed, TransportError
from ..interfaces import IPeer
from ..testing import FakeNetwork, FakeZFS

POLL = 1.0


@implementer(IPeer)
class ControlledPeer(object):
    """
    An ``IPeer`` around a :class:`FakePeer` whose streams a test can hold
    open (``hold``) or make fail (``failing``), and which records the clock
    time of every request.

    :ivar held: the ``Deferred`` of each stream being held, in order.
    :ivar cancelled: how many held streams were cancelled.
    :ivar calls: ``(time, verb)`` of every ``call``.
    :ivar streams: the clock time of every ``stream``.
    """

    def __init__(self, peer, clock):
        self._peer = peer
        self._clock = clock
        self.address = peer.address
        self.hold = False
        self.failing = False
        self.held = []
        self.cancelled = 0
        self.calls = []
        self.streams = []

    def call(self, verb, *args):
        self.calls.append((self._clock.seconds(), verb))
        return self._peer.call(verb, *args)

    def stream(self, send_argv, verb, *args, progress=None):
        self.streams.append(self._clock.seconds())
        if self.failing:
            return fail(TransferFailed("transport", TransportError(
                self.address, b"ssh: connect to host: Connection reset by peer\n")))
        if not self.hold:
            return self._peer.stream(send_argv, verb, *args, progress=progress)

        def cancelled(_):
            self.cancelled += 1
        gate = Deferred(cancelled)
        self.held.append(gate)
        gate.addCallback(lambda _: self._peer.stream(send_argv, verb, *args,
                                                     progress=progress))
        return gate

    def release(self):
        """Let every held stream go on (holding no more)."""
        self.hold = False
        held, self.held = self.held, []
        for gate in held:
            if not gate.called:
                gate.callback(None)

    def iterations(self):
        """
        :return: the distinct clock times this node was asked for its
            datasets, in order (an iteration asks once, and a create's
            confirmation asks again at the same time).
        """
        return sorted({when for when, verb in self.calls if verb == DATASETS})


class Cluster(object):
    """
    Fake nodes (``a``, ``b``...), one shared deployment file, an agent per
    node started on demand, and a :class:`ControlledPeer` per (from, to).
    """

    def __init__(self, case, names=("a", "b")):
        self.case = case
        self.network = FakeNetwork(os.path.abspath(case.mktemp()))
        case.addCleanup(self.network.unmount_all)
        self.clock = self.network.clock
        self.nodes = {name: self.network.add_node(name + ".example") for name in names}
        self.path = os.path.abspath(case.mktemp())
        self.files = {}
        self.agents = {}
        self.peers = {}
        self.made = []

    def uuid(self, name):
        return self.nodes[name].node_uuid

    def deployment(self, datasets, nodes=None, on=None):
        """
        Write the deployment file.

        :param datasets: ``(id, primary name, replica names, extra YAML)``.
        :param nodes: ``(name, address)`` pairs; default every node at its own.
        :param on: a node name: write that node's own file instead of the
            shared one (its agent reads its own file if written before the
            agent is made).
        """
        if nodes is None:
            nodes = [(name, name + ".example") for name in sorted(self.nodes)]
        lines = ["nodes:"]
        for name, address in nodes:
            lines += ["  - uuid: %s" % (self.uuid(name),), "    address: %s" % (address,)]
        lines.append("datasets:")
        for dataset_id, primary, replicas, extra in datasets:
            lines += ["  - id: %s" % (dataset_id,),
                      "    primary: %s" % (self.uuid(primary),),
                      "    replicas: [%s]" % (", ".join(self.uuid(r) for r in replicas),)]
            lines += ["    " + line for line in extra]
        self.write("\n".join(lines) + "\n", on)

    def write(self, text, on=None):
        if on is not None and on not in self.files:
            self.files[on] = os.path.abspath(self.case.mktemp())
        with open(self.path if on is None else self.files[on], "w") as handle:
            handle.write(text)

    def peer(self, source, target):
        """:return: the :class:`ControlledPeer` from ``source`` to ``target``."""
        key = (source, target)
        if key not in self.peers:
            self.peers[key] = ControlledPeer(self.nodes[source].peer(target), self.clock)
        return self.peers[key]

    def agent(self, name, replicator=None, **kwargs):
        """A (not started) agent for node ``name``."""
        node = self.nodes[name]

        def make_peer(address):
            self.made.append((name, address))
            return self.peer(name, address.address)
        kwargs.setdefault("poll_interval", POLL)
        return AgentService(self.clock, node.backend, self.files.get(name, self.path), make_peer,
                            replicator=replicator or node.replicator,
                            open_files=lambda path: succeed([]), **kwargs)

    def start(self, *names, **kwargs):
        """Start an agent on each node in ``names`` (default all)."""
        for name in names or sorted(self.nodes):
            agent = self.agents[name] = self.agent(name, **kwargs)
            agent.startService()
            self.case.addCleanup(self.stop, agent)

    def replicated(self, *names, hold=False, failing=False, **kwargs):
        """
        Write a deployment of one new dataset, primary ``a`` with a replica
        wanted on ``b``, then start the agents on ``names`` (default all).

        :param hold: the peer from ``a`` to ``b`` holds its streams.
        :param failing: its streams fail.
        :param kwargs: for each agent.
        :return: ``(dataset id, that ControlledPeer)``.
        """
        x = new_id()
        peer = self.peer("a", "b.example")
        peer.hold, peer.failing = hold, failing
        self.deployment([(x, "a", ["b"], [])])
        self.start(*names, **kwargs)
        return x, peer

    def lone_agent(self, peer, **kwargs):
        """
        A (not started) agent on ``a`` whose every peer is ``peer``.
        """
        return AgentService(self.clock, self.nodes["a"].backend, self.path,
                            lambda address: peer, open_files=lambda path: succeed([]),
                            **kwargs)

    def crashing_agent(self, name, step):
        """
        A (not started) agent on ``name`` whose replicator dies at ``step``
        of a handoff (see :data:`STEPS`).

        :return: ``(agent, list of the steps it died at)``.
        """
        crashed = []

        def crash(reached):
            if reached == step:
                crashed.append(reached)
                raise SimulatedCrash(reached)
        replicator = Replicator(self.nodes[name].backend, self.clock, faults=crash,
                                open_writers=lambda path: succeed([]))
        return self.agent(name, replicator=replicator), crashed

    def stop(self, agent):
        if agent.running:
            d = agent.stopService()
            self.clock.advance(agent.stop_grace + 1)
            self.case.successResultOf(d)

    def advance(self, times=1, seconds=POLL):
        for _ in range(times):
            self.clock.advance(seconds)

    def dataset(self, name, dataset_id):
        """:return: node ``name``'s copy of ``dataset_id``, or ``None``."""
        state = self.case.successResultOf(self.nodes[name].backend.discover())
        return state.datasets.get(dataset_id)

    def writable(self, dataset_id):
        """:return: the names of the nodes where ``dataset_id`` is writable."""
        return [name for name in sorted(self.nodes)
                if (self.dataset(name, dataset_id) or _Absent).writable]

    def holding(self, dataset_id):
        """:return: the names of the nodes with a copy of ``dataset_id``."""
        return [name for name in sorted(self.nodes)
                if self.dataset(name, dataset_id) is not None]

    def path_of(self, name, dataset_id, filename):
        return self.nodes[name].backend.path(dataset_id).child(filename)

    def states(self):
        """:return: every node's fake ZFS state (to check nothing changed)."""
        return {name: node.fake.snapshot_state() for name, node in self.nodes.items()}


class _Absent(object):
    writable = False


@implementer(IPeer)
class StubPeer(object):
    """
    An ``IPeer`` at ``b.example`` whose ``call`` returns ``answer(verb)``;
    it is never asked to stream.
    """

    address = "b.example"

    def __init__(self, answer):
        self._answer = answer

    def call(self, verb, *args):
        return self._answer(verb)

    def stream(self, *args, **kwargs):
        raise AssertionError("no stream expected")


def new_id():
    return str(uuid.uuid4())


class ConvergenceTests(SynchronousTestCase):
    """
    Agents converge the cluster on the deployment file, and re-read it when
    it changes.
    """

    def test_create_then_move(self):
        """
        A dataset is created on its primary; after the file names another
        primary, it moves there with its data and the old node keeps a
        read-only replica.  A converged cluster then stays as it is.
        """
        cluster = Cluster(self)
        x = new_id()
        cluster.deployment([(x, "a", [], [])])
        cluster.start()
        self.assertEqual((cluster.holding(x), cluster.writable(x)), (["a"], ["a"]))
        cluster.path_of("a", x, "f").setContent(b"written on a")
        cluster.deployment([(x, "b", [], [])])
        cluster.advance()
        self.assertEqual((cluster.holding(x), cluster.writable(x)), (["a", "b"], ["b"]))
        self.assertEqual(cluster.path_of("b", x, "f").getContent(), b"written on a")
        replica = cluster.dataset("a", x)
        self.assertEqual((replica.owner, replica.handoff), (cluster.uuid("b"), None))
        before = cluster.states()
        cluster.advance(5)
        self.assertEqual(cluster.states(), before)

    def test_replicas_pushed(self):
        """
        Every node named under ``replicas`` gets a read-only replica, and a
        new snapshot on the primary reaches them on a later iteration.
        """
        cluster = Cluster(self, ("a", "b", "c"))
        x = new_id()
        cluster.deployment([(x, "a", ["b", "c"], [])])
        cluster.start()
        self.assertEqual((cluster.holding(x), cluster.writable(x)),
                         (["a", "b", "c"], ["a"]))
        cluster.path_of("a", x, "f").setContent(b"v2")
        self.successResultOf(cluster.nodes["a"].backend.snapshot(x))
        cluster.advance()
        for name in ("b", "c"):
            self.assertEqual(cluster.path_of(name, x, "f").getContent(), b"v2")
            self.assertEqual(cluster.dataset(name, x).owner, cluster.uuid("a"))

    def test_replicas_follow_writes(self):
        """
        Data written on the owner after convergence reaches the replica once
        ``replication_interval`` has passed since the last push, not before.
        """
        cluster = Cluster(self)
        x, peer = cluster.replicated(replication_interval=10.0)
        self.assertEqual((cluster.holding(x), peer.streams), (["a", "b"], [0.0]))
        cluster.path_of("a", x, "f").setContent(b"written after convergence")
        cluster.advance(9)
        self.assertEqual((cluster.path_of("b", x, "f").exists(), peer.streams),
                         (False, [0.0]))
        cluster.advance()
        self.assertEqual(cluster.path_of("b", x, "f").getContent(),
                         b"written after convergence")
        self.assertEqual(peer.streams, [0.0, 10.0])
        cluster.advance(9)
        self.assertEqual(peer.streams, [0.0, 10.0])

    def test_replication_never(self):
        """
        With ``replication_interval=None`` a converged replica gets nothing
        more, however long the agent runs.
        """
        cluster = Cluster(self)
        x, peer = cluster.replicated(replication_interval=None)
        cluster.path_of("a", x, "f").setContent(b"kept on a")
        cluster.advance(100)
        self.assertEqual((cluster.path_of("b", x, "f").exists(), peer.streams),
                         (False, [0.0]))

    def test_new_agent_pushes_at_once(self):
        """
        A new agent pushes the datasets it owns to their replicas on its
        first iteration, so writes made while no agent ran are not held back
        for a whole interval.
        """
        cluster = Cluster(self)
        x, peer = cluster.replicated("a")
        self.successResultOf(cluster.agents["a"].stopService())
        cluster.path_of("a", x, "f").setContent(b"written while stopped")
        cluster.advance(5)
        cluster.start("a")
        self.assertEqual(peer.streams, [0.0, 5.0])
        self.assertEqual(cluster.path_of("b", x, "f").getContent(), b"written while stopped")

    def test_deleted_everywhere(self):
        """
        A dataset marked ``deleted`` is destroyed on every node that holds
        it, owner and replicas alike; other datasets stay.
        """
        cluster = Cluster(self, ("a", "b", "c"))
        x, y = new_id(), new_id()
        cluster.deployment([(x, "a", ["b", "c"], []), (y, "b", ["a"], [])])
        cluster.start()
        self.assertEqual((cluster.holding(x), cluster.holding(y)),
                         (["a", "b", "c"], ["a", "b"]))
        cluster.deployment([(x, "a", ["b", "c"], ["deleted: true"]), (y, "b", ["a"], [])])
        cluster.advance()
        self.assertEqual((cluster.holding(x), cluster.holding(y)), ([], ["a", "b"]))

    def test_resized(self):
        """
        A new ``maximum_size`` in the file is applied on the owner.
        """
        cluster = Cluster(self)
        x = new_id()
        cluster.deployment([(x, "a", [], ["maximum_size: 64M"])])
        cluster.start()
        self.assertEqual(cluster.dataset("a", x).maximum_size, 64 * 1024 ** 2)
        cluster.deployment([(x, "a", [], ["maximum_size: 128M"])])
        cluster.advance()
        self.assertEqual(cluster.dataset("a", x).maximum_size, 128 * 1024 ** 2)

    @capture_logging(None)
    def test_unreachable_blocks_creation_only(self, logger):
        """
        While a node is unreachable a new dataset is not created (it might
        exist there already), but other datasets still converge; once the
        node is back the creation happens.  The unreachable node is logged
        with the reason.
        """
        cluster = Cluster(self, ("a", "b", "c"))
        x, y = new_id(), new_id()
        cluster.deployment([(y, "a", [], [])])
        cluster.start()
        cluster.network.partition("b.example")
        cluster.deployment([(y, "a", ["c"], []), (x, "a", [], [])])
        cluster.advance()
        self.assertEqual((cluster.holding(x), cluster.holding(y)), ([], ["a", "c"]))
        queried = [action for action in LoggedAction.of_type(logger.messages,
                                                             AGENT_CLUSTER_STATE)
                   if action.start_message["node_uuid"] == cluster.uuid("b")
                   and action.end_message.get("reachable") is False]
        self.assertTrue(queried)
        self.assertIn("Connection refused", queried[0].end_message["reason"])
        cluster.network.heal("b.example")
        cluster.advance()
        self.assertEqual((cluster.holding(x), cluster.writable(x)), (["a"], ["a"]))

    @capture_logging(None)
    def test_node_answering_as_another(self, logger):
        """
        A node whose address answers with another uuid than the file says is
        left out of the cluster state, with the reason; so nothing is
        created while the file is wrong.
        """
        cluster = Cluster(self, ("a", "b", "c"))
        x = new_id()
        cluster.deployment([(x, "a", [], [])],
                           nodes=[("a", "a.example"), ("b", "c.example"), ("c", "b.example")])
        cluster.start("a")
        self.assertEqual(cluster.holding(x), [])
        reasons = [action.end_message["reason"] for action in
                   LoggedAction.of_type(logger.messages, AGENT_CLUSTER_STATE)]
        self.assertEqual(len(reasons), 2)
        self.assertIn("c.example answers as node %s, but the deployment file says it is "
                      "node %s" % (cluster.uuid("c"), cluster.uuid("b")), reasons)

    def test_other_datasets_left_alone(self):
        """
        A dataset of this pool that the file does not mention is never
        touched, nor are the other nodes contacted about it.
        """
        cluster = Cluster(self)
        stray = new_id()
        self.successResultOf(cluster.nodes["a"].backend.create(stray))
        cluster.deployment([])
        cluster.start()
        cluster.advance(3)
        self.assertEqual((cluster.holding(stray), cluster.writable(stray)), (["a"], ["a"]))
        self.assertEqual(cluster.peer("a", "b.example").streams, [])

    def test_own_node_not_contacted(self):
        """
        The agent asks every other node of the file for its state once per
        iteration, never its own node, and makes each peer once.
        """
        cluster = Cluster(self, ("a", "b", "c"))
        cluster.deployment([])
        cluster.start("a")
        cluster.advance(2)
        self.assertEqual((cluster.peer("a", "b.example").iterations(),
                          cluster.peer("a", "c.example").iterations()),
                         ([0.0, 1.0, 2.0], [0.0, 1.0, 2.0]))
        self.assertNotIn(("a", "a.example"), cluster.peers)
        self.assertEqual(sorted(address.address for _, address in cluster.made),
                         ["b.example", "c.example"])


class DeploymentFileTests(SynchronousTestCase):
    """
    The deployment file is re-read when it changes; a bad one is logged
    once and the last good one kept.
    """

    @capture_logging(None)
    def test_invalid_keeps_last_good(self, logger):
        """
        When the file becomes invalid, the error is logged once and the
        last good deployment is still converged on; a corrected file is
        used at once.
        """
        cluster = Cluster(self)
        x = new_id()
        cluster.deployment([(x, "a", ["b"], [])])
        cluster.start()
        self.assertEqual(cluster.holding(x), ["a", "b"])
        cluster.write("nodes: [\n")
        self.successResultOf(cluster.nodes["b"].backend.destroy(x))
        cluster.advance(3)
        self.assertEqual(cluster.holding(x), ["a", "b"])
        failed = [action for action in LoggedAction.of_type(logger.messages, AGENT_DEPLOYMENT)
                  if not action.succeeded]
        self.assertEqual(len(failed), 2)    # once by each agent
        self.assertIn("malformed YAML", failed[0].end_message["reason"])
        self.assertIn(cluster.path, failed[0].end_message["reason"])
        cluster.deployment([(x, "a", ["b"], ["deleted: true"])])
        cluster.advance()
        self.assertEqual(cluster.holding(x), [])

    @capture_logging(None)
    def test_never_valid(self, logger):
        """
        Without a valid file ever (missing, then invalid), the agent does
        nothing at all: no ZFS command, no peer contacted; each problem is
        logged once.
        """
        cluster = Cluster(self)
        cluster.start("a")
        cluster.advance(2)
        cluster.write("datasets: {}\nnodes: 7\n")
        cluster.advance(2)
        self.assertEqual((cluster.nodes["a"].fake.commands, cluster.peers), ([], {}))
        reasons = [action.end_message["reason"] for action in
                   LoggedAction.of_type(logger.messages, AGENT_DEPLOYMENT)
                   if not action.succeeded]
        self.assertEqual(len(reasons), 2)
        self.assertIn(cluster.path + ": no such file", reasons[0])
        self.assertIn("nodes", reasons[1])

    @capture_logging(None)
    def test_too_large(self, logger):
        """
        A file larger than the limit (a wrong path) is refused unparsed.
        """
        cluster = Cluster(self)
        self.patch(agent_module, "MAX_DEPLOYMENT_BYTES", 100)
        cluster.write("# padding\n" * 20)
        cluster.start("a")
        failed, = [action for action in LoggedAction.of_type(logger.messages, AGENT_DEPLOYMENT)
                   if not action.succeeded]
        self.assertIn("larger than 100 bytes", failed.end_message["reason"])

    @capture_logging(None)
    def test_not_a_file(self, logger):
        """
        A named pipe (or a directory) at the path is refused without
        waiting for a writer: the agent goes on iterating, and converges once
        a file is there.
        """
        cluster = Cluster(self)
        os.mkfifo(cluster.path)
        cluster.start("a")
        cluster.advance(2)
        failed, = [action for action in LoggedAction.of_type(logger.messages, AGENT_DEPLOYMENT)
                   if not action.succeeded]
        self.assertIn("is not a regular file", failed.end_message["reason"])
        self.assertEqual(cluster.peers, {})
        os.remove(cluster.path)
        x = new_id()
        cluster.deployment([(x, "a", [], [])])
        cluster.advance()
        self.assertEqual(cluster.holding(x), ["a"])

    @capture_logging(None)
    def test_not_in_deployment(self, logger):
        """
        A node the file does not list does nothing, and says so.
        """
        cluster = Cluster(self, ("a", "b", "c"))
        x = new_id()
        cluster.deployment([(x, "a", [], [])], nodes=[("a", "a.example"), ("b", "b.example")])
        cluster.start("c")
        cluster.advance()
        self.assertEqual((cluster.nodes["c"].fake.commands, cluster.peers), ([], {}))
        self.assertEqual(cluster.holding(x), [])
        messages = LoggedMessage.of_type(logger.messages, "flocker_zfs:agent:not_in_deployment")
        self.assertEqual(messages[0].message["node_uuid"], cluster.uuid("c"))


class ConcurrencyTests(SynchronousTestCase):
    """
    At most one change per dataset, at most ``max_parallel`` at once, and
    iterations that never wait for a long transfer.
    """

    @capture_logging(None)
    def test_one_change_per_dataset(self, logger):
        """
        While a dataset's push is in flight, later iterations go on (other
        nodes are still asked for their state) but start nothing more for
        that dataset; they log it as busy.  Once the push ends it is done.
        """
        cluster = Cluster(self)
        x, peer = cluster.replicated("a", hold=True)
        cluster.advance(3)
        self.assertEqual((len(peer.streams), len(peer.held), peer.iterations()),
                         (1, 1, [0.0, 1.0, 2.0, 3.0]))
        self.assertEqual(cluster.agents["a"].in_flight(), [x])
        peer.release()
        self.assertEqual((cluster.holding(x), cluster.agents["a"].in_flight()), (["a", "b"], []))
        cluster.advance(2)
        self.assertEqual(len(peer.streams), 1)
        iterations = LoggedAction.of_type(logger.messages, AGENT_ITERATION)
        self.assertEqual([a.end_message["started"] for a in iterations], [[x]] + [[]] * 5)
        self.assertEqual([a.end_message["skipped"] for a in iterations],
                         [{}] + [{x: "busy"}] * 3 + [{}] * 2)

    def test_max_parallel(self):
        """
        With ``max_parallel=2`` only two datasets change at once; the third
        waits for a free slot (without being created early).
        """
        cluster = Cluster(self)
        ids = sorted(new_id() for _ in range(3))
        peer = cluster.peer("a", "b.example")
        peer.hold = True
        cluster.deployment([(i, "a", ["b"], []) for i in ids])
        cluster.start("a", max_parallel=2)
        cluster.advance(2)
        self.assertEqual(len(peer.held), 2)
        self.assertEqual(len(cluster.agents["a"].in_flight()), 2)
        waiting, = [i for i in ids if i not in cluster.agents["a"].in_flight()]
        self.assertEqual(cluster.holding(waiting), [])
        peer.held[0].callback(None)
        self.assertEqual(len(cluster.agents["a"].in_flight()), 1)
        cluster.advance()
        self.assertEqual(cluster.holding(waiting), ["a"])
        self.assertEqual(len(cluster.agents["a"].in_flight()), 2)
        peer.release()
        cluster.advance()
        self.assertEqual([cluster.holding(i) for i in ids], [["a", "b"]] * 3)

    def test_waiting_longest_first(self):
        """
        A change that keeps failing does not starve others: the datasets
        whose changes waited longest start first.
        """
        cluster = Cluster(self)
        ids = sorted(new_id() for _ in range(3))
        peer = cluster.peer("a", "b.example")
        peer.hold = True
        cluster.deployment([(ids[0], "a", [], [])])
        cluster.start("a", max_parallel=1)
        cluster.deployment([(i, "a", ["b"], []) for i in ids])
        cluster.advance()
        self.assertEqual(cluster.agents["a"].in_flight(), [ids[1]])
        peer.held[0].errback(RuntimeError("simulated failure"))
        cluster.advance(10)
        self.assertEqual(cluster.agents["a"].in_flight(), [ids[2]])


class BackoffTests(SynchronousTestCase):
    """
    The wait between iterations doubles after a failure, up to
    ``max_backoff``, and is reset by a clean iteration.
    """

    def test_delays(self):
        """
        ``backoff_delay`` doubles per failure and is capped.
        """
        self.assertEqual([backoff_delay(10.0, n, 300.0) for n in range(7)],
                         [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0])
        self.assertEqual(backoff_delay(10.0, 10 ** 6, 300.0), 300.0)
        self.assertEqual(backoff_delay(10.0, 3, 5.0), 10.0)

    def test_failed_change(self):
        """
        While a push keeps failing, iterations come at 1, 2, 4, then at most
        5 seconds apart; after the push succeeds they are 1 second apart
        again.
        """
        cluster = Cluster(self)
        x, peer = cluster.replicated("a", failing=True, max_backoff=5.0)
        cluster.advance(16)
        self.assertEqual(peer.streams, [0.0, 2.0, 6.0, 11.0, 16.0])
        peer.failing = False
        cluster.advance(21 - 16)
        self.assertEqual(peer.streams, [0.0, 2.0, 6.0, 11.0, 16.0, 21.0])
        cluster.advance(2)
        self.assertEqual(peer.iterations()[-3:], [21.0, 22.0, 23.0])
        self.assertEqual(cluster.holding(x), ["a", "b"])

    def test_failed_iteration(self):
        """
        An iteration whose discovery fails is retried after a longer wait;
        a clean one resets it.
        """
        cluster = Cluster(self)
        cluster.deployment([])
        fake = cluster.nodes["a"].fake
        fake.fail_next("get", 1, b"internal error: simulated\n")
        cluster.start("a")
        fake.fail_next("get", 1, b"internal error: simulated\n")
        cluster.advance(2)
        cluster.advance(4)
        cluster.advance(3)
        self.assertEqual(cluster.peer("a", "b.example").iterations(), [6.0, 7.0, 8.0, 9.0])


class StopTests(SynchronousTestCase):
    """
    ``stopService`` stops scheduling, lets changes in flight finish for the
    grace period, then cancels them; a crashed agent's successor converges.
    """

    def test_idle(self):
        """
        With nothing in flight the service stops at once and no iteration
        follows.
        """
        cluster = Cluster(self)
        cluster.deployment([])
        cluster.start("a")
        self.successResultOf(cluster.agents["a"].stopService())
        cluster.advance(10)
        self.assertEqual(cluster.peer("a", "b.example").iterations(), [0.0])

    def stopping(self, grace):
        """
        Agent ``a`` pushing a new dataset to ``b`` (the stream held), then
        asked to stop with ``stop_grace=grace``.

        :return: ``(cluster, dataset id, the held ControlledPeer, the
            Deferred stopService returned)``.
        """
        cluster = Cluster(self)
        x, peer = cluster.replicated("a", hold=True, stop_grace=grace)
        return cluster, x, peer, cluster.agents["a"].stopService()

    def test_in_flight_finishes(self):
        """
        A push that ends within the grace period ends normally, and only
        then does the stop complete.
        """
        cluster, x, peer, d = self.stopping(30.0)
        cluster.advance(29)
        self.assertNoResult(d)
        self.assertEqual(peer.iterations(), [0.0])
        peer.release()
        self.successResultOf(d)
        self.assertEqual((cluster.holding(x), peer.cancelled), (["a", "b"], 0))

    def test_cancelled_after_grace(self):
        """
        A push still running when the grace period ends is cancelled; the
        stop then completes, the dataset is still writable on its owner
        only, and the next agent completes the push.
        """
        cluster, x, peer, d = self.stopping(30.0)
        cluster.advance(29)
        self.assertNoResult(d)
        cluster.advance(1)
        self.successResultOf(d)
        self.assertEqual((peer.cancelled, cluster.agents["a"].in_flight()), (1, []))
        self.assertEqual((cluster.holding(x), cluster.writable(x)), (["a"], ["a"]))
        peer.hold = False
        cluster.start("a")
        self.assertEqual((cluster.holding(x), cluster.writable(x)), (["a", "b"], ["a"]))

    def test_stop_twice(self):
        """
        Each ``stopService`` caller gets its own ``Deferred``, fired when the
        changes in flight end; the grace period is not restarted.
        """
        cluster, x, peer, first = self.stopping(10.0)
        cluster.advance(6)
        second = cluster.agents["a"].stopService()
        cluster.advance(4)
        self.assertEqual((self.successResultOf(first), self.successResultOf(second)),
                         (None, None))
        self.assertEqual((peer.cancelled, cluster.clock.getDelayedCalls()), (1, []))

    def test_started_again_while_stopping(self):
        """
        Started again during the grace period, the agent lets the change in
        flight finish instead of cancelling it, and iterates again.
        """
        cluster, x, peer, stopped = self.stopping(10.0)
        cluster.advance(5)
        cluster.agents["a"].startService()
        cluster.advance(10)
        self.assertEqual((peer.cancelled, cluster.agents["a"].in_flight()), (0, [x]))
        self.assertNoResult(stopped)
        peer.release()
        self.successResultOf(stopped)
        self.assertEqual(cluster.holding(x), ["a", "b"])
        self.assertEqual(peer.iterations()[:2], [0.0, 5.0])

    def test_no_change_after_stop(self):
        """
        An iteration run after ``stopService`` (by hand: the loop runs no
        more) plans but starts nothing, reporting the datasets as skipped;
        one run on an agent never started does start changes.
        """
        cluster = Cluster(self)
        x = new_id()
        cluster.deployment([(x, "a", [], [])])
        agent = cluster.agent("a")
        self.successResultOf(agent.stopService())
        summary = self.successResultOf(agent.iterate())
        self.assertEqual((summary["started"], summary["skipped"], cluster.holding(x)),
                         ([], {x: "stopping"}, []))
        fresh = cluster.agent("a")
        self.assertEqual(self.successResultOf(fresh.iterate())["started"], [x])
        self.assertEqual(cluster.holding(x), ["a"])

    def test_cancel_kills_a_hung_command(self):
        """
        Cancelling reaches the command the change is waiting for (here a
        ``zfs create`` that never ends).
        """
        cluster = Cluster(self)
        x = new_id()
        fake = cluster.nodes["a"].fake
        fake.hang("create")
        cluster.deployment([(x, "a", [], [])])
        cluster.start("a", stop_grace=5.0)
        d = cluster.agents["a"].stopService()
        cluster.advance(5)
        self.successResultOf(d)
        self.assertEqual([argv[1] for argv in fake.cancelled], ["create"])

    def crash_during_move(self, step, replicas):
        """
        A dataset written on ``a``, the file then naming ``b`` as its
        primary (with ``replicas``); ``b``'s agent runs, ``a``'s dies at
        ``step`` of the handoff (checked: with at most one writable copy
        left) and is stopped, as after a crash.

        :return: ``(cluster, dataset id)``.
        """
        cluster = Cluster(self)
        x = new_id()
        cluster.deployment([(x, "a", replicas, [])])
        cluster.start("b")
        crashing, crashed = cluster.crashing_agent("a", step)
        crashing.startService()
        cluster.path_of("a", x, "f").setContent(b"latest")
        cluster.deployment([(x, "b", replicas, [])])
        cluster.advance()
        self.assertEqual(crashed, [step])
        self.assertTrue(len(cluster.writable(x)) <= 1, step)
        # The process dies: nothing of it survives but the pools.
        self.successResultOf(crashing.stopService())
        return cluster, x

    def test_restart_after_crash(self):
        """
        An agent that dies at any step of a handoff (the replicator's fault
        plan) is replaced by a new one, which converges without manual
        repair: the new primary is the one writable owner with the latest
        data, the old owner a replica without a handoff marker.
        """
        for step in STEPS:
            cluster, x = self.crash_during_move(step, ["a"])
            cluster.start("a")
            cluster.advance(3)
            self.assertEqual((step, cluster.writable(x)), (step, ["b"]))
            self.assertEqual((step, cluster.path_of("b", x, "f").getContent()),
                             (step, b"latest"))
            replica = cluster.dataset("a", x)
            self.assertEqual((step, replica.owner, replica.handoff),
                             (step, cluster.uuid("b"), None))

    def test_primary_back_after_crash(self):
        """
        An agent dies at any step of a handoff to ``b``, and the file is
        changed back to ``a`` before a new agent starts on ``a``: the cluster
        converges without manual repair, ``a`` the one writable owner with
        the latest data and no handoff marker left.
        """
        for step in STEPS:
            cluster, x = self.crash_during_move(step, [])
            cluster.deployment([(x, "a", [], [])])
            cluster.start("a")
            cluster.advance(10)
            self.assertEqual((step, cluster.writable(x), cluster.dataset("a", x).handoff),
                             (step, ["a"], None))
            self.assertEqual((step, cluster.path_of("a", x, "f").getContent()),
                             (step, b"latest"))


class LoggingTests(SynchronousTestCase):
    """
    Each iteration is an eliot action holding its deployment read, its
    questions to other nodes and the changes it started.
    """

    @capture_logging(None)
    def test_iteration_action(self, logger):
        """
        ``AGENT_ITERATION`` names the node and what it started; its children
        are the deployment read, one ``AGENT_CLUSTER_STATE`` per other node
        and the changes.
        """
        cluster = Cluster(self)
        x, _ = cluster.replicated("a")
        iteration = LoggedAction.of_type(logger.messages, AGENT_ITERATION)[0]
        self.assertEqual((iteration.succeeded, iteration.start_message["node_uuid"],
                          iteration.end_message["started"], iteration.end_message["skipped"],
                          iteration.end_message["unreachable"]),
                         (True, cluster.uuid("a"), [x], {}, {}))
        children = [child.start_message["action_type"] for child in iteration.children
                    if isinstance(child, LoggedAction)]
        self.assertEqual(children[:2], [AGENT_DEPLOYMENT, "flocker_zfs:deployer:discover"])
        self.assertIn(AGENT_CLUSTER_STATE, children)
        self.assertEqual(LoggedAction.of_type(logger.messages, AGENT_DEPLOYMENT)[0]
                         .end_message["changed"], True)
        queried = LoggedAction.of_type(logger.messages, AGENT_CLUSTER_STATE)[0]
        self.assertEqual((queried.start_message["node_uuid"], queried.end_message["reachable"]),
                         (cluster.uuid("b"), True))
        self.assertTrue(LoggedAction.of_type(logger.messages, CHANGE_PUSH)[0].succeeded)

    @capture_logging(None)
    def test_change_failure_logged(self, logger):
        """
        A failed change is logged with its dataset and reason.
        """
        cluster = Cluster(self)
        x, _ = cluster.replicated("a", failing=True)
        failed = LoggedMessage.of_type(logger.messages, "flocker_zfs:agent:change_failed")
        self.assertEqual((failed[0].message["dataset_id"], failed[0].message["error"]),
                         (x, "TransferFailed"))
        self.assertIn("Connection reset", failed[0].message["reason"])

    @capture_logging(None)
    def test_older_peer(self, logger):
        """
        A node running a flocker-zfs without the ``datasets`` request is
        unreachable for the agent, with a reason saying to upgrade it.
        """
        cluster = Cluster(self)
        cluster.deployment([])
        old = StubPeer(lambda verb: fail(RemoteError(
            "b.example", "ProtocolError",
            str(ProtocolError("unknown peer request %r (known: hello)" % (verb,))), "")))
        agent = cluster.lone_agent(old)
        agent.startService()
        self.addCleanup(agent.stopService)
        queried = LoggedAction.of_type(logger.messages, AGENT_CLUSTER_STATE)[0]
        self.assertEqual(queried.end_message["reachable"], False)
        self.assertIn("older flocker-zfs", queried.end_message["reason"])

    @capture_logging(None)
    def test_query_timeout(self, logger):
        """
        A node that does not answer within ``query_timeout`` is left out of
        that iteration (its request cancelled), which is not delayed further.
        """
        cluster = Cluster(self)
        cluster.deployment([])
        asked = []

        def silent(verb):
            asked.append(verb)
            return Deferred(lambda _: asked.append("cancelled"))
        agent = cluster.lone_agent(StubPeer(silent), query_timeout=7.0, poll_interval=POLL)
        agent.startService()
        self.addCleanup(agent.stopService)
        cluster.clock.advance(7)
        self.assertEqual(asked, [DATASETS, "cancelled"])
        queried = LoggedAction.of_type(logger.messages, AGENT_CLUSTER_STATE)[0]
        self.assertEqual(queried.end_message["reason"], "no answer within 7 seconds")
        cluster.clock.advance(POLL)
        self.assertEqual(asked[-1], DATASETS)


class ServiceTests(SynchronousTestCase):
    """
    The agent as a service and its construction.
    """

    def test_iservice(self):
        """
        ``AgentService`` provides ``IService``.
        """
        from twisted.application.service import IService
        cluster = Cluster(self)
        verifyObject(IService, cluster.agent("a"))

    def test_bad_arguments(self):
        """
        A bad interval, bound or timeout is a ``ConfigError`` naming it.
        """
        cluster = Cluster(self)
        for kwargs, name in [({"poll_interval": -1}, "poll_interval"),
                             ({"poll_interval": "10"}, "poll_interval"),
                             ({"max_parallel": 0}, "max_parallel"),
                             ({"max_parallel": True}, "max_parallel"),
                             ({"max_backoff": None}, "max_backoff"),
                             ({"replication_interval": 0}, "replication_interval"),
                             ({"replication_interval": -5}, "replication_interval"),
                             ({"replication_interval": True}, "replication_interval"),
                             ({"replication_interval": "60"}, "replication_interval")]:
            with self.assertRaises(ConfigError) as caught:
                cluster.agent("a", **kwargs)
            self.assertIn(name, str(caught.exception))

    def test_restart_service(self):
        """
        A stopped agent can be started again and iterates again.
        """
        cluster = Cluster(self)
        cluster.deployment([])
        cluster.start("a")
        self.successResultOf(cluster.agents["a"].stopService())
        cluster.advance(3)
        cluster.agents["a"].startService()
        cluster.advance()
        self.assertEqual(cluster.peer("a", "b.example").iterations(), [0.0, 3.0, 4.0])


class FromConfigTests(SynchronousTestCase):
    """
    ``agent_from_config``: the agent an ``agent.yml`` describes.
    """

    def fake(self, pool="flocker"):
        """
        :return: a :class:`FakeZFS` with ``pool`` (none if ``None``).
        """
        fake = FakeZFS()
        if pool is not None:
            fake.add_pool(pool)
        self.addCleanup(fake.unmount_all)
        return fake

    def config(self, pool="flocker", extra=""):
        root = os.path.abspath(self.mktemp())
        os.makedirs(root)
        self.deployment = os.path.join(root, "deployment.yml")
        self.node_file = os.path.join(root, "node.json")
        text = ("version: 1\ncontrol-service: {hostname: control.example}\n"
                "dataset:\n  backend: zfs\n  pool: %s\n  mount_root: %s\n"
                "  node_file: %s\n  ssh_identity: %s\n  ssh_known_hosts: %s\n"
                "  ssh_port: 2222\n  deployment: %s\n  poll_interval: 2\n"
                "  max_parallel: 3\n  replication_interval: 45\n  max_backoff: 90\n"
                "  stop_grace: 12\n  query_timeout: 20\n%s" % (
                    pool, os.path.join(root, "mnt"), self.node_file,
                    os.path.join(root, "id"), os.path.join(root, "known_hosts"),
                    self.deployment, extra))
        return parse_config(text, source=os.path.join(root, "agent.yml"))

    def test_settings(self):
        """
        The agent gets the started backend of the config (its pool and node
        identity), the deployment path and every tuning key (poll interval,
        parallelism, replication interval, backoff, stop grace, query
        timeout); its default peers are SSH peers to each node's address and
        port.
        """
        fake = self.fake()
        agent = self.successResultOf(agent_from_config(Clock(), self.config(), runner=fake))
        self.assertEqual((agent.backend.pool, agent.backend.capabilities.implementation,
                          agent.deployment_file.path, agent.poll_interval, agent.max_parallel),
                         ("flocker", "zfs-fuse", self.deployment, 2.0, 3))
        self.assertEqual((agent.replication_interval, agent.max_backoff, agent.stop_grace,
                          agent.query_timeout), (45.0, 90.0, 12.0, 20.0))
        with open(self.node_file) as handle:
            self.assertIn(agent.node_uuid, handle.read())
        peer = agent.peer(NodeAddress(uuid=new_id(), address="10.0.0.7", ssh_port=2200))
        self.assertIsInstance(peer, SSHPeer)
        self.assertEqual(repr(peer), "<SSHPeer 10.0.0.7 port 2200>")

    def test_make_peer(self):
        """
        A given ``make_peer`` is used instead of SSH.
        """
        fake = self.fake()
        made = object()
        agent = self.successResultOf(agent_from_config(
            Clock(), self.config(), runner=fake, make_peer=lambda address: made))
        self.assertIs(agent.peer(NodeAddress(uuid=new_id(), address="b.example")), made)

    def test_defaults(self):
        """
        Tuning keys left out of ``agent.yml`` get the agent's defaults.
        """
        fake = self.fake()
        config = parse_config("dataset: {backend: zfs, node_file: %s, mount_root: %s}" % (
            os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())))
        agent = self.successResultOf(agent_from_config(Clock(), config, runner=fake))
        self.assertEqual((agent.poll_interval, agent.max_parallel, agent.replication_interval,
                          agent.max_backoff, agent.stop_grace, agent.query_timeout),
                         (10.0, 4, 60.0, 300.0, 30.0, 60.0))

    def test_missing_pool(self):
        """
        A pool that does not exist fails with ``PoolNotFound``.
        """
        fake = self.fake(pool=None)
        self.failureResultOf(agent_from_config(Clock(), self.config(pool="nowhere"),
                                               runner=fake), PoolNotFound)


class CancelledErrorTests(SynchronousTestCase):
    """
    Stopping while an iteration waits for other nodes cancels it.
    """

    def test_stop_during_iteration(self):
        """
        An iteration waiting for a node's answer is cancelled by
        ``stopService``: the request is cancelled and no change starts.
        """
        cluster = Cluster(self)
        x = new_id()
        cluster.deployment([(x, "a", [], [])])
        cancelled = []
        agent = cluster.lone_agent(StubPeer(
            lambda verb: Deferred(lambda _: cancelled.append(verb))))
        agent.startService()
        self.successResultOf(agent.stopService())
        self.assertEqual(cancelled, [DATASETS])
        cluster.clock.advance(100)
        self.assertEqual(cluster.holding(x), [])
        self.flushLoggedErrors(CancelledError)


@implementer(IPeer)
class SlowPeer(object):
    """
    An ``IPeer`` on a slow link: each answer is what the node had when it
    was asked, delivered ``delay`` clock seconds later.  Streams are not
    delayed; ``streams`` counts them.
    """

    def __init__(self, peer, clock, delay):
        self._peer = peer
        self._clock = clock
        self.delay = delay
        self.address = peer.address
        self.streams = 0

    def call(self, verb, *args):
        answer = Deferred()

        def later(result):
            def deliver():
                if not answer.called:  # not cancelled meanwhile
                    answer.callback(result)
            self._clock.callLater(self.delay, deliver)
        self._peer.call(verb, *args).addBoth(later)
        return answer

    def stream(self, send_argv, verb, *args, progress=None):
        self.streams += 1
        return self._peer.stream(send_argv, verb, *args, progress=progress)


class ConflictTests(SynchronousTestCase):
    """
    A split brain made by deployment files that disagree: both nodes create
    the dataset; once the files agree, the node that is not the primary
    makes its copy read-only, keeping it, and the agents say so until the
    operator destroys it.
    """

    def slow(self, cluster, delay=1.0):
        """Every link of ``cluster`` answers ``delay`` seconds late."""
        for source in cluster.nodes:
            for target in cluster.nodes:
                if source != target:
                    cluster.peers[(source, target + ".example")] = SlowPeer(
                        cluster.nodes[source].peer(target + ".example"), cluster.clock, delay)

    def sampled(self, cluster, x, seconds, step=0.25):
        """
        Advance ``seconds`` in steps, sampling where ``x`` is writable.

        :return: ``[(time, writable node names)]``.
        """
        samples = []
        for _ in range(int(seconds / step)):
            cluster.clock.advance(step)
            samples.append((cluster.clock.seconds(), cluster.writable(x)))
        return samples

    @capture_logging(None)
    def test_disagreeing_files(self, logger):
        """
        ``a``'s file names ``a`` as the primary of a new dataset and ``b``'s
        names ``b``; each asks the other before the other's create finishes
        (also when asked again right before creating), so both create.
        While the files disagree both stay writable, and both agents report
        the split brain.  Once ``a``'s file names ``b`` too, ``a`` makes its
        copy read-only: from then on at every sampled instant exactly one
        copy (``b``'s) is writable, never none; ``a``'s copy keeps what was
        written on it and is never pushed over though ``a`` is a wanted
        replica.  After the operator destroys it, ``b`` replicates to ``a``.
        """
        cluster = Cluster(self)
        self.slow(cluster)
        x = new_id()
        cluster.deployment([(x, "a", [], [])], on="a")
        cluster.deployment([(x, "b", [], [])], on="b")
        cluster.start()
        early = self.sampled(cluster, x, 3)
        self.assertEqual(early[-1][1], ["a", "b"])
        created = min(when for when, writable in early if writable)
        for name in ("a", "b"):
            cluster.path_of(name, x, "f").setContent(b"written on " + name.encode("ascii"))
        still = self.sampled(cluster, x, 5)
        self.assertEqual({tuple(writable) for _, writable in still}, {("a", "b")})
        reported = {m.message["task_uuid"]: m.message for m in
                    LoggedMessage.of_type(logger.messages, "flocker_zfs:agent:conflict")}
        self.assertTrue(reported)
        for message in reported.values():
            self.assertEqual(message["writable"], sorted([cluster.uuid("a"), cluster.uuid("b")]))
            self.assertIn("split brain", message["reason"])

        agreed = [(x, "b", ["a"], [])]
        cluster.deployment(agreed, on="a")
        cluster.deployment(agreed, on="b")
        later = self.sampled(cluster, x, 10)
        settled = min(when for when, writable in later if writable == ["b"])
        self.assertLess(settled, cluster.clock.seconds() - 5)
        for when, writable in early + still + later:
            if when >= created:
                self.assertTrue(writable, when)
            if when >= settled:
                self.assertEqual(writable, ["b"], when)
        kept = cluster.dataset("a", x)
        self.assertEqual((kept.owner, kept.writable, kept.snapshots[-1].name[:17]),
                         (cluster.uuid("a"), False, "flocker-conflict-"))
        self.assertEqual((cluster.path_of("a", x, "f").getContent(),
                          cluster.path_of("b", x, "f").getContent()),
                         (b"written on a", b"written on b"))
        self.assertEqual(cluster.peers[("b", "a.example")].streams, 0)
        demoted = [m.message for m in
                   LoggedMessage.of_type(logger.messages, "flocker_zfs:agent:conflict")
                   if m.message["conflict_copies"]]
        self.assertEqual({(m["conflict_copies"][0], m["keeper"]) for m in demoted},
                         {(cluster.uuid("a"), cluster.uuid("b"))})
        self.assertIn("`flocker-zfs destroy %s` on that node" % (x,), demoted[-1]["fix"])

        self.successResultOf(cluster.nodes["a"].backend.destroy(x))
        final = self.sampled(cluster, x, 10)
        self.assertEqual({tuple(writable) for _, writable in final}, {("b",)})
        replica = cluster.dataset("a", x)
        self.assertEqual((replica.owner, replica.writable), (cluster.uuid("b"), False))
        self.assertEqual(cluster.path_of("a", x, "f").getContent(), b"written on b")

    @capture_logging(None)
    def test_iteration_reports_conflict(self, logger):
        """
        The iteration's ``conflicts`` field names each dataset in conflict
        with its description; a cluster without one has none.
        """
        cluster = Cluster(self)
        x = new_id()
        for name in ("a", "b"):
            self.successResultOf(cluster.nodes[name].backend.create(x))
        cluster.deployment([(x, "a", [], [])])
        cluster.start("b")
        iterations = LoggedAction.of_type(logger.messages, AGENT_ITERATION)
        self.assertIn("split brain: dataset %s" % (x,),
                      iterations[0].end_message["conflicts"][x])
        self.assertEqual(cluster.writable(x), ["a"])
        cluster.advance()
        iterations = LoggedAction.of_type(logger.messages, AGENT_ITERATION)
        self.assertIn("the copy on node %s was made read-only" % (cluster.uuid("b"),),
                      iterations[-1].end_message["conflicts"][x])

    @capture_logging(None)
    def test_create_withdrawn_after_file_change(self, logger):
        """
        The file read again right before creating names another primary
        now: nothing is created, and the create fails saying why.
        """
        cluster = Cluster(self)
        self.slow(cluster)
        x = new_id()
        cluster.deployment([(x, "a", [], [])])
        cluster.start("a")
        cluster.clock.advance(0.5)
        cluster.deployment([(x, "b", [], [])])
        cluster.clock.advance(0.5)
        self.assertEqual(cluster.holding(x), [])
        [create] = LoggedAction.of_type(logger.messages, CHANGE_CREATE)
        self.assertFalse(create.succeeded)
        self.assertIn("no longer names this node as its primary", create.end_message["reason"])

    @capture_logging(None)
    def test_create_withdrawn_when_created_elsewhere(self, logger):
        """
        A node that created the dataset after answering is asked again right
        before creating: this node does not create it.
        """
        cluster = Cluster(self)
        self.slow(cluster)
        x = new_id()
        cluster.deployment([(x, "a", [], [])])
        cluster.start("a")
        cluster.clock.advance(0.5)
        self.successResultOf(cluster.nodes["b"].backend.create(x))
        self.sampled(cluster, x, 2)
        self.assertEqual(cluster.writable(x), ["b"])
        [create] = LoggedAction.of_type(logger.messages, CHANGE_CREATE)
        self.assertIn("node %s holds a copy now" % (cluster.uuid("b"),),
                      create.end_message["reason"])

    def test_files_naming_each_other(self):
        """
        Both copies writable while ``a``'s file names ``b`` as the primary
        and ``b``'s names ``a``: the first node to demote makes its copy
        read-only; the other, asking right before its own demotion, finds
        that copy read-only and keeps its own.  One copy stays writable,
        the other is kept read-only.
        """
        cluster = Cluster(self)
        x = new_id()
        for name in ("a", "b"):
            self.successResultOf(cluster.nodes[name].backend.create(x))
        cluster.deployment([(x, "b", [], [])], on="a")
        cluster.deployment([(x, "a", [], [])], on="b")
        cluster.start()
        cluster.advance(3)
        self.assertEqual(cluster.writable(x), ["b"])
        self.assertEqual(cluster.dataset("a", x).snapshots[-1].name[:17], "flocker-conflict-")
        self.assertEqual(cluster.dataset("b", x).snapshots, [])
