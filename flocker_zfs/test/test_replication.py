"""
Tests for :mod:`flocker_zfs._replication`: push and handoff between nodes of
a :class:`~flocker_zfs.testing.FakeNetwork`, with faults.

After every scenario the promises are checked: at most one writable copy
(exactly one when settled), and the data on the owner is what was written.
"""

import os
import uuid

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from .._protocol import ProtocolError, RemoteError
from .._replication import (
    STEPS, HandoffInDoubt, NoCommonSnapshot, PeerIsOwner, ReplicaDiverged, Replicator,
    SimulatedCrash)
from ..errors import DatasetInUse, NotOwner, PeerUnreachable, TransferFailed
from ..testing import FakeNetwork


class ReplicationCase(SynchronousTestCase):
    """
    Two nodes, ``a`` and ``b``, with one dataset created on ``a``.
    """

    profile = "zfs-fuse"

    def setUp(self):
        self.network = FakeNetwork(os.path.abspath(self.mktemp()))
        self.addCleanup(self.network.unmount_all)
        self.a = self.network.add_node("a.example", profile=self.profile)
        self.b = self.network.add_node("b.example", profile=self.profile)
        self.dataset_id = str(uuid.uuid4())
        self.successResultOf(self.a.backend.create(self.dataset_id))

    def write(self, node, name, data):
        node.backend.path(self.dataset_id).child(name).setContent(data)

    def read(self, node, name):
        return node.backend.path(self.dataset_id).child(name).getContent()

    def dataset(self, node):
        return self.successResultOf(node.backend.discover()).datasets.get(self.dataset_id)

    def writable(self):
        """
        :return: addresses of the nodes where the dataset is writable.
        """
        return sorted(node.address for node in self.network.nodes.values()
                      if self.dataset(node) is not None and self.dataset(node).writable)

    def push(self, source, target):
        return self.successResultOf(source.replicator.push(self.dataset_id,
                                                           source.peer(target.address)))


