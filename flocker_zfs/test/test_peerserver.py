"""
Tests for the peer server (:mod:`flocker_zfs._peerserver`) and the
``peer-serve`` process entry (:mod:`flocker_zfs._peerserve_main`), on two
fake ZFS nodes: a sender that owns the dataset and makes streams with
``send_stream``, and the server that receives them.
"""

import json
import os
import shlex
import subprocess
import sys
import uuid
from argparse import Namespace
from io import BytesIO, StringIO

from eliot.testing import LoggedAction, capture_logging
from hypothesis import given, settings, strategies as st
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from .. import _commands as commands, _peerserver
from .._actions import COMMAND, PEER_SERVE
from .._backend import ZFSBackend
from .._dslock import DatasetLock
from .._peerserve_main import serve
from .._peerserver import BytesReceiveStream, PeerServer
from .._deployer import NodeState, node_state_from_json
from .._protocol import (
    ABORT_RECEIVE, ACQUIRE, DATASETS, FULL, HELLO, PROTOCOL_VERSION, RECEIVE, RESUME, STATE,
    VERBS, parse_request, request)
from .._protocol import ProtocolError
from ..testing import FakeZFS, MemoryProcessReactor

FUSE, OPENZFS = "zfs-fuse", "openzfs"


def decode(stdout):
    """The one JSON response line in ``stdout``."""
    lines = stdout.decode("utf-8").splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


class PeerCase(SynchronousTestCase):
    """
    A sender node owning dataset ``self.dataset_id`` and a server node, both
    on :class:`FakeZFS` of ``self.profile``.
    """

    profile = FUSE

    def setUp(self):
        root = os.path.abspath(self.mktemp())
        self.sender_fake = self.make_fake(seed=1)
        self.fake = self.make_fake(seed=2)
        self.sender_uuid, self.node_uuid = str(uuid.uuid4()), str(uuid.uuid4())
        self.sender = ZFSBackend(MemoryReactorClock(), "flocker", os.path.join(root, "a"),
                                 self.sender_uuid, runner=self.sender_fake)
        self.backend = ZFSBackend(MemoryReactorClock(), "flocker", os.path.join(root, "b"),
                                  self.node_uuid, runner=self.fake)
        self.server = PeerServer(self.backend)
        self.dataset_id = str(uuid.uuid4())
        self.name = "flocker/" + self.dataset_id
        self.successResultOf(self.sender.create(self.dataset_id))

    def make_fake(self, seed):
        fake = FakeZFS(self.profile, seed=seed)
        fake.add_pool("flocker")
        self.addCleanup(fake.unmount_all)
        return fake

    def snap(self, name, content=None, dataset_id=None):
        """Write a file on the sender and snapshot it there."""
        dataset_id = dataset_id or self.dataset_id
        with open(os.path.join(self.sender.path(dataset_id).path, name), "wb") as f:
            f.write(content or name.encode("ascii"))
        return self.successResultOf(self.sender.snapshot(dataset_id, name))

    def stream(self, snap, base=None, dataset_id=None):
        """The sender's stream of ``snap`` (incremental from ``base``)."""
        prefix = "flocker/%s@" % (dataset_id or self.dataset_id,)
        return self.sender_fake.send_stream(commands.send(
            prefix + snap.name, None if base is None else prefix + base.name))

    def ask(self, verb, *args, **kwargs):
        """:return: ``(status, response)`` for one request through ``handle``."""
        status, stdout = self.successResultOf(self.server.handle(
            shlex.join(request(verb, *args)), kwargs.get("stream")))
        return status, decode(stdout)

    def push(self, snap, base=None, data=None, owner=None, generation=1, guid=None,
             base_arg=None):
        """Stream ``snap`` (from ``base``) into the server."""
        if data is None:
            data = self.stream(snap, base)
        if base_arg is None:
            base_arg = FULL if base is None else base.guid
        return self.ask(RECEIVE, self.dataset_id, base_arg, snap.name,
                        snap.guid if guid is None else guid, owner or self.sender_uuid,
                        generation, stream=BytesReceiveStream(self.fake, data))

    def ok(self, result):
        status, response = result
        self.assertEqual((status, response["ok"]), (0, True), response)
        return response

    def replica(self):
        return self.successResultOf(self.backend.get(self.dataset_id))

    def zfs(self, *argv):
        status, out, err = self.fake.execute(("zfs",) + argv)
        self.assertEqual(status, 0, err)
        return out.decode("utf-8")

    def local(self, prop):
        """The value of ``prop`` set locally on the server's copy, or ``None``."""
        return self.fake.snapshot_state().datasets[self.name].local.get(prop)

    def refused(self, error, verb, *args, **kwargs):
        """
        Make a request that must fail with ``error`` and change nothing on
        the server (no receive either, unless ``zfs=True``: zfs refused it).

        :return: the response.
        """
        ran_zfs = kwargs.pop("zfs", False)
        self.successResultOf(self.backend.start())
        before = self.fake.snapshot_state()
        receives = [a for a in self.fake.commands if a[1:2] == ("receive",)]
        if verb == "push":
            status, response = self.push(*args, **kwargs)
        else:
            status, response = self.ask(verb, *args, **kwargs)
        self.assertEqual((status, response["ok"], response["error"]), (1, False, error),
                         response)
        self.assertEqual(self.fake.snapshot_state(), before)
        if not ran_zfs:
            self.assertEqual([a for a in self.fake.commands if a[1:2] == ("receive",)],
                             receives)
        return response

    def crash_after_receive(self, snap):
        """A full receive on zfs-fuse interrupted before our labels were set."""
        self.successResultOf(self.backend.start())
        status, _, err = self.fake.receive_stream(["zfs", "receive", "-u", self.name],
                                                  self.stream(snap))
        self.assertEqual(status, 0, err)
        self.zfs("set", "readonly=on", self.name)


