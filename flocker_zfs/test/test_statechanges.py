"""
Tests for :mod:`flocker_zfs._statechanges`: plans run against the nodes of a
:class:`~flocker_zfs.testing.FakeNetwork`, checked by what a user sees
(where the dataset is writable, what its files hold).
"""

import os
import uuid

from eliot.testing import LoggedAction, assertHasAction, capture_logging
from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from .._actions import (
    CHANGE_CREATE, CHANGE_DELETE, CHANGE_HANDOFF, CHANGE_IN_PARALLEL, CHANGE_PUSH,
    CHANGE_RECOVER, CHANGE_RESIZE, CHANGE_SEQUENTIALLY, CREATE, HANDOFF, PUSH)
from .._deployer import ClusterState, calculate_changes, discover_state
from .._deployment import DesiredDataset, Deployment, NodeAddress
from .._replication import Replicator, SimulatedCrash
from .._conflict import CONFLICT_PREFIX, is_conflict_copy
from .._statechanges import (
    CHANGE_DEMOTE, ChangeContext, CreateDataset, CreateWithdrawn, DeleteDataset,
    DemoteDataset, HandoffDataset, InParallel, IStateChange, PushDataset, RecoverHandoff,
    ResizeDataset, Sequentially, run_state_change)
from ..errors import (
    DatasetNotFound, ForeignSnapshots, NotOwner, PeerUnreachable, TransferFailed)
from ..testing import FakeNetwork

MiB = 1024 * 1024


@implementer(IStateChange)
class Recorded(object):
    """
    A stand-in change that records its runs and answers with ``result``.
    """

    def __init__(self, log, name, result=None):
        self.log, self.name, self.result = log, name, result
        self.dataset_id = None

    @property
    def eliot_action(self):
        from eliot import start_action
        return start_action(action_type="test:recorded", name=self.name)

    def run(self, context):
        self.log.append(self.name)
        if isinstance(self.result, Exception):
            return fail(self.result)
        if self.result is None:
            return succeed(None)
        return self.result


def nested_types(action):
    """
    :return: the action types of the actions nested anywhere in ``action``.
    """
    return [c.start_message["action_type"] for c in action.descendants()
            if isinstance(c, LoggedAction)]


class NetworkCase(SynchronousTestCase):
    """
    Nodes ``a`` and ``b`` of a fake network, and helpers that compute and run
    each node's plan.
    """

    def setUp(self):
        self.network = FakeNetwork(os.path.abspath(self.mktemp()))
        self.addCleanup(self.network.unmount_all)
        self.a = self.network.add_node("a.example")
        self.b = self.network.add_node("b.example")
        self.dataset_id = str(uuid.uuid4())

    def by_uuid(self, node_uuid):
        return [n for n in self.network.nodes.values() if n.node_uuid == node_uuid][0]

    def context(self, node):
        return ChangeContext(
            backend=node.backend, replicator=node.replicator,
            peer=lambda node_uuid: node.peer(self.by_uuid(node_uuid).address))

    def deployment(self, primary, replicas=(), deleted=False, maximum_size=None):
        return Deployment(
            nodes={n.node_uuid: NodeAddress(uuid=n.node_uuid, address=n.address)
                   for n in self.network.nodes.values()},
            datasets={self.dataset_id: DesiredDataset(
                dataset_id=self.dataset_id, primary=primary.node_uuid,
                replicas=[r.node_uuid for r in replicas], deleted=deleted,
                maximum_size=maximum_size)})

    def state(self, node):
        return self.successResultOf(
            discover_state(node.backend, open_files=lambda path: succeed([])))

    def plan(self, node, desired):
        states = {n.node_uuid: self.state(n) for n in self.network.nodes.values()}
        return calculate_changes(desired, ClusterState(nodes=states), states[node.node_uuid])

    def converge(self, desired, rounds=3):
        """
        Run every node's plan, round after round, until all are empty.
        """
        for _ in range(rounds):
            plans = [(n, self.plan(n, desired)) for n in self.network.nodes.values()]
            if not any(plan.changes for _, plan in plans):
                return
            for node, plan in plans:
                self.successResultOf(run_state_change(plan, self.context(node)))
        self.fail("no convergence after %d rounds" % (rounds,))

    def dataset(self, node):
        return self.successResultOf(node.backend.discover()).datasets.get(self.dataset_id)

    def write(self, node, data):
        node.backend.path(self.dataset_id).child("f").setContent(data)

    def read(self, node):
        return node.backend.path(self.dataset_id).child("f").getContent()

    def writable(self):
        return sorted(n.address for n in self.network.nodes.values()
                      if self.dataset(n) is not None and self.dataset(n).writable)