class PushTests(ReplicationCase):
    """
    Tests for :meth:`Replicator.push`.
    """

    def test_first_push_full(self):
        """
        The first push sends a full stream; the peer holds a read-only,
        mounted replica with the same data, owned by the source.
        """
        self.write(self.a, "f", b"hello")
        result = self.push(self.a, self.b)
        replica = self.dataset(self.b)
        self.assertEqual((result.base, replica.writable, replica.owner, replica.mounted),
                         (None, False, self.a.node_uuid, True))
        self.assertEqual(self.read(self.b, "f"), b"hello")
        self.assertEqual(self.writable(), ["a.example"])

    def test_incremental(self):
        """
        Later pushes are incrementals from the peer's newest snapshot.
        """
        self.write(self.a, "f", b"one")
        first = self.push(self.a, self.b)
        self.write(self.a, "f", b"two")
        second = self.push(self.a, self.b)
        self.assertEqual(second.base, first.snapshot)
        self.assertEqual(self.read(self.b, "f"), b"two")

    def test_retention(self):
        """
        After many pushes each side keeps only what replication needs (the
        newest snapshot, which is the base), and never a snapshot it did not
        take.
        """
        self.successResultOf(self.a.backend.snapshot(self.dataset_id, "mine"))
        for i in range(4):
            self.write(self.a, "f", b"%d" % (i,))
            last = self.push(self.a, self.b)
        names = [s.name for s in self.dataset(self.a).snapshots]
        self.assertEqual(names, ["mine", last.snapshot])
        self.assertEqual([s.name for s in self.dataset(self.b).snapshots], [last.snapshot])

    def test_push_from_replica(self):
        """
        Only the owner pushes: a replica refuses with ``NotOwner``.
        """
        self.push(self.a, self.b)
        self.failureResultOf(self.b.replicator.push(self.dataset_id, self.b.peer("a.example")),
                             NotOwner)

    def test_foreign_dataset_at_name(self):
        """
        A foreign dataset where the replica would go is refused by the peer
        and left alone.
        """
        self.successResultOf(self.b.fake.run(["zfs", "create", "flocker/" + self.dataset_id]))
        before = self.b.fake.snapshot_state()
        failure = self.failureResultOf(
            self.a.replicator.push(self.dataset_id, self.a.peer("b.example")), RemoteError)
        self.assertEqual(failure.value.name, "NotManaged")
        self.assertEqual(self.b.fake.snapshot_state(), before)

    def test_peer_owns(self):
        """
        A peer holding its own writable copy is never pushed over.
        """
        self.successResultOf(self.b.backend.create(self.dataset_id))
        self.failureResultOf(self.a.replicator.push(self.dataset_id, self.a.peer("b.example")),
                             PeerIsOwner)

    def test_diverged(self):
        """
        A replica with a snapshot newer than the common base is refused with
        ``ReplicaDiverged``; nothing is rolled back.
        """
        self.push(self.a, self.b)
        self.successResultOf(self.b.fake.run(
            ["zfs", "snapshot", "flocker/%s@extra" % (self.dataset_id,)]))
        self.failureResultOf(self.a.replicator.push(self.dataset_id, self.a.peer("b.example")),
                             ReplicaDiverged)
        self.assertIn("extra", [s.name for s in self.dataset(self.b).snapshots])

    def test_no_common_snapshot(self):
        """
        A replica from another lineage (same id, different GUIDs) is refused
        with ``NoCommonSnapshot`` and never destroyed.
        """
        c = self.network.add_node("c.example", profile=self.profile)
        self.push(self.a, self.b)
        # b's replica now comes from a; give c an unrelated copy at the same id.
        self.successResultOf(c.backend.create(self.dataset_id))
        self.successResultOf(c.backend.snapshot(self.dataset_id, "own"))
        self.successResultOf(c.fake.run(["zfs", "set", "readonly=on",
                                         "flocker/" + self.dataset_id]))
        self.failureResultOf(self.a.replicator.push(self.dataset_id, self.a.peer("c.example")),
                             NoCommonSnapshot)
        self.assertIsNotNone(self.dataset(c))

    def test_cut_stream_then_retry(self):
        """
        A stream cut mid-way fails on the transport side, leaves the replica
        at its last complete snapshot, and the next push completes.
        """
        self.write(self.a, "f", b"one")
        first = self.push(self.a, self.b)
        self.write(self.a, "f", b"two" * 1000)
        self.network.cut_next_stream("b.example", 100)
        failure = self.failureResultOf(
            self.a.replicator.push(self.dataset_id, self.a.peer("b.example")), TransferFailed)
        self.assertEqual(failure.value.side, "transport")
        self.assertEqual([s.name for s in self.dataset(self.b).snapshots], [first.snapshot])
        self.assertEqual(self.read(self.b, "f"), b"one")
        self.push(self.a, self.b)
        self.assertEqual(self.read(self.b, "f"), b"two" * 1000)

    def test_unreachable(self):
        """
        An unreachable peer fails with ``PeerUnreachable`` and changes
        nothing here.
        """
        before = self.a.fake.snapshot_state()
        self.network.partition("b.example")
        self.failureResultOf(self.a.replicator.push(self.dataset_id, self.a.peer("b.example")),
                             PeerUnreachable)
        self.assertEqual(self.a.fake.snapshot_state(), before)


