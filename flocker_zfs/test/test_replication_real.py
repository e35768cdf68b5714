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
import signal
import subprocess
import sys
import shutil
import uuid

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from .._backend import ZFSBackend
from .._dslock import DatasetLock, DatasetLocked
from .._replication import Replicator, SimulatedCrash
from .._sshpeer import SSHPeer
from ..errors import DatasetBusy, DatasetInUse, TransferFailed
from ..node import load_node_uuid
from . import realssh, realzfs

_REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _flocked(path):
    """
    :return: whether some process holds an ``flock`` on ``path`` (from
        ``/proc/locks``, without touching the lock).
    """
    try:
        inode = os.stat(path).st_ino
    except OSError:
        return False
    with open("/proc/locks") as handle:
        for line in handle:
            fields = line.split()
            if "FLOCK" in fields and any(
                    field.count(":") == 2 and field.rsplit(":", 1)[1] == str(inode)
                    for field in fields):
                return True
    return False


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
        # The lock directory this node's peer-serve uses, as on a real node.
        self.lock_dir = self.mount_root + "-locks"
        case.addCleanup(shutil.rmtree, self.lock_dir, True)
        self.backend = ZFSBackend(reactor, self.pool, self.mount_root, self.node_uuid,
                                  lock_dir=self.lock_dir, lock_wait=5)
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
            "--lock-dir", self.lock_dir]))

    def serve(self, command=None):
        self.sshd.set_forced_command(command or self.serve_command())

    def peer(self, other):
        """
        :return: an ``SSHPeer`` from this node to ``other``.
        """
        return SSHPeer(reactor, other.sshd.config, other.sshd.host)

    def path(self, dataset_id, name):
        return os.path.join(self.mount_root, dataset_id, name)


#: Appends 4 KiB records with fsync until a write fails with EROFS, writing
#: the count of acknowledged records (outside the dataset) after each one.
_WRITER = """
import errno, os, sys
path, acked = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
count = 0
while True:
    record = (b"%08d" % count).ljust(4096, b".")
    try:
        os.write(fd, record)
        os.fsync(fd)
    except OSError as error:
        sys.exit(0 if error.errno == errno.EROFS else 1)
    count += 1
    with open(acked, "a") as log:
        log.write("%d\\n" % count)
"""