class RecordTests(SynchronousTestCase):
    """
    The change records provide :class:`IStateChange`.
    """

    def test_interface(self):
        """
        Every record provides the interface.
        """
        d = str(uuid.uuid4())
        n = str(uuid.uuid4())
        for change in [CreateDataset(dataset_id=d), ResizeDataset(dataset_id=d),
                       PushDataset(dataset_id=d, node_uuid=n),
                       HandoffDataset(dataset_id=d, node_uuid=n),
                       RecoverHandoff(dataset_id=d, node_uuid=n), DeleteDataset(dataset_id=d),
                       DemoteDataset(dataset_id=d, node_uuid=n),
                       Sequentially(changes=[], dataset_id=d), InParallel(changes=[])]:
            self.assertTrue(verifyObject(IStateChange, change), change)

    def test_validated(self):
        """
        Records refuse ids that are not UUIDs and members that are not changes.
        """
        from pyrsistent import InvariantException
        with self.assertRaises(InvariantException):
            CreateDataset(dataset_id="../etc")
        with self.assertRaises(InvariantException):
            PushDataset(dataset_id=str(uuid.uuid4()), node_uuid="b.example")
        with self.assertRaises(InvariantException):
            InParallel(changes=["create"])


class CreateAndPushTests(NetworkCase):
    """
    Creating on the primary and replicating to the wanted replicas.
    """

    def test_create_plan_then_push(self):
        """
        The primary's plan creates the dataset and pushes it; after a write,
        and a push once the replica is gone, the replica holds the same data.
        """
        desired = self.deployment(self.a, replicas=[self.b], maximum_size=64 * MiB)
        plan = self.plan(self.a, desired)
        self.assertEqual(plan.changes, [Sequentially(dataset_id=self.dataset_id, changes=[
            CreateDataset(dataset_id=self.dataset_id, maximum_size=64 * MiB),
            PushDataset(dataset_id=self.dataset_id, node_uuid=self.b.node_uuid)])])
        self.successResultOf(run_state_change(plan, self.context(self.a)))
        self.assertEqual(self.writable(), ["a.example"])
        self.assertEqual((self.dataset(self.b).owner, self.dataset(self.b).writable),
                         (self.a.node_uuid, False))
        self.assertEqual(self.plan(self.a, desired).changes, [])
        self.assertEqual(self.plan(self.b, desired).changes, [])

    def test_push_carries_data(self):
        """
        Data written after creation reaches the replica through the pushes
        the plan asks for.
        """
        self.successResultOf(run_state_change(
            CreateDataset(dataset_id=self.dataset_id), self.context(self.a)))
        self.write(self.a, b"hello replica")
        desired = self.deployment(self.a, replicas=[self.b])
        plan = self.plan(self.a, desired)
        self.assertEqual(plan.changes, [PushDataset(dataset_id=self.dataset_id,
                                                    node_uuid=self.b.node_uuid)])
        self.successResultOf(run_state_change(plan, self.context(self.a)))
        self.assertEqual(self.read(self.b), b"hello replica")

    def test_resize(self):
        """
        A changed maximum size is applied on the owner.
        """
        self.converge(self.deployment(self.a, maximum_size=8 * MiB))
        self.converge(self.deployment(self.a, maximum_size=16 * MiB))
        self.assertEqual(self.dataset(self.a).maximum_size, 16 * MiB)

    def test_create_fails(self):
        """
        A create that fails (the dataset exists already) fails the change.
        """
        self.successResultOf(self.a.backend.create(self.dataset_id))
        self.failureResultOf(run_state_change(CreateDataset(dataset_id=self.dataset_id),
                                              self.context(self.a)))

    def test_resize_not_owner(self):
        """
        Resizing a replica fails with ``NotOwner``.
        """
        self.successResultOf(self.a.backend.create(self.dataset_id))
        self.successResultOf(self.a.replicator.push(self.dataset_id, self.a.peer("b.example")))
        self.failureResultOf(run_state_change(
            ResizeDataset(dataset_id=self.dataset_id, maximum_size=8 * MiB),
            self.context(self.b)), NotOwner)