class HandoffTests(ReplicationCase):
    """
    Tests for :meth:`Replicator.handoff` and :meth:`Replicator.recover`.
    """

    def handoff(self, source, target):
        return self.successResultOf(source.replicator.handoff(
            self.dataset_id, source.peer(target.address)))

    def test_handoff(self):
        """
        After a handoff the peer is the one writable owner at the next
        generation with all the data; this node keeps a read-only replica.
        """
        self.write(self.a, "f", b"data")
        result = self.handoff(self.a, self.b)
        a, b = self.dataset(self.a), self.dataset(self.b)
        self.assertEqual(self.writable(), ["b.example"])
        self.assertEqual((b.owner, b.generation, a.owner, a.generation, a.handoff),
                         (self.b.node_uuid, 2, self.b.node_uuid, 2, None))
        self.assertEqual(self.read(self.b, "f"), b"data")
        self.assertEqual(result.generation, 2)
        self.assertTrue(result.unwritable >= 0)
        self.assertTrue(result.rounds >= 1)

    def test_handoff_back(self):
        """
        A second handoff moves it back, with what the peer wrote.
        """
        self.handoff(self.a, self.b)
        self.write(self.b, "g", b"from b")
        self.handoff(self.b, self.a)
        self.assertEqual(self.writable(), ["a.example"])
        self.assertEqual(self.read(self.a, "g"), b"from b")
        self.assertEqual(self.dataset(self.a).generation, 3)

    def test_repeat_is_noop(self):
        """
        Repeating a completed handoff does nothing and succeeds.
        """
        self.handoff(self.a, self.b)
        before = (self.a.fake.snapshot_state(), self.b.fake.snapshot_state())
        result = self.handoff(self.a, self.b)
        self.assertTrue(result.already)
        self.assertEqual((self.a.fake.snapshot_state(), self.b.fake.snapshot_state()), before)

    def test_acquire_reply_lost(self):
        """
        When the acquire's reply is lost the handoff is in doubt and this
        node stays read-only; recovery learns the peer took it.
        """
        self.network.lose_next_reply("b.example", "acquire")
        self.failureResultOf(self.a.replicator.handoff(self.dataset_id,
                                                       self.a.peer("b.example")),
                             HandoffInDoubt)
        self.assertEqual(self.writable(), ["b.example"])
        outcome = self.successResultOf(self.a.replicator.recover(
            self.dataset_id, self.a.peer("b.example")))
        self.assertEqual(outcome, "replica")
        self.assertEqual((self.dataset(self.a).owner, self.dataset(self.a).handoff),
                         (self.b.node_uuid, None))

    def test_final_stream_cut_then_retry(self):
        """
        A handoff whose final stream is cut leaves no node writable and the
        marker set; retrying completes it with all the data.
        """
        self.write(self.a, "f", b"x")
        self.push(self.a, self.b)
        self.write(self.a, "f", b"final")
        # The pre-copy goes through; the final delta is cut.
        self.network.cut_next_stream("b.example", 10, skip=1)
        self.failureResultOf(self.a.replicator.handoff(self.dataset_id,
                                                       self.a.peer("b.example")),
                             TransferFailed)
        self.assertEqual(self.writable(), [])
        self.assertIsNotNone(self.dataset(self.a).handoff)
        self.handoff(self.a, self.b)
        self.assertEqual(self.writable(), ["b.example"])
        self.assertEqual(self.read(self.b, "f"), b"final")

    def test_abort_before_acquire(self):
        """
        An interrupted handoff whose acquire was never sent can be aborted:
        this node becomes writable again, the peer stays a replica.
        """
        self.network.cut_next_stream("b.example", 10, skip=1)
        self.failureResultOf(self.a.replicator.handoff(self.dataset_id,
                                                       self.a.peer("b.example")),
                             TransferFailed)
        outcome = self.successResultOf(self.a.replicator.recover(
            self.dataset_id, self.a.peer("b.example"), abort=True))
        self.assertEqual((outcome, self.writable()), ("owner", ["a.example"]))

    def test_no_abort_after_acquire_sent(self):
        """
        Once an acquire may have been sent, abort is refused: the handoff is
        finished instead.
        """
        self.network.lose_next_reply("b.example", "acquire")
        self.failureResultOf(self.a.replicator.handoff(self.dataset_id,
                                                       self.a.peer("b.example")),
                             HandoffInDoubt)
        self.network.partition("b.example")
        self.failureResultOf(self.a.replicator.recover(
            self.dataset_id, self.a.peer("b.example"), abort=True))
        self.assertEqual(self.writable(), ["b.example"])


class OpenZFSPushTests(PushTests):
    """
    Push on the OpenZFS profile (resumable receives, holds).
    """

    profile = "openzfs"


class OpenZFSHandoffTests(HandoffTests):
    """
    Handoff on the OpenZFS profile.
    """

    profile = "openzfs"