class ReplicaMixin(object):
    """Receiving, refusing and acquiring; runs for both profiles."""

    def test_hello(self):
        """``hello`` reports the node, the pool, the protocol and the capabilities."""
        response = self.ok(self.ask(HELLO))
        self.assertEqual((response["protocol"], response["node_uuid"], response["pool"],
                          response["implementation"]),
                         (PROTOCOL_VERSION, self.node_uuid, "flocker", self.profile))
        self.assertEqual(response["capabilities"]["resume_tokens"], self.profile == OPENZFS)
        self.assertEqual(response["verbs"], list(VERBS))
        self.assertIn(DATASETS, response["verbs"])

    def test_datasets(self):
        """
        ``datasets`` answers the state of every dataset the server manages
        (its own and its replicas) in one reply, in the deployer's node
        state format; a filesystem named like one of ours but not labelled
        as ours is listed as unmanaged (so no node creates that id), never
        as a dataset.
        """
        self.assertEqual(node_state_from_json(self.ok(self.ask(DATASETS))["node_state"]),
                         NodeState(node_uuid=self.node_uuid))
        snap = self.snap("s1")
        self.ok(self.push(snap))
        mine = str(uuid.uuid4())
        self.successResultOf(self.backend.create(mine))
        foreign = str(uuid.uuid4())
        self.zfs("create", "flocker/" + foreign)
        state = node_state_from_json(self.ok(self.ask(DATASETS))["node_state"])
        discovered = self.successResultOf(self.backend.discover()).datasets
        self.assertEqual(state, NodeState(node_uuid=self.node_uuid, datasets=discovered,
                                          unmanaged=[foreign]))
        self.assertEqual(sorted(state.datasets), sorted([self.dataset_id, mine]))
        replica = state.datasets[self.dataset_id]
        self.assertEqual((replica.owner, replica.writable, replica.snapshots[-1].guid),
                         (self.sender_uuid, False, snap.guid))
        self.assertEqual((state.datasets[mine].owner, state.datasets[mine].writable),
                         (self.node_uuid, True))

    def test_datasets_in_use(self):
        """
        ``datasets`` reports which of the server's datasets a process is
        using (here: this test holding a file open in the replica).
        """
        self.ok(self.push(self.snap("s1")))
        mine = str(uuid.uuid4())
        self.successResultOf(self.backend.create(mine))
        with open(os.path.join(self.backend.path(self.dataset_id).path, "s1"), "rb"):
            state = node_state_from_json(self.ok(self.ask(DATASETS))["node_state"])
        self.assertEqual(sorted(state.in_use), [self.dataset_id])

    def test_state_missing(self):
        """``state`` of a dataset this node does not have says it does not exist."""
        response = self.ok(self.ask(STATE, self.dataset_id))
        self.assertEqual((response["exists"], response["snapshots"]), (False, []))

    def test_state_foreign(self):
        """``state`` of a dataset that is not ours is ``NotManaged``, never absent."""
        self.zfs("create", self.name)
        self.assertIn("not managed", self.refused("NotManaged", STATE,
                                                  self.dataset_id)["message"])
        self.zfs("set", "flocker:dataset_id=%s" % (uuid.uuid4(),), self.name)
        self.refused("NotManaged", STATE, self.dataset_id)

    def test_full_then_incremental(self):
        """
        A full then incremental receive give a read-only, mounted, labelled
        replica; older ``flocker-`` snapshots are pruned, a user snapshot kept.
        """
        manual = self.snap("manual")
        response = self.ok(self.push(manual, generation=3))
        self.assertEqual((response["snapshot"]["guid"], response["received"]),
                         (str(manual.guid), True))
        one = self.snap("flocker-push-1")
        self.ok(self.push(one, manual, generation=3))
        two = self.snap("flocker-push-2")
        response = self.ok(self.push(two, one, generation=3))
        self.assertEqual((response["pruned"], response["mounted"]), (["flocker-push-1"], True))
        replica = self.replica()
        self.assertEqual(
            ([s.name for s in replica.snapshots], replica.owner, replica.generation,
             replica.writable, replica.mounted, replica.mountpoint),
            (["manual", "flocker-push-2"], self.sender_uuid, 3, False, True,
             self.backend.path(self.dataset_id).path))
        self.assertEqual(sorted(os.listdir(replica.mountpoint)),
                         ["flocker-push-1", "flocker-push-2", "manual"])
        self.assertEqual((self.local("readonly"), self.local("flocker:managed")),
                         ("on", "yes"))
        state = self.ok(self.ask(STATE, self.dataset_id))
        self.assertEqual((state["exists"], state["writable"], state["owner"]),
                         (True, False, self.sender_uuid))

    def seen(self, name):
        """:return: what a reader of the server's replica reads at ``name``, or ``None``."""
        try:
            with open(os.path.join(self.backend.path(self.dataset_id).path, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def test_readers_see_each_receive(self):
        """
        Right after each receive into the mounted replica its readers see
        what arrived: a new file they looked for before, and the new content
        of a file changed in place (on zfs-fuse the copy is mounted again).
        """
        one = self.snap("flocker-push-1", b"first")
        self.ok(self.push(one))
        self.assertEqual((self.seen("flocker-push-1"), self.seen("flocker-push-2")),
                         (b"first", None))
        with open(os.path.join(self.sender.path(self.dataset_id).path, "flocker-push-1"),
                  "wb") as f:
            f.write(b"FIRST")
        two = self.snap("flocker-push-2", b"second")
        response = self.ok(self.push(two, one))
        self.assertEqual((self.seen("flocker-push-1"), self.seen("flocker-push-2")),
                         (b"FIRST", b"second"))
        self.assertEqual((response["mounted"], response["stale"]), (True, False))

    def test_already_received(self):
        """A repeated receive of the snapshot already there succeeds without receiving."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        two = self.snap("flocker-push-2")
        self.ok(self.push(two, one))
        receives = len(self.fake.commands)
        response = self.ok(self.push(two, one))
        self.assertEqual((response["received"], response["snapshot"]["name"]),
                         (False, "flocker-push-2"))
        self.assertNotIn("receive", [a[1] for a in self.fake.commands[receives:]])

    def test_held_snapshot_kept(self):
        """A held snapshot is not pruned, and the receive still succeeds."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        self.zfs("hold", "keep", self.name + "@flocker-push-1")
        two = self.snap("flocker-push-2")
        self.assertEqual(self.ok(self.push(two, one))["pruned"], [])
        self.assertEqual([s.name for s in self.replica().snapshots],
                         ["flocker-push-1", "flocker-push-2"])

    def test_refuse_foreign(self):
        """A receive into a dataset that is not ours changes nothing."""
        self.zfs("create", self.name)
        self.refused("NotManaged", "push", self.snap("flocker-push-1"))

    def test_refuse_full_over_existing(self):
        """A full stream for a replica this node has is ``DestinationExists``."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        response = self.refused("DestinationExists", "push", self.snap("flocker-push-2"))
        self.assertIn("flocker-push-1", response["message"])

    def test_refuse_locally_owned(self):
        """A dataset writable and owned here is never received into."""
        self.successResultOf(self.backend.create(self.dataset_id))
        response = self.refused("LocallyOwned", "push", self.snap("flocker-push-1"))
        self.assertIn("refusing to receive into a dataset this node owns",
                      response["message"])

    def test_refuse_base_mismatch(self):
        """An incremental whose base is not the newest snapshot names both guids."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        two, three = self.snap("flocker-push-2"), self.snap("flocker-push-3")
        message = self.refused("BaseMismatch", "push", three, two)["message"]
        self.assertIn(str(one.guid), message)
        self.assertIn(str(two.guid), message)

    def test_refuse_incremental_into_missing(self):
        """
        An incremental for a missing dataset is refused before zfs runs,
        even when the base's guid is in the pool (zfs-fuse would use it).
        """
        other = str(uuid.uuid4())
        self.successResultOf(self.sender.create(other))
        one = self.snap("flocker-push-1", dataset_id=other)
        self.ask(RECEIVE, other, FULL, one.name, one.guid, self.sender_uuid, 1,
                 stream=BytesReceiveStream(self.fake, self.stream(one, dataset_id=other)))
        two = self.snap("flocker-push-2", dataset_id=other)
        self.refused("DatasetNotFound", "push", two, one,
                     data=self.stream(two, one, dataset_id=other))

    def test_refuse_modified(self):
        """A replica written to since its newest snapshot is ``DestinationModified``."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        path = self.replica().mountpoint
        os.chmod(path, 0o755)
        with open(os.path.join(path, "local"), "wb") as f:
            f.write(b"written on the replica")
        self.refused("DestinationModified", "push", self.snap("flocker-push-2"), one, zfs=True)

    def test_refuse_handoff_marker(self):
        """A dataset with a local handoff marker is not received into."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        self.zfs("set", "flocker:handoff=%s:2" % (uuid.uuid4(),), self.name)
        self.refused("HandoffInProgress", "push", self.snap("flocker-push-2"), one)

    def test_refuse_stale_generation(self):
        """A lower generation, or another owner at the same one, is refused."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one, generation=3))
        two = self.snap("flocker-push-2")
        self.refused("StaleGeneration", "push", two, one, generation=2)
        self.refused("StaleGeneration", "push", two, one, generation=3,
                     owner=str(uuid.uuid4()))
        self.ok(self.push(two, one, generation=4, owner=str(uuid.uuid4())))

    def test_refuse_owner_self(self):
        """A receive can never record the server itself as the owner."""
        self.refused("ProtocolError", "push", self.snap("flocker-push-1"), owner=self.node_uuid)

    def test_wrong_guid_claimed(self):
        """
        A stream whose snapshot is not the claimed guid is reported; the data
        stays, the claimed generation is not recorded.
        """
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        two = self.snap("flocker-push-2")
        status, response = self.push(two, one, guid=12345, generation=7)
        self.assertEqual((status, response["error"]), (1, "SnapshotMismatch"))
        self.assertIn(str(two.guid), response["message"])
        self.assertEqual(self.replica().generation, 1)

    def test_adopt_interrupted_full(self):
        """
        A copy left unlabelled by a crash after its receive is reported as
        adoptable, and adopted by a repeat of the same full receive.
        """
        one = self.snap("flocker-push-1")
        self.crash_after_receive(one)
        state = self.ok(self.ask(STATE, self.dataset_id))
        self.assertEqual((state["exists"], state["adoptable"], state["snapshots"][0]["guid"]),
                         (True, True, str(one.guid)))
        start = len(self.fake.commands)
        response = self.ok(self.push(one))
        self.assertFalse(response["received"])
        self.assertNotIn("receive", [a[1] for a in self.fake.commands[start:]])
        replica = self.replica()
        self.assertEqual((replica.owner, replica.writable, replica.mounted),
                         (self.sender_uuid, False, True))

    def test_adopt_by_incremental(self):
        """An interrupted copy is adopted by an incremental from its snapshot."""
        one = self.snap("flocker-push-1")
        self.crash_after_receive(one)
        two = self.snap("flocker-push-2")
        self.assertTrue(self.ok(self.push(two, one))["received"])
        self.assertEqual([s.name for s in self.replica().snapshots], ["flocker-push-2"])

    def test_no_adoption_of_another_snapshot(self):
        """An unlabelled copy is not adopted by a stream of another snapshot."""
        self.crash_after_receive(self.snap("flocker-push-1"))
        self.refused("NotManaged", "push", self.snap("flocker-push-2"))
        self.zfs("create", self.name + "/child")
        self.refused("NotManaged", "push", self.snap("flocker-push-3"))

    def test_acquire(self):
        """``acquire`` makes the replica the writable owner: owner, generation, readonly."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        start = len(self.fake.commands)
        response = self.ok(self.ask(ACQUIRE, self.dataset_id, 2, one.guid, self.sender_uuid))
        self.assertEqual((response["owner"], response["generation"], response["already"]),
                         (self.node_uuid, 2, False))
        sets = [a[2] for a in self.fake.commands[start:] if a[1] == "set"]
        self.assertEqual(sets, ["flocker:owner=" + self.node_uuid, "flocker:generation=2",
                                "readonly=off"])
        replica = self.replica()
        self.assertEqual((replica.owner, replica.generation, replica.writable, replica.mounted),
                         (self.node_uuid, 2, True, True))
        start = len(self.fake.commands)
        self.assertTrue(self.ok(self.ask(ACQUIRE, self.dataset_id, 2, one.guid,
                                         self.sender_uuid))["already"])
        self.assertEqual([a for a in self.fake.commands[start:] if a[1] == "set"], [])

    def test_acquire_refusals(self):
        """Stale generations, other snapshots, markers and foreign datasets change nothing."""
        self.refused("DatasetNotFound", ACQUIRE, self.dataset_id, 2, 1, self.sender_uuid)
        one = self.snap("flocker-push-1")
        self.ok(self.push(one, generation=2))
        self.refused("StaleGeneration", ACQUIRE, self.dataset_id, 2, one.guid, self.sender_uuid)
        self.refused("SnapshotMismatch", ACQUIRE, self.dataset_id, 3, one.guid + 1,
                     self.sender_uuid)
        self.refused("ProtocolError", ACQUIRE, self.dataset_id, 3, one.guid, self.node_uuid)
        self.zfs("set", "flocker:handoff=%s:3" % (uuid.uuid4(),), self.name)
        self.refused("HandoffInProgress", ACQUIRE, self.dataset_id, 3, one.guid,
                     self.sender_uuid)

    def test_acquire_writable_elsewhere(self):
        """A copy writable here at another generation is not acquired again."""
        self.successResultOf(self.backend.create(self.dataset_id))
        snap = self.successResultOf(self.backend.snapshot(self.dataset_id, "flocker-push-1"))
        self.refused("LocallyOwned", ACQUIRE, self.dataset_id, 2, snap.guid, self.sender_uuid)
        self.zfs("create", "flocker/" + self.sender_uuid)
        self.refused("NotManaged", ACQUIRE, self.sender_uuid, 2, snap.guid, self.dataset_id)

    def test_acquire_interrupted(self):
        """
        An acquire that stopped after the owner (or after the generation) was
        recorded stays read-only, and the same acquire completes it.
        """
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        for step in ("flocker:generation=2", "readonly=off"):
            self.fake.fail_next(lambda argv, step=step: argv[1:3] == ("set", step),
                                stderr="cannot set property: crashed\n")
            status, response = self.ask(ACQUIRE, self.dataset_id, 2, one.guid,
                                        self.sender_uuid)
            self.assertEqual(status, 1)
            replica = self.replica()
            self.assertEqual((replica.owner, replica.writable), (self.node_uuid, False))
        self.ok(self.ask(ACQUIRE, self.dataset_id, 2, one.guid, self.sender_uuid))
        self.assertTrue(self.replica().writable)


class FuseReplicaTests(ReplicaMixin, PeerCase):
    """The peer server on the zfs-fuse profile."""

    profile = FUSE

    def test_labels_after_receive(self):
        """zfs-fuse labels a new replica after receiving: readonly first, managed last."""
        self.successResultOf(self.backend.start())
        start = len(self.fake.commands)
        self.ok(self.push(self.snap("flocker-push-1")))
        sets = [a[2].split("=")[0] for a in self.fake.commands[start:] if a[1] == "set"]
        self.assertEqual(sets, ["readonly", "mountpoint", "flocker:owner", "flocker:generation",
                                "flocker:dataset_id", "flocker:managed"])
        receive = [a for a in self.fake.commands[start:] if a[1] == "receive"][0]
        self.assertEqual(receive, ("zfs", "receive", "-u", self.name))

    @capture_logging(None)
    def test_reader_keeps_replica_busy(self, logger):
        """
        A process with its working directory in the replica keeps it from
        being mounted again: the receive still succeeds, says readers may
        see the old view and logs why; the next receive after it left
        mounts it again, and readers see everything.
        """
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        self.fake.set_busy(self.name)
        two = self.snap("flocker-push-2")
        response = self.ok(self.push(two, one))
        self.assertEqual((response["received"], response["mounted"], response["stale"]),
                         (True, True, True))
        self.assertEqual(self.seen("flocker-push-2"), None)
        self.assertEqual(self.replica().snapshots[-1].guid, two.guid)
        skipped = [m for m in logger.messages
                   if m.get("message_type") == "flocker_zfs:peer:remount_skipped"]
        self.assertEqual(len(skipped), 1)
        self.assertIn("target is busy", skipped[0]["reason"])
        self.fake.set_busy(self.name, False)
        three = self.snap("flocker-push-3")
        self.assertFalse(self.ok(self.push(three, two))["stale"])
        self.assertEqual((self.seen("flocker-push-2"), self.seen("flocker-push-3")),
                         (b"flocker-push-2", b"flocker-push-3"))

    @capture_logging(None)
    def test_mount_again_fails(self, logger):
        """
        When the mount after the unmount fails, the receive still succeeds
        and reports the replica unmounted (its data intact); the next
        receive mounts it.
        """
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        for _ in range(2):
            self.fake.fail_next("mount", stderr="cannot mount '/x': directory is not empty\n")
        two = self.snap("flocker-push-2")
        response = self.ok(self.push(two, one))
        self.assertEqual((response["received"], response["mounted"], response["stale"]),
                         (True, False, False))
        self.assertFalse(self.replica().mounted)
        self.assertEqual(
            [m["dataset"] for m in logger.messages
             if m.get("message_type") == "flocker_zfs:peer:remount_failed"], [self.name])
        three = self.snap("flocker-push-3")
        self.assertTrue(self.ok(self.push(three, two))["mounted"])
        self.assertEqual(self.seen("flocker-push-3"), b"flocker-push-3")

    def test_acquire_after_busy_receive(self):
        """
        A replica that a reader kept busy during the last receive is mounted
        again before it becomes writable, so its applications start from
        the received content.
        """
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        self.fake.set_busy(self.name)
        two = self.snap("flocker-push-2")
        self.assertTrue(self.ok(self.push(two, one))["stale"])
        self.fake.set_busy(self.name, False)
        response = self.ok(self.ask(ACQUIRE, self.dataset_id, 2, two.guid, self.sender_uuid))
        self.assertEqual((response["owner"], response["mounted"]), (self.node_uuid, True))
        self.assertEqual(self.seen("flocker-push-2"), b"flocker-push-2")
        self.assertTrue(self.replica().writable)

    def test_truncated(self):
        """A truncated stream is ``StreamIncomplete``; the replica is unchanged."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        two = self.snap("flocker-push-2")
        self.refused("StreamIncomplete", "push", two, one, data=self.stream(two, one)[:-20],
                     zfs=True)

    def test_no_resume(self):
        """zfs-fuse refuses resume and abort-receive without running anything."""
        self.refused("ResumeNotSupported", ABORT_RECEIVE, self.dataset_id)
        self.refused("ResumeNotSupported", "push", self.snap("flocker-push-1"), base_arg=RESUME)


class OpenZFSReplicaTests(ReplicaMixin, PeerCase):
    """The peer server on the OpenZFS profile: resumable receives."""

    profile = OPENZFS

    def test_not_mounted_again(self):
        """OpenZFS readers see a receive at once: the replica is not mounted again."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        start = len(self.fake.commands)
        self.ok(self.push(self.snap("flocker-push-2"), one))
        self.assertEqual([a for a in self.fake.commands[start:] if a[1] in ("unmount", "mount")],
                         [])
        self.assertEqual(self.seen("flocker-push-2"), b"flocker-push-2")

    def test_labels_on_receive(self):
        """OpenZFS labels a new replica atomically with ``receive -o``."""
        self.successResultOf(self.backend.start())
        start = len(self.fake.commands)
        self.ok(self.push(self.snap("flocker-push-1"), generation=4))
        receive = [a for a in self.fake.commands[start:] if a[1] == "receive"][0]
        self.assertEqual(receive[:5], ("zfs", "receive", "-u", "-s", "-o"))
        self.assertIn("flocker:managed=yes", receive)
        self.assertIn("flocker:generation=4", receive)
        self.assertEqual([a for a in self.fake.commands[start:] if a[1] == "set"], [])

    def test_resume_full(self):
        """
        An interrupted full receive is reported by its token (labelled as
        ours) and completed by a resumed stream.
        """
        one = self.snap("flocker-push-1", b"x" * 5000)
        status, response = self.push(one, data=self.stream(one)[:-100])
        self.assertEqual((status, response["error"]), (1, "StreamIncomplete"))
        self.assertEqual(self.local("flocker:managed"), "yes")
        state = self.ok(self.ask(STATE, self.dataset_id))
        self.assertEqual((state["exists"], state["resume_token"] is not None), (False, True))
        self.refused("ResumeStateExists", "push", one)
        rest = self.sender_fake.send_stream(["zfs", "send", "-t", state["resume_token"]])
        self.ok(self.push(one, data=rest, base_arg=RESUME))
        replica = self.replica()
        self.assertEqual((replica.resume_token, replica.writable, replica.mounted,
                          replica.owner), (None, False, True, self.sender_uuid))

    def test_resume_full_unprepared_pool(self):
        """
        In a pool whose root is not read-only, partial state (readonly=off)
        is still resumed, and the replica comes out read-only.
        """
        self.zfs("create", "flocker/other")
        one = self.snap("flocker-push-1", b"x" * 5000)
        self.push(one, data=self.stream(one)[:-100])
        token = self.ok(self.ask(STATE, self.dataset_id))["resume_token"]
        rest = self.sender_fake.send_stream(["zfs", "send", "-t", token])
        self.ok(self.push(one, data=rest, base_arg=RESUME))
        self.assertEqual((self.replica().writable, self.local("readonly")), (False, "on"))

    def test_resume_incremental(self):
        """An interrupted incremental keeps the replica and resumes from its token."""
        one = self.snap("flocker-push-1")
        self.ok(self.push(one))
        two = self.snap("flocker-push-2", b"y" * 5000)
        self.assertEqual(self.push(two, one, data=self.stream(two, one)[:-100])[0], 1)
        state = self.ok(self.ask(STATE, self.dataset_id))
        self.assertEqual([s["name"] for s in state["snapshots"]], ["flocker-push-1"])
        self.refused("ResumeStateExists", ACQUIRE, self.dataset_id, 2, one.guid,
                     self.sender_uuid)
        rest = self.sender_fake.send_stream(["zfs", "send", "-t", state["resume_token"]])
        self.assertEqual(self.ok(self.push(two, data=rest, base_arg=RESUME))["pruned"],
                         ["flocker-push-1"])

    def test_abort_receive(self):
        """``abort-receive`` discards partial state only, and only when there is some."""
        self.refused("NoResumeState", ABORT_RECEIVE, self.dataset_id)
        one = self.snap("flocker-push-1", b"x" * 5000)
        self.push(one, data=self.stream(one)[:-100])
        self.ok(self.ask(ABORT_RECEIVE, self.dataset_id))
        self.assertNotIn(self.name, self.fake.snapshot_state().datasets)
        self.ok(self.push(one))
        two = self.snap("flocker-push-2", b"y" * 5000)
        self.push(two, one, data=self.stream(two, one)[:-100])
        self.ok(self.ask(ABORT_RECEIVE, self.dataset_id))
        self.assertEqual(self.replica().resume_token, None)
        self.assertEqual([s.name for s in self.replica().snapshots], ["flocker-push-1"])

    def test_unlabelled_partial_refused(self):
        """Partial state without our labels is not ours: reported, never touched."""
        self.successResultOf(self.backend.start())
        one = self.snap("flocker-push-1", b"x" * 5000)
        self.fake.receive_stream(["zfs", "receive", "-s", self.name], self.stream(one)[:-100])
        message = self.refused("NotManaged", STATE, self.dataset_id)["message"]
        self.assertIn("zfs receive -A", message)
        self.refused("NotManaged", ABORT_RECEIVE, self.dataset_id)


#: Scenario 13's hostile requests (as SSH_ORIGINAL_COMMAND).
_ID = "6f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f"
HOSTILE = [
    "", "   ", None, "zfs destroy -r flocker", "flocker-zfs peer zfs destroy -r flocker",
    "receive %s extra" % (_ID,), "flocker-zfs peer receive %s extra" % (_ID,),
    "receive ../../tank/home", "flocker-zfs peer receive ../../tank/home full a 1 %s 1" % (_ID,),
    "flocker-zfs peer state ../../tank/home", "flocker-zfs peer acquire %s; reboot" % (_ID,),
    "flocker-zfs peer acquire %s 2 1 %s; reboot" % (_ID, _ID),
    "flocker-zfs peer state %s $(reboot)" % (_ID,), "flocker-zfs peer state '%s" % (_ID,),
    "flocker-zfs peer list " + "x" * (1 << 20), "flocker-zfs peer state " + "a" * 600,
    "flocker-zfs peer receive %s full -F 1 %s 1" % (_ID, _ID),
    "flocker-zfs peer receive %s -F snap 1 %s 1" % (_ID, _ID),
    "flocker-zfs peer state %s" % (_ID.upper(),), "flocker-zfs peer hello extra",
]


class HandleTests(PeerCase):
    """``handle``: parsing, refusal without any command, logging, no tracebacks."""

    def assertRejected(self, text):
        """``text`` is answered with one error line and runs nothing."""
        commands_before = list(self.fake.commands)
        status, stdout = self.successResultOf(self.server.handle(text, None))
        response = decode(stdout)
        self.assertEqual((status, response["ok"]), (1, False))
        self.assertEqual(sorted(response), ["error", "fix", "message", "ok"])
        self.assertEqual(self.fake.commands, commands_before)

    def test_hostile(self):
        """Every request of scenario 13 is rejected without running a zfs command."""
        for text in HOSTILE:
            self.assertRejected(text)

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=600))
    def test_fuzz_text(self, text):
        """Arbitrary text that does not parse runs nothing and answers one error line."""
        try:
            parse_request(text)
        except ProtocolError:
            self.assertRejected(text)

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from([HELLO, STATE, RECEIVE, ACQUIRE, ABORT_RECEIVE, DATASETS, "list",
                            "zfs"]),
           st.lists(st.one_of(st.text(max_size=40), st.sampled_from(
               [_ID, FULL, RESUME, "1", "-F", "../x", "flocker-push-1", "0"])), max_size=7))
    def test_fuzz_requests(self, verb, args):
        """Near-valid requests are either rejected untouched or answered with one JSON line."""
        text = shlex.join(["flocker-zfs", "peer", verb] + args)
        try:
            parse_request(text)
        except ProtocolError:
            self.assertRejected(text)
            return
        status, stdout = self.successResultOf(self.server.handle(
            text, BytesReceiveStream(self.fake, b"garbage" * 100)))
        self.assertEqual(decode(stdout)["ok"], status == 0)

    def test_reply_too_large(self):
        """
        A reply longer than the protocol's limit is not sent: the server
        answers a ``ResponseTooLarge`` error saying how large it would be.
        """
        status, reply = self.successResultOf(self.server.handle("flocker-zfs peer datasets"))
        self.assertEqual(status, 0)
        self.patch(_peerserver, "MAX_RESPONSE", len(reply) - 1)
        status, stdout = self.successResultOf(self.server.handle("flocker-zfs peer datasets"))
        response = decode(stdout)
        self.assertEqual((status, response["error"]), (1, "ResponseTooLarge"))
        self.assertIn("the datasets reply would be %d bytes, more than the peer protocol's "
                      "limit of " % (len(reply),), response["message"])

    def test_unexpected_exception(self):
        """A bug answers a generic error; its traceback goes to the log, not stdout."""
        class Broken(object):
            def run(self, argv, errors=(), timeout=None):
                return fail(RuntimeError("secret detail"))
        backend = ZFSBackend(MemoryReactorClock(), "flocker", os.path.abspath(self.mktemp()),
                             self.node_uuid, runner=Broken())
        status, stdout = self.successResultOf(PeerServer(backend).handle(
            "flocker-zfs peer hello"))
        response = decode(stdout)
        self.assertEqual((status, response["error"]), (1, "PeerServeFailed"))
        self.assertNotIn(b"secret", stdout)
        self.assertNotIn(b"Traceback", stdout)
        self.flushLoggedErrors(RuntimeError)

    @capture_logging(None)
    def test_logged(self, logger):
        """Each request is one action (verb, args, SSH_CONNECTION) holding its commands."""
        self.successResultOf(self.server.handle(
            "flocker-zfs peer state %s" % (self.dataset_id,), None,
            ssh_connection="10.0.0.2 50000 10.0.0.3 22"))
        self.successResultOf(self.server.handle("zfs destroy -r flocker", None))
        served, rejected = LoggedAction.of_type(logger.messages, PEER_SERVE)
        self.assertEqual(
            (served.succeeded, served.start_message["verb"], served.start_message["args"],
             served.start_message["ssh_connection"]),
            (True, STATE, [self.dataset_id], "10.0.0.2 50000 10.0.0.3 22"))
        self.assertIn(COMMAND, [child.start_message["action_type"]
                                for child in served.children])
        self.assertEqual((rejected.succeeded, rejected.start_message["verb"],
                          rejected.start_message["request"]),
                         (False, None, repr("zfs destroy -r flocker")))
        self.assertEqual(rejected.children, [])