class ConfirmCreateTests(NetworkCase):
    """
    ``CreateDataset`` asks the context's ``confirm_create`` right before
    creating.
    """

    def context(self, node, answer=None, asked=None):
        def confirm(dataset_id):
            if asked is not None:
                asked.append(dataset_id)
            return succeed(answer)
        return NetworkCase.context(self, node).set(confirm_create=confirm)

    def test_confirmed(self):
        """
        Confirmed (``None``), the dataset is created after the question.
        """
        asked = []
        self.successResultOf(run_state_change(
            CreateDataset(dataset_id=self.dataset_id), self.context(self.a, asked=asked)))
        self.assertEqual((asked, self.writable()), ([self.dataset_id], ["a.example"]))

    def test_withdrawn(self):
        """
        Given a reason, nothing is created and the change fails with
        ``CreateWithdrawn`` naming the dataset and the reason, stopping the
        pushes that were to follow.
        """
        plan = Sequentially(dataset_id=self.dataset_id, changes=[
            CreateDataset(dataset_id=self.dataset_id),
            PushDataset(dataset_id=self.dataset_id, node_uuid=self.b.node_uuid)])
        failure = self.failureResultOf(run_state_change(
            plan, self.context(self.a, answer="node b holds it now")), CreateWithdrawn)
        self.assertEqual(failure.value.summary(), "not creating dataset %s: node b holds it "
                         "now" % (self.dataset_id,))
        self.assertEqual((self.dataset(self.a), self.dataset(self.b)), (None, None))

    def test_without_confirmation(self):
        """
        A context without ``confirm_create`` creates at once.
        """
        self.successResultOf(run_state_change(CreateDataset(dataset_id=self.dataset_id),
                                              NetworkCase.context(self, self.a)))
        self.assertEqual(self.writable(), ["a.example"])