class CrashTests(ReplicationCase):
    """
    The agent on the source dies at each named step of a handoff
    (:data:`STEPS`); after a restart the handoff (or an abort, where allowed)
    settles with exactly one writable owner and nothing lost.  At no sampled
    instant are two copies writable.
    """

    def crash_at(self, step):
        def faults(name):
            if name == step:
                raise SimulatedCrash(step)
        self.write(self.a, "f", b"before")
        self.push(self.a, self.b)
        self.write(self.a, "f", b"latest")
        crashing = Replicator(self.a.backend, self.network.clock, faults=faults)
        self.failureResultOf(crashing.handoff(self.dataset_id, self.a.peer("b.example")),
                             SimulatedCrash)
        self.assertTrue(len(self.writable()) <= 1, (step, self.writable()))

    def restart(self):
        return Replicator(self.a.backend, self.network.clock)

    def test_each_step_then_retry(self):
        """
        Retrying the handoff after a crash at any step makes the peer the
        one writable owner, with the latest data, and clears the marker.
        """
        for step in STEPS:
            self.setUp()
            self.crash_at(step)
            self.successResultOf(self.restart().handoff(self.dataset_id,
                                                        self.a.peer("b.example")))
            self.assertEqual((step, self.writable()), (step, ["b.example"]))
            self.assertEqual((step, self.read(self.b, "f")), (step, b"latest"))
            self.assertEqual((step, self.dataset(self.a).handoff), (step, None))
            self.network.unmount_all()

    def test_each_step_then_recover(self):
        """
        ``recover`` after a crash at any step settles it: before the marker
        nothing began and this node still owns it; after it the handoff is
        completed.
        """
        for step in STEPS:
            self.setUp()
            self.crash_at(step)
            outcome = self.successResultOf(self.restart().recover(
                self.dataset_id, self.a.peer("b.example")))
            if step == "precopied":
                # Nothing was marked yet: no handoff began, this node owns it.
                expected = ("owner", ["a.example"])
            else:
                expected = ("replica", ["b.example"])
            self.assertEqual((step, outcome, self.writable()), (step,) + expected)
            self.network.unmount_all()

    def test_abort_before_acquire(self):
        """
        A crash before any acquire was marked can be aborted: this node is
        writable again with its latest data, the peer a replica.
        """
        for step in STEPS[:STEPS.index("acquire-marked")]:
            self.setUp()
            self.crash_at(step)
            outcome = self.successResultOf(self.restart().recover(
                self.dataset_id, self.a.peer("b.example"), abort=True))
            self.assertEqual((step, outcome, self.writable()),
                             (step, "owner", ["a.example"]))
            self.assertEqual((step, self.read(self.a, "f")), (step, b"latest"))
            self.network.unmount_all()

    def test_peer_crashes_inside_acquire(self):
        """
        If the peer dies inside acquire after claiming ownership but before
        becoming writable, the handoff is in doubt with no writable copy;
        recovery repeats the (idempotent) acquire and the peer becomes the
        one writable owner.
        """
        self.b.fake.fail_next(lambda argv: argv[:3] == ("zfs", "set", "readonly=off")
                              or list(argv[:3]) == ["zfs", "set", "readonly=off"],
                              1, b"internal error: simulated crash\n")
        self.failureResultOf(self.a.replicator.handoff(self.dataset_id,
                                                       self.a.peer("b.example")),
                             HandoffInDoubt)
        self.assertEqual(self.writable(), [])
        self.assertEqual(self.dataset(self.b).owner, self.b.node_uuid)
        outcome = self.successResultOf(self.a.replicator.recover(
            self.dataset_id, self.a.peer("b.example")))
        self.assertEqual((outcome, self.writable()), ("replica", ["b.example"]))


class _ForgingPeer(object):
    """
    An ``IPeer`` wrapper whose ``state`` answers carry a resume token from
    another dataset, as a hostile or confused peer might.
    """

    def __init__(self, peer, token):
        self._peer = peer
        self._token = token
        self.address = peer.address
        self.streams = []

    def call(self, verb, *args):
        d = self._peer.call(verb, *args)
        if verb == "state":
            d.addCallback(lambda state: dict(state, resume_token=self._token))
        return d

    def stream(self, send_argv, verb, *args, **kwargs):
        self.streams.append(send_argv)
        return self._peer.stream(send_argv, verb, *args, **kwargs)