def _record(index):
    return (b"%08d" % index).ljust(4096, b".")


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class _RealCase(TestCase):
    """
    Two real nodes, ``self.a`` and ``self.b``, and a dataset id.
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


class RealReplicationTests(_RealCase):
    """
    Push and handoff between two real pools over real sshd.
    """

    async def test_push(self):
        """
        Data written on A reads back byte-identical on B after a push; B's
        replica is read-only; a second push sends only the change.
        """
        await self.create()
        first = await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        # The result names the peer with its (non-default) port.
        self.assertEqual(first.peer, "127.0.0.1:%d" % (self.b.sshd.port,))
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

    def b_reads(self, name):
        """:return: what a reader on B's copy reads at ``name``, or ``None``."""
        try:
            with open(self.b.path(self.dataset_id, name), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def a_writes(self, name, data):
        """Write ``name`` on A by a rename over it, as editors and atomic writers do."""
        temporary = self.a.path(self.dataset_id, "." + name + ".tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.rename(temporary, self.a.path(self.dataset_id, name))

    async def test_replica_readers_see_each_push(self):
        """
        A reader of B's mounted replica who looked for a file before the
        push that brings it reads it right after that push, and files
        changed in place (same size) or replaced by a rename read their new
        content; so does the new owner after a handoff (zfs-fuse's kernel
        caches kept them missing or old for an hour before).
        """
        await self.a.backend.create(self.dataset_id)
        with open(self.a.path(self.dataset_id, "same"), "wb") as handle:
            handle.write(b"AAAA")
        self.a_writes("replaced", b"old version")
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual([self.b_reads(name) for name in ("new", "same", "replaced")],
                         [None, b"AAAA", b"old version"])
        with open(self.a.path(self.dataset_id, "same"), "r+b") as handle:
            handle.write(b"BBBB")
        self.a_writes("replaced", b"new version")
        self.a_writes("new", b"arrived")
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual([self.b_reads(name) for name in ("new", "same", "replaced")],
                         [b"arrived", b"BBBB", b"new version"])
        self.a_writes("final", b"written last on A")
        self.assertIsNone(self.b_reads("final"))
        await self.a.replicator.handoff(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(self.b_reads("final"), b"written last on A")

    async def test_reader_holding_replica(self):
        """
        A push while a reader holds a file open on B's replica succeeds
        (B leaves that mount alone); the first push after the reader closed
        it makes everything readable, a file looked for meanwhile included.
        """
        await self.create(size=4096)
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.a_writes("during", b"pushed while read")
        with open(self.b.path(self.dataset_id, "data"), "rb") as reader:
            self.assertIsNone(self.b_reads("during"))
            await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
            self.assertEqual(len(reader.read()), 4096)
        self.a_writes("after", b"pushed after")
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual((self.b_reads("during"), self.b_reads("after")),
                         (b"pushed while read", b"pushed after"))

    async def test_local_operation_excludes_receive(self):
        """
        While B's own backend (its agent or a command) works on the dataset,
        a push into it is refused by B's peer-serve naming that process;
        and while B's peer-serve receives into it, B's backend waits
        (RELIABILITY.md scenario 54).  Afterwards both proceed.
        """
        await self.create()
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        gate = Deferred()

        async def hold():
            async with self.b.backend.locked(self.dataset_id, "destroy"):
                await gate
        held = Deferred.fromCoroutine(hold())
        with self.assertRaises(TransferFailed) as caught:
            await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(caught.exception.error.name, "DatasetLocked")
        self.assertIn("(pid %d: flocker-zfs destroy)" % (os.getpid(),),
                      str(caught.exception.error))
        gate.callback(None)
        await held
        with open(self.a.path(self.dataset_id, "more"), "wb") as handle:
            handle.write(os.urandom(8 * 1024 * 1024))
        impatient = ZFSBackend(reactor, self.b.pool, self.b.mount_root, self.b.node_uuid,
                               lock_dir=self.b.lock_dir, lock_wait=0)
        await impatient.start()
        await self.b.backend.start()
        pushing = self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        lock = os.path.join(self.b.lock_dir, self.b.pool, self.dataset_id + ".lock")
        waited = []
        # Until B's peer-serve holds the lock: a process start can take
        # seconds on a loaded machine, so the bound is wall time, and the
        # push ending first fails the test below.
        deadline = reactor.seconds() + 120
        while not pushing.called and reactor.seconds() < deadline:
            # Looked up in /proc/locks: taking the lock to probe it would
            # make peer-serve find it taken and refuse the push.
            holder = DatasetLock(self.b.lock_dir, self.b.pool, self.dataset_id).holder()
            if _flocked(lock) and holder is not None:
                waited.append(holder)
                break
            await deferLater(reactor, 0.01, lambda: None)
        if not waited:
            await pushing
            self.fail("peer-serve never held %s during the push" % (lock,))
        # Started backends try the lock in the same reactor turn as the
        # probe, while peer-serve still holds it.
        refused = impatient.snapshot(self.dataset_id, "refused")
        snapshot = self.b.backend.snapshot(self.dataset_id, "during-receive")
        self.assertIn("flocker-zfs peer-serve receive", waited[0])
        with self.assertRaises(DatasetLocked) as locked:
            await refused
        self.assertIn("flocker-zfs peer-serve receive", str(locked.exception))
        pushed = await pushing
        self.assertEqual((await snapshot).name, "during-receive")
        names = [s.name for s in (await self.b.backend.get(self.dataset_id)).snapshots]
        self.assertEqual(names[-2:], [pushed.snapshot, "during-receive"])

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

    async def test_cut_stream_resumes_or_restarts(self):
        """
        A stream cut part-way into the peer's ``zfs receive``: on OpenZFS the
        next push resumes from the receive's token (no new snapshot, no full
        resend); on zfs-fuse it starts again. Either way the data arrives
        intact and exactly one copy is writable.
        """
        await self.create(size=24 * 1024 * 1024)
        truncating = self.b.sshd.write_script(
            "truncating", "#!/bin/sh\ncase \"$SSH_ORIGINAL_COMMAND\" in\n"
            "  *' receive '*) head -c 8000000 | %s;;\n"
            "  *) %s;;\nesac\n" % (self.b.serve_command(), self.b.serve_command()))
        self.b.serve(truncating)
        with self.assertRaises(TransferFailed):
            await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        snapshots = [s.name for s in (await self.a.backend.get(self.dataset_id)).snapshots]
        self.b.serve()
        result = await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        capabilities = await self.a.backend.start()
        self.assertEqual(result.resumed, capabilities.resume_tokens)
        if capabilities.resume_tokens:
            self.assertEqual(
                [s.name for s in (await self.a.backend.get(self.dataset_id)).snapshots],
                snapshots)
            self.assertTrue(result.bytes < 24 * 1024 * 1024, result.bytes)
        self.assertEqual(_digest(self.b.path(self.dataset_id, "data")),
                         _digest(self.a.path(self.dataset_id, "data")))
        self.assertEqual(await self.writable(), ["a"])

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


class RealReplicationFaultTests(_RealCase):
    """
    Faults on the real tier: a modified replica, a full destination pool, a
    held base, hostile requests straight through sshd.
    """

    async def test_destination_modified(self):
        """
        A replica someone made writable and changed is never overwritten: the
        push fails on the receiver side naming the cause, and B keeps the
        change.
        """
        await self.create()
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        name = "%s/%s" % (self.b.pool, self.dataset_id)
        await self.b.backend._runner.run(["zfs", "set", "readonly=off", name])
        with open(self.b.path(self.dataset_id, "local-change"), "wb") as handle:
            handle.write(b"keep me")
        await self.b.backend._runner.run(["zfs", "set", "readonly=on", name])
        with open(self.a.path(self.dataset_id, "data"), "ab") as handle:
            handle.write(b"more")
        with self.assertRaises(TransferFailed) as caught:
            await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual((caught.exception.side, caught.exception.error.name),
                         ("receiver", "DestinationModified"))
        with open(self.b.path(self.dataset_id, "local-change"), "rb") as handle:
            self.assertEqual(handle.read(), b"keep me")

    async def test_destination_full(self):
        """
        A push into a full pool fails on the receiver side as out of space,
        leaves B without a partial dataset, and succeeds once space is freed.
        """
        await self.create(size=48 * 1024 * 1024)
        filler = "%s/filler" % (self.b.pool,)
        await self.b.backend._runner.run(["zfs", "create", "-o", "mountpoint=%s-filler"
                                          % (self.b.mount_root,), filler])
        fd = os.open(self.b.mount_root + "-filler/big", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, os.urandom(1024 * 1024))
        except OSError:
            pass  # the pool is full
        finally:
            os.close(fd)
        with self.assertRaises(TransferFailed) as caught:
            await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(caught.exception.side, "receiver")
        self.assertIn("space", str(caught.exception).lower())
        self.assertNotIn(self.dataset_id, (await self.b.backend.discover()).datasets)
        await self.b.backend._runner.run(["zfs", "unmount", filler])
        await self.b.backend._runner.run(["zfs", "destroy", filler])
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(_digest(self.b.path(self.dataset_id, "data")),
                         _digest(self.a.path(self.dataset_id, "data")))

    async def test_base_is_held(self):
        """
        The peer's incremental base cannot be destroyed on the source while
        the peer needs it (a hold), so the next push stays incremental.
        """
        await self.create()
        first = await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        with self.assertRaises(DatasetBusy):
            await self.a.backend._runner.run(
                ["zfs", "destroy", "%s/%s@%s" % (self.a.pool, self.dataset_id, first.snapshot)])
        second = await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(second.base, first.snapshot)

    async def test_destroy_after_push(self):
        """
        A pushed dataset (its base held for the peer) can still be destroyed
        on both nodes.
        """
        await self.create()
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        await self.a.backend.destroy(self.dataset_id)
        await self.b.backend.destroy(self.dataset_id)
        for node in (self.a, self.b):
            self.assertNotIn(self.dataset_id, (await node.backend.discover()).datasets)

    async def test_writer_during_handoff(self):
        """
        A process appending (and fsyncing) records through a handoff never
        loses an acknowledged record.  Where ``readonly=on`` cuts writers off
        (OpenZFS), its next write fails with EROFS and every acknowledged
        record is on B.  Where it does not (zfs-fuse keeps files already open
        writable), the handoff is refused while the file is open, A stays
        the writable owner, and once the writer stops the handoff carries
        every record.
        """
        await self.create()
        acked = self.a.mount_root + "-acked"
        writer = subprocess.Popen([sys.executable, "-c", _WRITER,
                                   self.a.path(self.dataset_id, "log"), acked])
        self.addCleanup(lambda: writer.poll() is None and writer.kill())
        while not os.path.exists(acked):
            await deferLater(reactor, 0.05, lambda: None)
        await deferLater(reactor, 0.3, lambda: None)
        capabilities = await self.a.backend.start()
        if capabilities.readonly_spares_open_files:
            with self.assertRaises(DatasetInUse):
                await self.a.replicator.handoff(self.dataset_id, self.a.peer(self.b))
            self.assertIn("a", await self.writable())
            writer.terminate()
            self.assertEqual(await self._exit(writer), -signal.SIGTERM)
            await self.a.replicator.handoff(self.dataset_id, self.a.peer(self.b))
        else:
            await self.a.replicator.handoff(self.dataset_id, self.a.peer(self.b))
            self.assertEqual(await self._exit(writer), 0)  # stopped on EROFS
        with open(acked) as handle:
            count = int(handle.read().split()[-1])
        with open(self.b.path(self.dataset_id, "log"), "rb") as handle:
            content = handle.read()
        self.assertTrue(count > 0)
        self.assertEqual(content[:count * 4096], b"".join(_record(i) for i in range(count)))
        self.assertEqual(await self.writable(), ["b"])

    async def _exit(self, process):
        for _ in range(100):
            if process.poll() is not None:
                break
            await deferLater(reactor, 0.1, lambda: None)
        return process.returncode

    async def test_hostile_requests(self):
        """
        Requests that are not well-formed peer requests, sent straight
        through sshd to peer-serve, are refused with a non-zero exit and
        change nothing in B's pool.
        """
        await self.create()
        await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        before = await self._names(self.b)
        config = self.b.sshd.config
        for request in ["", "zfs destroy -r %s" % (self.b.pool,),
                        "flocker-zfs peer receive %s extra" % (self.dataset_id,),
                        "flocker-zfs peer state ../../%s" % (self.b.pool,),
                        "flocker-zfs peer acquire %s 9 1 %s; reboot" % (
                            self.dataset_id, self.a.node_uuid),
                        "flocker-zfs peer state " + "x" * 100000]:
            argv = ["ssh", "-F", "/dev/null", "-i", config.identity, "-o", "BatchMode=yes",
                    "-o", "UserKnownHostsFile=%s" % (config.known_hosts,),
                    "-o", "StrictHostKeyChecking=yes", "-p", str(config.port), "-l", "root",
                    "--", self.b.sshd.host, request]
            result = await getProcessOutputAndValue(
                "/usr/bin/ssh", argv[1:], env={"PATH": "/usr/bin:/bin"}, reactor=reactor)
            self.assertNotEqual((request[:40], result[2]), (request[:40], 0))
            self.assertEqual(await self._names(self.b), before)

    async def _names(self, node):
        out = await node.backend._runner.run(
            ["zfs", "get", "-H", "-p", "-r", "-o", "name,value", "guid", node.pool])
        return sorted(out.decode().splitlines())