class DemoteTests(NetworkCase):
    """
    ``DemoteDataset`` makes this node's writable copy read-only, keeping
    everything, when the keeper's copy is writable.
    """

    def both_created(self):
        """
        The split brain: ``a`` and ``b`` each created the dataset and wrote to it.
        """
        for node in (self.a, self.b):
            self.successResultOf(node.backend.create(self.dataset_id))
            self.write(node, b"written on " + node.address.encode("ascii"))
        self.successResultOf(self.a.backend.snapshot(self.dataset_id, "mine"))

    def demote(self, node, keeper):
        return run_state_change(DemoteDataset(dataset_id=self.dataset_id,
                                              node_uuid=keeper.node_uuid), self.context(node))

    def test_demoted(self):
        """
        The copy becomes read-only and a conflict copy, with its files, its
        snapshots and a new ``flocker-conflict-<time>-<keeper>-...``
        snapshot as the newest; the keeper's copy is untouched.
        """
        self.both_created()
        before_b = self.dataset(self.b)
        self.successResultOf(self.demote(self.a, self.b))
        self.assertEqual(self.writable(), ["b.example"])
        mine = self.dataset(self.a)
        self.assertTrue(is_conflict_copy(mine))
        self.assertEqual(mine.owner, self.a.node_uuid)
        self.assertEqual([s.name for s in mine.snapshots][0], "mine")
        self.assertTrue(mine.snapshots[-1].name.startswith(
            CONFLICT_PREFIX + "19700101T000000Z-%s-" % (self.b.node_uuid[:8],)),
            mine.snapshots[-1].name)
        self.assertEqual(self.read(self.a), b"written on a.example")
        self.assertEqual(self.dataset(self.b), before_b)
        self.assertEqual(self.read(self.b), b"written on b.example")

    @capture_logging(None)
    def test_keeper_not_writable(self, logger):
        """
        When the keeper's copy is no longer writable (or gone), nothing is
        changed: the two are never both made read-only through a stale plan.
        """
        self.successResultOf(self.a.backend.create(self.dataset_id))
        self.successResultOf(self.demote(self.a, self.b))
        self.successResultOf(self.a.replicator.push(self.dataset_id, self.a.peer("b.example")))
        self.successResultOf(self.demote(self.a, self.b))
        self.assertEqual(self.writable(), ["a.example"])
        self.assertEqual(self.dataset(self.a).snapshots[-1].name[:13], "flocker-push-")
        outcomes = [a.end_message["outcome"]
                    for a in LoggedAction.of_type(logger.messages, CHANGE_DEMOTE)]
        self.assertEqual(outcomes, ["keeper not writable"] * 2)

    @capture_logging(None)
    def test_already_read_only(self, logger):
        """
        A copy that is read-only by now (handed off since the plan) is left
        as it is, without asking the keeper.
        """
        self.successResultOf(self.a.backend.create(self.dataset_id))
        self.successResultOf(self.a.replicator.handoff(self.dataset_id,
                                                       self.a.peer("b.example")))
        before = self.dataset(self.a)
        self.network.partition("b.example")
        self.successResultOf(self.demote(self.a, self.b))
        self.assertEqual(self.dataset(self.a), before)
        self.assertFalse(is_conflict_copy(before))
        action = assertHasAction(self, logger, CHANGE_DEMOTE, True, startFields={
            "dataset_id": self.dataset_id, "node_uuid": self.b.node_uuid})
        self.assertEqual(action.end_message["outcome"], "already read-only")

    def test_keeper_unreachable(self):
        """
        An unreachable keeper fails the change; the copy stays writable.
        """
        self.both_created()
        self.network.partition("b.example")
        self.failureResultOf(self.demote(self.a, self.b), PeerUnreachable)
        self.assertEqual(self.writable(), ["a.example", "b.example"])

    def test_plan_settles_split_brain(self):
        """
        Both nodes' plans run: ``a``, which is not the desired primary,
        demotes its copy; ``b`` keeps writing; nothing is sent between them,
        and later plans are empty (the conflict copy is left to the operator).
        """
        self.both_created()
        desired = self.deployment(self.b, replicas=[self.a])
        self.converge(desired)
        self.assertEqual(self.writable(), ["b.example"])
        self.assertTrue(is_conflict_copy(self.dataset(self.a)))
        self.assertEqual((self.read(self.a), self.read(self.b)),
                         (b"written on a.example", b"written on b.example"))
        self.assertEqual((self.plan(self.a, desired).changes,
                          self.plan(self.b, desired).changes), ([], []))