class ServeTests(SynchronousTestCase):
    """:func:`serve`: the ``peer-serve`` process, with a fake runner and reactor."""

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.root, "bin"))
        zfs = os.path.join(self.root, "bin", "zfs")
        with open(zfs, "w") as f:
            f.write("#!/bin/sh\nexit 99\n")
        os.chmod(zfs, 0o755)
        self.node_file = os.path.join(self.root, "node.json")
        self.node_uuid = str(uuid.uuid4())
        with open(self.node_file, "w") as f:
            json.dump({"uuid": self.node_uuid}, f)
        self.options = Namespace(pool="flocker", mount_root=os.path.join(self.root, "mnt"),
                                 node_file=self.node_file,
                                 lock_dir=os.path.join(self.root, "locks"))
        self.fake = FakeZFS(FUSE, seed=2)
        self.fake.add_pool("flocker")
        self.addCleanup(self.fake.unmount_all)
        self.reactor = MemoryProcessReactor()

    def serve(self, command, **environ):
        environ = dict(environ, PATH=os.path.join(self.root, "bin"))
        if command is not None:
            environ["SSH_ORIGINAL_COMMAND"] = command
        out, err = BytesIO(), StringIO()
        d = serve(self.reactor, self.options, environ, 7, out, err, runner=self.fake)
        return d, out, err

    def test_hello(self):
        """A request is answered with one JSON line on stdout and status 0."""
        d, out, err = self.serve("flocker-zfs peer hello")
        self.assertEqual(self.successResultOf(d), 0)
        self.assertEqual((decode(out.getvalue())["node_uuid"], err.getvalue()),
                         (self.node_uuid, ""))

    def test_datasets(self):
        """
        ``datasets`` through the process entry: one JSON line with this
        node's state, status 0, without the per-dataset lock of the
        requests that change something.
        """
        d, out, err = self.serve("flocker-zfs peer datasets")
        self.assertEqual(self.successResultOf(d), 0)
        state = node_state_from_json(decode(out.getvalue())["node_state"])
        self.assertEqual((state, err.getvalue()), (NodeState(node_uuid=self.node_uuid), ""))
        self.assertFalse(os.path.exists(self.options.lock_dir))

    def test_rejected(self):
        """An interactive login or a shell command gets status 1 and one stderr line."""
        self.options.node_file = os.path.join(self.root, "missing.json")
        for command in (None, "zfs destroy -r flocker"):
            d, out, err = self.serve(command)
            self.assertEqual(self.successResultOf(d), 1)
            self.assertEqual(decode(out.getvalue())["error"], "ProtocolError")
            self.assertEqual(len(err.getvalue().splitlines()), 1)
        self.assertEqual(self.fake.commands, [])

    def test_identity_created(self):
        """
        A node that only ever received has no identity yet: the first
        request creates it, and later ones keep it.
        """
        self.options.node_file = os.path.join(self.root, "new", "node.json")
        d, out, err = self.serve("flocker-zfs peer hello")
        self.assertEqual(self.successResultOf(d), 0, err.getvalue())
        first = decode(out.getvalue())["node_uuid"]
        d, out, err = self.serve("flocker-zfs peer hello")
        self.assertEqual(decode(out.getvalue())["node_uuid"], first)

    def test_bad_identity(self):
        """A corrupt node identity fails the request clearly and is kept."""
        self.options.node_file = os.path.join(self.root, "bad.json")
        with open(self.options.node_file, "w") as handle:
            handle.write("{")
        d, out, err = self.serve("flocker-zfs peer hello")
        self.assertEqual(self.successResultOf(d), 1)
        self.assertIn("not JSON", err.getvalue())
        with open(self.options.node_file) as handle:
            self.assertEqual(handle.read(), "{")

    def test_receive_process(self):
        """
        ``receive`` spawns ``zfs receive`` with the session's stdin as its
        own, then labels the replica; the lock file is released after.
        """
        sender = FakeZFS(FUSE, seed=1)
        sender.add_pool("src")
        sender.execute(["zfs", "create", "src/a"])
        sender.execute(["zfs", "snapshot", "src/a@flocker-push-1"])
        data = sender.send_stream(["zfs", "send", "src/a@flocker-push-1"])
        guid = int(sender.execute(["zfs", "get", "-H", "-p", "-o", "value", "guid",
                                   "src/a@flocker-push-1"])[1])
        d, out, err = self.serve(shlex.join(request(RECEIVE, _ID, FULL, "flocker-push-1", guid,
                                                    str(uuid.uuid4()), 1)))
        self.assertNoResult(d)
        protocol, executable, argv, env, child_fds, transport = self.reactor.spawned[-1]
        self.assertEqual((executable, argv, child_fds),
                         (os.path.join(self.root, "bin", "zfs"),
                          ["zfs", "receive", "-u", "flocker/" + _ID], {0: 7, 1: "r", 2: "r"}))
        self.assertEqual(env["LC_ALL"], "C")
        busy, _, _ = self.serve(shlex.join(request(ACQUIRE, _ID, 2, guid, str(uuid.uuid4()))))
        self.assertEqual(self.successResultOf(busy), 1)
        status, stdout, stderr = self.fake.receive_stream(argv, data)
        protocol.childDataReceived(2, stderr)
        protocol.processEnded(Failure(ProcessDone(0)))
        self.assertEqual(self.successResultOf(d), 0, err.getvalue())
        self.assertEqual(decode(out.getvalue())["snapshot"]["guid"], str(guid))
        DatasetLock(self.options.lock_dir, "flocker", _ID).acquire()

    def test_receive_failed(self):
        """A failed ``zfs receive`` is answered with the typed error for its stderr."""
        d, out, err = self.serve(shlex.join(request(RECEIVE, _ID, FULL, "s", 1, _ID, 1)))
        protocol = self.reactor.spawned[-1][0]
        protocol.childDataReceived(2, b"cannot receive new filesystem stream: "
                                      b"invalid backup stream\n")
        protocol.processEnded(Failure(ProcessTerminated(exitCode=1)))
        self.assertEqual(self.successResultOf(d), 1)
        self.assertEqual(decode(out.getvalue())["error"], "StreamIncomplete")
        self.assertIn("stream was incomplete", err.getvalue())

    def test_busy(self):
        """
        A request for a dataset another process is working on is refused at
        once, naming that process.
        """
        DatasetLock(self.options.lock_dir, "flocker", _ID,
                    purpose="flocker-zfs peer-serve receive").acquire()
        d, out, err = self.serve(shlex.join(request(ABORT_RECEIVE, _ID)))
        self.assertEqual(self.successResultOf(d), 1)
        response = decode(out.getvalue())
        self.assertEqual(response["error"], "DatasetLocked")
        self.assertIn("locked by another flocker-zfs process (pid %d: flocker-zfs peer-serve "
                      "receive)" % (os.getpid(),), response["message"])

    def local_backend(self):
        """This node's backend as the agent or a command makes it: same pool, lock dir."""
        return ZFSBackend(self.reactor, "flocker", self.options.mount_root, self.node_uuid,
                          runner=self.fake, lock_dir=self.options.lock_dir, lock_wait=30)

    def test_refused_during_local_operation(self):
        """
        While the node's own backend (agent or command) holds a dataset,
        peer-serve refuses changing it, naming the operation.
        """
        gate = Deferred()

        async def hold():
            async with self.local_backend().locked(_ID, "destroy"):
                await gate
        held = Deferred.fromCoroutine(hold())
        d, out, err = self.serve(shlex.join(request(ACQUIRE, _ID, 2, 1, str(uuid.uuid4()))))
        self.assertEqual(self.successResultOf(d), 1)
        self.assertIn("(pid %d: flocker-zfs destroy)" % (os.getpid(),),
                      decode(out.getvalue())["message"])
        gate.callback(None)
        self.successResultOf(held)
        d, out, err = self.serve(shlex.join(request(ABORT_RECEIVE, _ID)))
        self.assertNotEqual(decode(out.getvalue()).get("error"), "DatasetLocked")

    def test_local_destroy_waits_for_receive(self):
        """
        A local destroy of a dataset a peer is receiving into waits until
        the receive has ended (RELIABILITY.md scenario 54), then destroys
        the complete replica.
        """
        sender = FakeZFS(FUSE, seed=1)
        sender.add_pool("src")
        sender.execute(["zfs", "create", "src/a"])
        sender.execute(["zfs", "snapshot", "src/a@flocker-push-1"])
        data = sender.send_stream(["zfs", "send", "src/a@flocker-push-1"])
        guid = int(sender.execute(["zfs", "get", "-H", "-p", "-o", "value", "guid",
                                   "src/a@flocker-push-1"])[1])
        d, out, err = self.serve(shlex.join(request(RECEIVE, _ID, FULL, "flocker-push-1", guid,
                                                    str(uuid.uuid4()), 1)))
        protocol, _, argv = self.reactor.spawned[-1][:3]
        backend = self.local_backend()
        destroyed = backend.destroy(_ID, force=True)
        self.reactor.advance(10)
        self.assertNoResult(destroyed)
        status, stdout, stderr = self.fake.receive_stream(argv, data)
        protocol.childDataReceived(2, stderr)
        protocol.processEnded(Failure(ProcessDone(0)))
        self.assertEqual(self.successResultOf(d), 0, err.getvalue())
        self.reactor.advance(1)
        self.successResultOf(destroyed)
        self.assertEqual(self.successResultOf(backend.discover()).datasets, {})

    def test_process(self):
        """
        ``flocker-zfs peer-serve`` answers a hostile request in a process of
        its own: status 1, one JSON line, one stderr line, nothing run.
        """
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        result = subprocess.run(
            [sys.executable, "-m", "flocker_zfs", "peer-serve", "--pool", "flocker",
             "--node-file", self.node_file, "--lock-dir", self.options.lock_dir],
            capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
            env=dict(os.environ, SSH_ORIGINAL_COMMAND="zfs destroy -r flocker",
                     PATH=os.path.join(self.root, "bin"), PYTHONPATH=top))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(json.loads(result.stdout)["error"], "ProtocolError")
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)

    def test_stream_process_to_process(self):
        """
        With a real reactor, ``zfs receive`` reads the stream straight from
        the process's stdin (here a stand-in ``zfs`` that saves it).
        """
        saved = os.path.join(self.root, "saved")
        with open(os.path.join(self.root, "bin", "zfs"), "w") as f:
            f.write('#!/bin/sh\ncat > "%s"\necho "$@"\n' % (saved,))
        script = ("import sys\n"
                  "from twisted.internet.task import react\n"
                  "from flocker_zfs._runner import ProcessRunner\n"
                  "from flocker_zfs._peerserve_main import ProcessReceiveStream\n"
                  "def main(reactor):\n"
                  "    stream = ProcessReceiveStream(reactor, 0, ProcessRunner(\n"
                  "        reactor, environ={'PATH': sys.argv[1] + ':/usr/bin:/bin'}))\n"
                  "    d = stream.receive(['zfs', 'receive', '-u', 'flocker/x'])\n"
                  "    return d.addCallback(sys.stdout.buffer.write)\n"
                  "react(main)\n")
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        data = os.urandom(1 << 20)
        result = subprocess.run(
            [sys.executable, "-c", script, os.path.join(self.root, "bin")], input=data,
            capture_output=True, timeout=60, env=dict(os.environ, PYTHONPATH=top))
        self.assertEqual((result.returncode, result.stdout), (0, b"receive -u flocker/x\n"),
                         result.stderr)
        with open(saved, "rb") as f:
            self.assertEqual(f.read(), data)