class ResumeTests(ReplicationCase):
    """
    Interrupted transfers on the OpenZFS profile continue from the resume
    token; an unusable token is discarded only once proven unusable.
    """

    profile = "openzfs"

    def cut_first_push(self, size=200000):
        self.write(self.a, "f", os.urandom(size))
        self.network.cut_next_stream("b.example", size // 2)
        failure = self.failureResultOf(
            self.a.replicator.push(self.dataset_id, self.a.peer("b.example")), TransferFailed)
        return failure.value

    def test_resume_after_cut(self):
        """
        A push cut half-way leaves resumable state; the next push resumes it
        (no new snapshot, no full resend) and the data arrives intact.
        """
        self.cut_first_push()
        token = self.successResultOf(self.b.server.state(self.dataset_id))["resume_token"]
        self.assertTrue(token)
        snapshots = [s.name for s in self.dataset(self.a).snapshots]
        result = self.push(self.a, self.b)
        self.assertTrue(result.resumed)
        self.assertEqual([s.name for s in self.dataset(self.a).snapshots], snapshots)
        self.assertEqual(self.read(self.b, "f"), self.read(self.a, "f"))
        self.assertEqual(self.writable(), ["a.example"])

    def test_unusable_token_aborted(self):
        """
        When the token's snapshot no longer exists here, the peer's partial
        state is discarded and a fresh full stream is sent.
        """
        self.cut_first_push()
        for snap in self.dataset(self.a).snapshots:
            self.successResultOf(self.a.fake.run(
                ["zfs", "destroy", "flocker/%s@%s" % (self.dataset_id, snap.name)]))
        result = self.push(self.a, self.b)
        self.assertEqual((result.resumed, result.base), (False, None))
        self.assertEqual(self.read(self.b, "f"), self.read(self.a, "f"))

    def test_forged_token_refused(self):
        """
        A token naming another dataset is refused before any byte is sent.
        """
        other = str(uuid.uuid4())
        self.successResultOf(self.a.backend.create(other))
        self.a.backend.path(other).child("f").setContent(os.urandom(200000))
        self.network.cut_next_stream("b.example", 100000)
        self.failureResultOf(self.a.replicator.push(other, self.a.peer("b.example")),
                             TransferFailed)
        token = self.successResultOf(self.b.server.state(other))["resume_token"]
        self.assertTrue(token)
        forging = _ForgingPeer(self.a.peer("b.example"), token)
        self.failureResultOf(self.a.replicator.push(self.dataset_id, forging), ProtocolError)
        self.assertEqual(forging.streams, [])


class FuseRetryTests(ReplicationCase):
    """
    zfs-fuse has no resume tokens: an interrupted first push leaves nothing
    on the peer and the retry sends again from the start.
    """

    def test_retry_full(self):
        """
        After a cut full stream the peer has no dataset; the retry succeeds.
        """
        self.write(self.a, "f", os.urandom(200000))
        self.network.cut_next_stream("b.example", 100000)
        self.failureResultOf(self.a.replicator.push(self.dataset_id,
                                                    self.a.peer("b.example")), TransferFailed)
        self.assertIsNone(self.dataset(self.b))
        result = self.push(self.a, self.b)
        self.assertEqual((result.resumed, result.base), (False, None))
        self.assertEqual(self.read(self.b, "f"), self.read(self.a, "f"))


class ConcurrencyTests(ReplicationCase):
    """
    Operations on one dataset never interleave.
    """

    def hold_lock(self):
        """
        Hold the dataset's lock, as a long operation would.

        :return: a ``Deferred`` to fire to release it.
        """
        gate = Deferred()

        async def hold():
            async with self.a.backend.locked(self.dataset_id):
                await gate
        Deferred.fromCoroutine(hold())
        return gate

    def test_pushes_serialised(self):
        """
        Two pushes of one dataset asked for while it is busy run one after
        the other: the second is an incremental from the first's snapshot.
        """
        gate = self.hold_lock()
        first = self.a.replicator.push(self.dataset_id, self.a.peer("b.example"))
        second = self.a.replicator.push(self.dataset_id, self.a.peer("b.example"))
        self.assertNoResult(first)
        self.assertNoResult(second)
        gate.callback(None)
        self.assertEqual(self.successResultOf(second).base,
                         self.successResultOf(first).snapshot)

    def test_destroy_after_push(self):
        """
        A destroy asked for during a push waits for it, then removes the
        dataset although the push left a hold on the peer's base.
        """
        gate = self.hold_lock()
        pushed = self.a.replicator.push(self.dataset_id, self.a.peer("b.example"))
        destroyed = self.a.backend.destroy(self.dataset_id)
        gate.callback(None)
        self.successResultOf(pushed)
        self.successResultOf(destroyed)
        self.assertIsNone(self.dataset(self.a))


class DivergenceTests(ReplicationCase):
    """
    A replica changed behind the owner's back is never overwritten.
    """

    def test_modified_replica(self):
        """
        A replica made writable and written to is refused by the peer as
        ``DestinationModified``; its change is kept.
        """
        self.write(self.a, "f", b"one")
        self.push(self.a, self.b)
        name = "flocker/" + self.dataset_id
        self.successResultOf(self.b.fake.run(["zfs", "set", "readonly=off", name]))
        self.write(self.b, "theirs", b"keep")
        self.successResultOf(self.b.fake.run(["zfs", "set", "readonly=on", name]))
        self.write(self.a, "f", b"two")
        self.b.fake.fail_next(lambda argv: list(argv[:2]) == ["zfs", "receive"], 1,
                              b"cannot receive incremental stream: destination %s has been "
                              b"modified\nsince most recent snapshot\n" % (name.encode(),))
        failure = self.failureResultOf(
            self.a.replicator.push(self.dataset_id, self.a.peer("b.example")), TransferFailed)
        self.assertEqual((failure.value.side, failure.value.error.name),
                         ("receiver", "DestinationModified"))
        self.assertEqual(self.read(self.b, "theirs"), b"keep")


class OpenWritersTests(ReplicationCase):
    """
    zfs-fuse lets files already open for writing keep writing after
    ``readonly=on``: a handoff with such writers is refused and undone.
    """

    def test_refused_and_undone(self):
        """
        With a process writing, the handoff fails with ``DatasetInUse``
        naming it, this node is writable again and nothing was acquired;
        once it stops, the handoff goes through.
        """
        self.a.writers.append((4242, "app", "/flocker/x/log"))
        failure = self.failureResultOf(
            self.a.replicator.handoff(self.dataset_id, self.a.peer("b.example")),
            DatasetInUse)
        self.assertIn("pid 4242 (app)", str(failure.value))
        self.assertEqual((self.writable(), self.dataset(self.a).handoff),
                         (["a.example"], None))
        del self.a.writers[:]
        self.successResultOf(self.a.replicator.handoff(self.dataset_id,
                                                       self.a.peer("b.example")))
        self.assertEqual(self.writable(), ["b.example"])


class OpenZFSOpenWritersTests(ReplicationCase):
    """
    On OpenZFS ``readonly=on`` stops every writer, so open files do not
    block a handoff.
    """

    profile = "openzfs"

    def test_not_checked(self):
        """
        A simulated writer does not stop the handoff.
        """
        self.a.writers.append((4242, "app", "/flocker/x/log"))
        self.successResultOf(self.a.replicator.handoff(self.dataset_id,
                                                       self.a.peer("b.example")))
        self.assertEqual(self.writable(), ["b.example"])


class _LyingPeer(_ForgingPeer):
    """
    An ``IPeer`` wrapper whose ``state`` answers list hostile snapshots.
    """

    def __init__(self, peer, snapshots):
        _ForgingPeer.__init__(self, peer, None)
        self._snapshots = snapshots

    def call(self, verb, *args):
        d = self._peer.call(verb, *args)
        if verb == "state":
            d.addCallback(lambda state: dict(state, exists=True, snapshots=self._snapshots))
        return d


class HostilePeerOutputTests(ReplicationCase):
    """
    Names and numbers from a peer's answers are checked before use; bad
    ones stop the push with ``ProtocolError`` and nothing is sent.
    """

    def test_hostile_snapshot_lists(self):
        """
        Snapshot lists with newlines, shell syntax, ``%`` names, overlong or
        non-numeric GUIDs, or the wrong shape are refused before any stream.
        """
        for bad in [[{"name": "a\nb", "guid": "1"}], [{"name": "x; rm -rf /", "guid": "1"}],
                    [{"name": "%recv", "guid": "1"}], [{"name": "s" * 300, "guid": "1"}],
                    [{"name": "s", "guid": "99999999999999999999999"}],
                    [{"name": "s", "guid": "-1"}], [{"name": 5, "guid": "1"}],
                    [{"guid": "1"}], ["s"], "snapshots"]:
            lying = _LyingPeer(self.a.peer("b.example"), bad)
            self.failureResultOf(self.a.replicator.push(self.dataset_id, lying), ProtocolError)
            self.assertEqual((bad, lying.streams), (bad, []))


class MaximumSizeTests(ReplicationCase):
    """
    The owner's maximum size travels with the dataset: replicas record it
    (without a quota a receive could hit) and the new owner applies it.
    """

    def refquota(self, node):
        return self.successResultOf(node.fake.run(
            ["zfs", "get", "-H", "-p", "-o", "value", "refquota",
             "flocker/" + self.dataset_id])).strip()

    def test_carried_through_handoff(self):
        """
        After a push the replica reports the limit with no quota; after a
        handoff the new owner enforces it and the old owner only records it.
        """
        self.successResultOf(self.a.backend.resize(self.dataset_id, 64 * 1024 * 1024))
        self.push(self.a, self.b)
        self.assertEqual((self.dataset(self.b).maximum_size, self.refquota(self.b)),
                         (64 * 1024 * 1024, b"0"))
        self.successResultOf(self.a.replicator.handoff(self.dataset_id,
                                                       self.a.peer("b.example")))
        self.assertEqual((self.dataset(self.b).maximum_size, self.refquota(self.b)),
                         (64 * 1024 * 1024, b"67108864"))
        self.assertEqual((self.dataset(self.a).maximum_size, self.refquota(self.a)),
                         (64 * 1024 * 1024, b"0"))

    def test_resize_reaches_replica(self):
        """
        A new limit set on the owner reaches the replica with the next push;
        removing it too.
        """
        self.push(self.a, self.b)
        self.successResultOf(self.a.backend.resize(self.dataset_id, 32 * 1024 * 1024))
        self.push(self.a, self.b)
        self.assertEqual(self.dataset(self.b).maximum_size, 32 * 1024 * 1024)
        self.successResultOf(self.a.backend.resize(self.dataset_id, None))
        self.push(self.a, self.b)
        self.assertIsNone(self.dataset(self.b).maximum_size)


class UserSnapshotTests(ReplicationCase):
    """
    Retention prunes only the snapshots replication took.
    """

    def test_generated_user_snapshot_kept(self):
        """
        A snapshot the user took without naming it (``flocker-<time>-...``)
        survives any number of pushes.
        """
        mine = self.successResultOf(self.a.backend.snapshot(self.dataset_id))
        for _ in range(3):
            self.push(self.a, self.b)
        self.assertIn(mine.name, [s.name for s in self.dataset(self.a).snapshots])

    def test_former_owner_keeps_user_snapshots(self):
        """
        After a handoff, pushes from the new owner never prune the snapshots
        the user took on the former owner.
        """
        mine = self.successResultOf(self.a.backend.snapshot(self.dataset_id))
        named = self.successResultOf(self.a.backend.snapshot(self.dataset_id, "named"))
        self.successResultOf(self.a.replicator.handoff(self.dataset_id,
                                                       self.a.peer("b.example")))
        for _ in range(2):
            self.write(self.b, "f", os.urandom(100))
            self.push(self.b, self.a)
        names = [s.name for s in self.dataset(self.a).snapshots]
        self.assertIn(mine.name, names)
        self.assertIn(named.name, names)


class UnreachableDuringHandoffTests(ReplicationCase):
    """
    The peer becomes unreachable in the middle of a handoff (scenario 49).
    """

    def cut_at(self, step):
        def faults(name):
            if name == step:
                self.network.partition("b.example")
        replicator = Replicator(self.a.backend, self.network.clock, faults=faults)
        return replicator.handoff(self.dataset_id, self.a.peer("b.example"))

    def test_before_acquire_abort_without_peer(self):
        """
        Unreachable after this node went read-only but before any acquire:
        no node is writable, and taking it back needs no answer from the
        peer, which cannot have become the owner.
        """
        self.failureResultOf(self.cut_at("readonly"))
        self.assertEqual(self.writable(), [])
        outcome = self.successResultOf(self.a.replicator.recover(
            self.dataset_id, self.a.peer("b.example"), abort=True))
        self.assertEqual((outcome, self.writable()), ("owner", ["a.example"]))

    def test_after_acquire_sent_stays_read_only(self):
        """
        Unreachable once an acquire may have been sent: in doubt; no abort
        (an acquire may still land), the node stays read-only, and once the
        peer is back recovery finishes the handoff.
        """
        self.failureResultOf(self.cut_at("acquire-marked"), HandoffInDoubt)
        self.failureResultOf(self.a.replicator.recover(
            self.dataset_id, self.a.peer("b.example"), abort=True))
        self.assertEqual(self.writable(), [])
        self.network.heal("b.example")
        outcome = self.successResultOf(self.a.replicator.recover(
            self.dataset_id, self.a.peer("b.example")))
        self.assertEqual((outcome, self.writable()), ("replica", ["b.example"]))