class MoveTests(NetworkCase):
    """
    Changing the primary moves the dataset with its data.
    """

    def test_handoff_to_new_primary(self):
        """
        After the plan computed for ``a`` with primary ``b`` runs, ``b`` owns
        the dataset with ``a``'s data and ``a`` keeps a read-only replica.
        """
        self.converge(self.deployment(self.a, replicas=[self.b]))
        self.write(self.a, b"data from a")
        desired = self.deployment(self.b, replicas=[self.b])
        plan = self.plan(self.a, desired)
        self.assertEqual(plan.changes, [HandoffDataset(dataset_id=self.dataset_id,
                                                       node_uuid=self.b.node_uuid)])
        self.successResultOf(run_state_change(plan, self.context(self.a)))
        self.assertEqual(self.writable(), ["b.example"])
        self.assertEqual(self.read(self.b), b"data from a")
        self.assertEqual((self.dataset(self.a).owner, self.dataset(self.a).writable),
                         (self.b.node_uuid, False))
        self.assertEqual([self.plan(n, desired).changes for n in (self.a, self.b)], [[], []])

    def test_handoff_and_back_converges(self):
        """
        Moving to ``b`` and back to ``a`` converges with the last data.
        """
        self.converge(self.deployment(self.a))
        self.converge(self.deployment(self.b))
        self.write(self.b, b"written on b")
        self.converge(self.deployment(self.a, replicas=[self.b]))
        self.assertEqual(self.writable(), ["a.example"])
        self.assertEqual((self.read(self.a), self.read(self.b)),
                         (b"written on b", b"written on b"))

    def test_handoff_unreachable(self):
        """
        A handoff to a node that does not answer fails; ``a`` stays writable.
        """
        self.converge(self.deployment(self.a))
        self.network.partition("b.example")
        self.failureResultOf(run_state_change(
            HandoffDataset(dataset_id=self.dataset_id, node_uuid=self.b.node_uuid),
            self.context(self.a)), PeerUnreachable)
        self.assertEqual(self.writable(), ["a.example"])

    def interrupted(self, step):
        self.converge(self.deployment(self.a))
        self.write(self.a, b"before the crash")

        def faults(name):
            if name == step:
                raise SimulatedCrash(name)
        crashing = Replicator(self.a.backend, self.network.clock, faults=faults)
        self.failureResultOf(crashing.handoff(self.dataset_id, self.a.peer("b.example")),
                             SimulatedCrash)
        self.assertIsNotNone(self.dataset(self.a).handoff)

    def test_recover_finishes(self):
        """
        An interrupted handoff to the desired primary is finished by the
        recovery the plan asks for.
        """
        self.interrupted("acquire-marked")
        desired = self.deployment(self.b)
        plan = self.plan(self.a, desired)
        self.assertEqual(plan.changes, [RecoverHandoff(
            dataset_id=self.dataset_id, node_uuid=self.b.node_uuid, abort=False)])
        self.successResultOf(run_state_change(plan, self.context(self.a)))
        self.assertEqual(self.writable(), ["b.example"])
        self.assertEqual(self.read(self.b), b"before the crash")
        self.assertIsNone(self.dataset(self.a).handoff)

    def test_recover_aborts(self):
        """
        An interrupted handoff away from the desired primary (before any
        acquire) is aborted: the data is writable here again.
        """
        self.interrupted("readonly")
        desired = self.deployment(self.a)
        plan = self.plan(self.a, desired)
        self.assertEqual(plan.changes, [RecoverHandoff(
            dataset_id=self.dataset_id, node_uuid=self.b.node_uuid, abort=True)])
        self.successResultOf(run_state_change(plan, self.context(self.a)))
        self.assertEqual(self.writable(), ["a.example"])
        self.assertEqual(self.read(self.a), b"before the crash")
        self.assertEqual(self.plan(self.a, desired).changes, [])


class DeleteTests(NetworkCase):
    """
    Deleted datasets go from every node.
    """

    def test_delete_everywhere(self):
        """
        Each node's plan deletes its own copy; afterwards no node has it.
        """
        self.converge(self.deployment(self.a, replicas=[self.b]))
        self.assertIsNotNone(self.dataset(self.b))
        desired = self.deployment(self.a, replicas=[self.b], deleted=True)
        for node in (self.a, self.b):
            self.assertEqual(self.plan(node, desired).changes,
                             [DeleteDataset(dataset_id=self.dataset_id)])
        self.converge(desired)
        self.assertEqual((self.dataset(self.a), self.dataset(self.b)), (None, None))
        self.assertFalse(self.a.backend.path(self.dataset_id).exists())

    def test_already_gone(self):
        """
        Deleting a dataset that is already gone succeeds.
        """
        self.successResultOf(run_state_change(DeleteDataset(dataset_id=self.dataset_id),
                                              self.context(self.a)))

    def test_foreign_snapshots_kept(self):
        """
        A dataset with a snapshot flocker-zfs did not take is not destroyed:
        the change fails and the data stays.
        """
        self.successResultOf(self.a.backend.create(self.dataset_id))
        self.write(self.a, b"keep")
        self.successResultOf(self.a.fake.run(
            ["zfs", "snapshot", "flocker/%s@users" % (self.dataset_id,)]))
        self.failureResultOf(run_state_change(DeleteDataset(dataset_id=self.dataset_id),
                                              self.context(self.a)), ForeignSnapshots)
        self.assertEqual(self.read(self.a), b"keep")


