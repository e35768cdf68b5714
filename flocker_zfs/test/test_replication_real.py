"""
Replication and handoff on real ZFS over real SSH: two file-backed pools
stand for nodes A and B, each served by ``flocker-zfs peer-serve`` as the
forced command of its own private sshd on loopback.  Bytes really cross ssh;
data written on one node is read back on the other.

Skipped without root, ZFS or sshd; a failure under ``CI=true``.
"""

import errno
import hashlib
import os
import shlex
import sys
import uuid

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from .._backend import ZFSBackend
from .._replication import Replicator, SimulatedCrash
from .._sshpeer import SSHPeer
from ..errors import TransferFailed
from ..node import load_node_uuid
from . import realssh, realzfs

_REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Node(object):
    """
    One real node: a pool, a mount root, an identity, a backend in this
    process and a private sshd whose forced command serves the pool.
    """

    def __init__(self, case, name):
        realzfs.require_real_zfs()
        self.name = name
        self.mount_root = realzfs.make_mount_root(case)
        self.pool = realzfs.make_pool(case)
        self.node_file = os.path.join(self.mount_root + "-" + name + ".json")
        case.addCleanup(lambda: os.path.exists(self.node_file) and os.remove(self.node_file))
        self.node_uuid = load_node_uuid(self.node_file)
        self.backend = ZFSBackend(reactor, self.pool, self.mount_root, self.node_uuid)
        self.replicator = Replicator(self.backend, reactor)
        self.sshd = realssh.make_sshd(case)
        self.serve()

    def serve_command(self):
        """
        The forced command: this checkout's flocker-zfs, serving this pool.
        """
        return "PYTHONPATH=%s exec %s" % (shlex.quote(_REPOSITORY), shlex.join([
            sys.executable, "-m", "flocker_zfs", "peer-serve", "--pool", self.pool,
            "--mount-root", self.mount_root, "--node-file", self.node_file,
            "--lock-dir", self.mount_root + "-locks"]))

    def serve(self, command=None):
        self.sshd.set_forced_command(command or self.serve_command())

    def peer(self, other):
        """
        :return: an ``SSHPeer`` from this node to ``other``.
        """
        return SSHPeer(reactor, other.sshd.config, other.sshd.host)

    def path(self, dataset_id, name):
        return os.path.join(self.mount_root, dataset_id, name)


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class RealReplicationTests(TestCase):
    """
    Push and handoff between two real pools over real sshd.
    """

    timeout = 300

    def setUp(self):
        self.a = _Node(self, "a")
        self.b = _Node(self, "b")
        self.dataset_id = str(uuid.uuid4())

    async def create(self, size=4 * 1024 * 1024):
        await self.a.backend.create(self.dataset_id)
        with open(self.a.path(self.dataset_id, "data"), "wb") as handle:
            handle.write(os.urandom(size))

    async def writable(self):
        """
        :return: names of the nodes whose copy is writable (U1).
        """
        result = []
        for node in (self.a, self.b):
            state = await node.backend.discover()
            dataset = state.datasets.get(self.dataset_id)
            if dataset is not None and dataset.writable:
                result.append(node.name)
        return result

    def assert_read_only(self, node):
        with self.assertRaises(OSError) as caught:
            with open(node.path(self.dataset_id, "intruder"), "wb") as handle:
                handle.write(b"x")
        self.assertEqual(caught.exception.errno, errno.EROFS)

    def dying_receiver(self, node, pattern):
        """
        A forced command that serves ``node`` normally, except that a request
        matching the shell ``pattern`` reads 1 MB of its stream and dies.
        """
        return node.sshd.write_script(
            "dying", "#!/bin/sh\ncase \"$SSH_ORIGINAL_COMMAND\" in\n"
            "  %s) head -c 1000000 > /dev/null; exit 1;;\n"
            "esac\n%s\n" % (pattern, node.serve_command()))

    async def test_push(self):
        """
        Data written on A reads back byte-identical on B after a push; B's
        replica is read-only; a second push sends only the change.
        """
        await self.create()
        first = await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(_digest(self.b.path(self.dataset_id, "data")),
                         _digest(self.a.path(self.dataset_id, "data")))
        self.assert_read_only(self.b)
        with open(self.a.path(self.dataset_id, "more"), "wb") as handle:
            handle.write(b"small change")
        second = await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        with open(self.b.path(self.dataset_id, "more"), "rb") as handle:
            self.assertEqual(handle.read(), b"small change")
        self.assertEqual(second.base, first.snapshot)
        self.assertTrue(second.bytes < first.bytes / 4, (first.bytes, second.bytes))
        self.assertEqual(await self.writable(), ["a"])

    async def test_handoff_and_back(self):
        """
        After a handoff B is the one writable owner with A's data and A is
        read-only; handing back brings B's writes to A.
        """
        await self.create()
        result = await self.a.replicator.handoff(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(await self.writable(), ["b"])
        self.assertEqual(_digest(self.b.path(self.dataset_id, "data")),
                         _digest(self.a.path(self.dataset_id, "data")))
        self.assert_read_only(self.a)
        self.assertEqual(result.generation, 2)
        with open(self.b.path(self.dataset_id, "from-b"), "wb") as handle:
            handle.write(b"written on b")
        await self.b.replicator.handoff(self.dataset_id, self.b.peer(self.a))
        self.assertEqual(await self.writable(), ["a"])
        with open(self.a.path(self.dataset_id, "from-b"), "rb") as handle:
            self.assertEqual(handle.read(), b"written on b")
        self.assert_read_only(self.b)

    async def test_receiver_dies_mid_stream(self):
        """
        When the receiving side dies part-way through a stream, the push
        fails naming a side, B keeps its last complete snapshot, and a retry
        completes with identical data.
        """
        await self.create(size=16 * 1024 * 1024)
        self.b.serve(self.dying_receiver(self.b, "*' receive '*"))
        with self.assertRaises(TransferFailed):
            await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertNotIn(self.dataset_id, (await self.b.backend.discover()).datasets)
        self.b.serve()
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(_digest(self.b.path(self.dataset_id, "data")),
                         _digest(self.a.path(self.dataset_id, "data")))

    async def test_interrupted_handoff_retried(self):
        """
        A handoff interrupted after A went read-only (the agent died there),
        retried, finishes with exactly one writable owner and all the data;
        in between, no node is writable twice.
        """
        await self.create()

        def crash(step):
            if step == "readonly":
                raise SimulatedCrash(step)
        crashing = Replicator(self.a.backend, reactor, faults=crash)
        with self.assertRaises(SimulatedCrash):
            await crashing.handoff(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(await self.writable(), [])
        await Replicator(self.a.backend, reactor).handoff(self.dataset_id,
                                                          self.a.peer(self.b))
        self.assertEqual(await self.writable(), ["b"])
        self.assertEqual(_digest(self.b.path(self.dataset_id, "data")),
                         _digest(self.a.path(self.dataset_id, "data")))

    async def test_final_stream_killed_then_retry(self):
        """
        A handoff whose final stream dies leaves no node writable (the
        designed window); the retried handoff completes.
        """
        await self.create()
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        with open(self.a.path(self.dataset_id, "late"), "wb") as handle:
            handle.write(os.urandom(8 * 1024 * 1024))
        self.b.serve(self.dying_receiver(self.b, "*' receive '*handoff*"))
        with self.assertRaises(TransferFailed):
            await self.a.replicator.handoff(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(await self.writable(), [])
        self.b.serve()
        await self.a.replicator.handoff(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(await self.writable(), ["b"])
        self.assertEqual(_digest(self.b.path(self.dataset_id, "late")),
                         _digest(self.a.path(self.dataset_id, "late")))