class CompositionTests(NetworkCase):
    """
    Tests for :class:`Sequentially` and :class:`InParallel`.
    """

    def test_sequentially_stops(self):
        """
        ``Sequentially`` stops at the first failure and fails with it.
        """
        log = []
        change = Sequentially(changes=[Recorded(log, "one"),
                                       Recorded(log, "two", NotOwner("no")),
                                       Recorded(log, "three")])
        self.failureResultOf(run_state_change(change, None), NotOwner)
        self.assertEqual(log, ["one", "two"])

    def test_sequentially_waits(self):
        """
        ``Sequentially`` starts a change only when the previous one is done.
        """
        log, first = [], Deferred()
        d = run_state_change(Sequentially(changes=[Recorded(log, "one", first),
                                                   Recorded(log, "two")]), None)
        self.assertEqual(log, ["one"])
        first.callback(None)
        self.assertEqual(log, ["one", "two"])
        self.assertIsNone(self.successResultOf(d))

    def test_in_parallel_runs_all(self):
        """
        ``InParallel`` starts every change, waits for all, then fails with the
        first failure; the later failure is consumed, not left unhandled.
        """
        log, slow = [], Deferred()
        d = run_state_change(InParallel(changes=[
            Recorded(log, "one", slow), Recorded(log, "two", NotOwner("first")),
            Recorded(log, "three", PeerUnreachable("c.example"))]), None)
        self.assertEqual(log, ["one", "two", "three"])
        self.assertNoResult(d)
        slow.callback(None)
        self.failureResultOf(d, NotOwner)

    def test_in_parallel_empty(self):
        """
        An empty plan succeeds at once.
        """
        self.assertIsNone(self.successResultOf(run_state_change(InParallel(changes=[]), None)))

    def test_real_failure_does_not_stop_others(self):
        """
        One dataset's push failing (its replica node unreachable) does not
        stop another dataset's create; the whole plan fails with the push's
        error.
        """
        self.successResultOf(self.a.backend.create(self.dataset_id))
        other = str(uuid.uuid4())
        self.network.partition("b.example")
        d = run_state_change(InParallel(changes=[
            PushDataset(dataset_id=self.dataset_id, node_uuid=self.b.node_uuid),
            CreateDataset(dataset_id=other)]), self.context(self.a))
        self.failureResultOf(d, PeerUnreachable)
        self.assertIn(other, self.successResultOf(self.a.backend.discover()).datasets)

    def test_sequence_on_network(self):
        """
        In a ``Sequentially``, a failed push stops the resize after it.
        """
        self.successResultOf(self.a.backend.create(self.dataset_id))
        self.network.cut_next_stream("b.example", 10)
        d = run_state_change(Sequentially(dataset_id=self.dataset_id, changes=[
            PushDataset(dataset_id=self.dataset_id, node_uuid=self.b.node_uuid),
            ResizeDataset(dataset_id=self.dataset_id, maximum_size=8 * MiB)]),
            self.context(self.a))
        self.failureResultOf(d, TransferFailed)
        self.assertIsNone(self.dataset(self.a).maximum_size)

    def test_sync_raise_becomes_failure(self):
        """
        A change whose ``run`` raises gives a failed Deferred, never a raise.
        """
        @implementer(IStateChange)
        class Raising(object):
            eliot_action = None

            def run(self, context):
                raise DatasetNotFound()
        self.failureResultOf(run_state_change(Raising(), None), DatasetNotFound)


class LoggingTests(NetworkCase):
    """
    Each change is an eliot action with its inputs; the backend's and
    replicator's actions nest inside.
    """

    @capture_logging(None)
    def test_create_action(self, logger):
        """
        ``CreateDataset`` logs ``CHANGE_CREATE`` with the dataset id and size,
        containing the backend's create.
        """
        self.successResultOf(run_state_change(
            CreateDataset(dataset_id=self.dataset_id, maximum_size=8 * MiB),
            self.context(self.a)))
        action = assertHasAction(self, logger, CHANGE_CREATE, True, startFields={
            "dataset_id": self.dataset_id, "maximum_size": 8 * MiB})
        self.assertIn(CREATE, nested_types(action))

    @capture_logging(None)
    def test_plan_actions(self, logger):
        """
        Running a plan logs the parallel, sequential and push actions nested.
        """
        desired = self.deployment(self.a, replicas=[self.b])
        self.successResultOf(run_state_change(self.plan(self.a, desired),
                                              self.context(self.a)))
        [top] = LoggedAction.of_type(logger.messages, CHANGE_IN_PARALLEL)
        [sequence] = [c for c in top.children if isinstance(c, LoggedAction)]
        self.assertEqual(sequence.start_message["action_type"], CHANGE_SEQUENTIALLY)
        self.assertEqual([c.start_message["action_type"] for c in sequence.children
                          if isinstance(c, LoggedAction)], [CHANGE_CREATE, CHANGE_PUSH])
        push = assertHasAction(self, logger, CHANGE_PUSH, True, startFields={
            "dataset_id": self.dataset_id, "node_uuid": self.b.node_uuid})
        self.assertIn(PUSH, nested_types(push))

    @capture_logging(None)
    def test_handoff_and_delete_actions(self, logger):
        """
        Handoff and delete log their actions with their inputs.
        """
        self.converge(self.deployment(self.a))
        self.successResultOf(run_state_change(
            HandoffDataset(dataset_id=self.dataset_id, node_uuid=self.b.node_uuid),
            self.context(self.a)))
        handoff = assertHasAction(self, logger, CHANGE_HANDOFF, True, startFields={
            "dataset_id": self.dataset_id, "node_uuid": self.b.node_uuid})
        self.assertIn(HANDOFF, nested_types(handoff))
        self.successResultOf(run_state_change(DeleteDataset(dataset_id=self.dataset_id),
                                              self.context(self.a)))
        assertHasAction(self, logger, CHANGE_DELETE, True,
                        startFields={"dataset_id": self.dataset_id})

    @capture_logging(None)
    def test_failure_logged(self, logger):
        """
        A failed change's action ends failed, naming the error; a resize and
        recovery log their inputs.
        """
        self.failureResultOf(run_state_change(
            ResizeDataset(dataset_id=self.dataset_id, maximum_size=8 * MiB),
            self.context(self.a)), DatasetNotFound)
        assertHasAction(self, logger, CHANGE_RESIZE, False, startFields={
            "dataset_id": self.dataset_id, "maximum_size": 8 * MiB})
        self.failureResultOf(run_state_change(
            RecoverHandoff(dataset_id=self.dataset_id, node_uuid=self.b.node_uuid),
            self.context(self.a)), DatasetNotFound)
        assertHasAction(self, logger, CHANGE_RECOVER, False, startFields={
            "dataset_id": self.dataset_id, "node_uuid": self.b.node_uuid, "abort": False})
        for message in logger.messages:
            if message.get("exception"):
                break
        else:
            self.fail("no failure logged")
        logger.flushTracebacks(DatasetNotFound)

    @capture_logging(None)
    def test_parallel_failures_logged(self, logger):
        """
        Every failure of an ``InParallel`` is logged, not only the first.
        """
        log = []
        self.failureResultOf(run_state_change(InParallel(changes=[
            Recorded(log, "one", NotOwner("first")),
            Recorded(log, "two", PeerUnreachable("c.example"))]), None), NotOwner)
        reasons = [m["reason"] for m in logger.messages
                   if m.get("message_type") == "flocker_zfs:change:failed"]
        self.assertEqual(len(reasons), 2)
        self.assertIn("peer unreachable: c.example", reasons[1])
        assertHasAction(self, logger, CHANGE_IN_PARALLEL, False)
        logger.flushTracebacks(NotOwner)
        logger.flushTracebacks(PeerUnreachable)

    @capture_logging(None)
    def test_nesting_after_async_step(self, logger):
        """
        A change that starts after an earlier one finished asynchronously
        (fired from outside any action) still nests in its ``Sequentially``
        and ``InParallel``, and so do the failure messages.
        """
        log, first = [], Deferred()
        d = run_state_change(InParallel(changes=[Sequentially(
            dataset_id=self.dataset_id,
            changes=[Recorded(log, "wait", first),
                     CreateDataset(dataset_id=self.dataset_id),
                     CreateDataset(dataset_id=self.dataset_id)])]), self.context(self.a))
        first.callback(None)  # outside any eliot action
        self.failureResultOf(d)
        [sequence] = LoggedAction.of_type(logger.messages, CHANGE_SEQUENTIALLY)
        self.assertEqual([c.start_message["action_type"] for c in sequence.children
                          if isinstance(c, LoggedAction)], [CHANGE_CREATE, CHANGE_CREATE])
        [parallel] = LoggedAction.of_type(logger.messages, CHANGE_IN_PARALLEL)
        self.assertIn("flocker_zfs:change:failed",
                      [m.message.get("message_type") for m in parallel.children
                       if not isinstance(m, LoggedAction)])
        logger.flushTracebacks(Exception)
