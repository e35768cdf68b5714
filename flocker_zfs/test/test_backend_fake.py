"""
The ``IStorageBackend`` conformance suite against the fake ZFS, in both
capability profiles, plus backend behaviour only the fake can set up
(daemon down, ZFS missing, injected failures, eliot nesting).
"""

import os
import uuid

from eliot.testing import LoggedAction, capture_logging
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from .._actions import COMMAND, CREATE, START
from .._backend import MountFailed, ZFSBackend
from .._dslock import DatasetLock, DatasetLocked
from ..errors import (
    CommandFailed, ConfigError, DatasetNotFound, ZFSNotInstalled, ZFSNotRunning)
from ..testing import FakeZFS, make_fake_backend
from .backendtests import Harness, RecordingRunner, make_istoragebackend_tests
from .test_dslock import hold_in_process


def fake_harness(profile):
    """
    :return: a harness factory over a fresh :class:`FakeZFS` of ``profile``.
    """
    def make(case):
        fake = FakeZFS(profile=profile)
        fake.add_pool("flocker")
        case.addCleanup(fake.unmount_all)
        mount_root = os.path.abspath(case.mktemp())
        recorder = RecordingRunner(fake)
        node = str(uuid.uuid4())
        reactor = MemoryReactorClock()

        def make_backend(pool="flocker", mount_root=mount_root):
            return ZFSBackend(reactor, pool, mount_root, node, runner=fake)

        def make_busy(mountpoint):
            name = [n for n in fake.pools() if n == "flocker"][0] + "/" + \
                os.path.basename(mountpoint)
            fake.set_busy(name)
            return lambda: fake.set_busy(name, False)

        backend = ZFSBackend(reactor, "flocker", mount_root, node, runner=recorder)
        return Harness(backend, recorder, fake, profile, make_busy, make_backend,
                       enforces_readonly=False)
    return make


class FakeZFSFuseBackendTests(make_istoragebackend_tests(fake_harness("zfs-fuse"))):
    """
    ``IStorageBackend`` over the fake ZFS, zfs-fuse profile.
    """


class FakeOpenZFSBackendTests(make_istoragebackend_tests(fake_harness("openzfs"))):
    """
    ``IStorageBackend`` over the fake ZFS, OpenZFS profile.
    """


class FakeOnlyBackendTests(SynchronousTestCase):
    """
    Backend behaviour under conditions only the fake can create.
    """

    def setUp(self):
        self.backend, self.fake = make_fake_backend(os.path.abspath(self.mktemp()))
        self.addCleanup(self.fake.unmount_all)

    def test_daemon_down(self):
        """
        With the zfs-fuse daemon down, start-up fails with
        ``ZFSNotRunning`` whose fix says how to start it.
        """
        self.fake.daemon_running = False
        error = self.failureResultOf(self.backend.start(), ZFSNotRunning).value
        self.assertIn("zfs-fuse", str(error))

    def test_not_installed(self):
        """
        Without ZFS, operations fail with ``ZFSNotInstalled``.
        """
        self.fake.installed = False
        self.failureResultOf(self.backend.create(str(uuid.uuid4())), ZFSNotInstalled)

    def test_start_retried(self):
        """
        A failed start-up is not remembered: once the daemon is back, the
        next operation succeeds.
        """
        self.fake.daemon_running = False
        self.failureResultOf(self.backend.discover(), ZFSNotRunning)
        self.fake.daemon_running = True
        self.assertEqual(len(self.successResultOf(self.backend.discover()).datasets), 0)

    def test_failed_discovery_is_not_empty(self):
        """
        A discovery whose listing fails is a failure, never an empty pool.
        """
        dataset_id = str(uuid.uuid4())
        self.successResultOf(self.backend.create(dataset_id))
        self.fake.fail_next(lambda argv: argv[1] == "get", 1, b"internal error: oops\n")
        self.failureResultOf(self.backend.discover(), CommandFailed)
        self.assertIn(dataset_id, self.successResultOf(self.backend.discover()).datasets)

    def test_mount_failure_undo_fails(self):
        """
        If a dataset created but not mounted cannot be destroyed again
        either, the error says both and how to remove it.
        """
        dataset_id = str(uuid.uuid4())
        occupied = self.backend.path(dataset_id)
        occupied.makedirs()
        occupied.child("left").setContent(b"x")
        self.fake.fail_next(lambda argv: argv[1] == "destroy", 1,
                            b"cannot destroy 'x': I/O error\n")
        error = self.failureResultOf(self.backend.create(dataset_id), MountFailed).value
        where = occupied.path
        self.assertIn("dataset %s was created but could not be mounted at %s (cannot mount "
                      "'%s': directory is not empty), and destroying it again failed "
                      "(cannot destroy 'x': I/O error)" % (dataset_id, where, where),
                      str(error))
        self.assertIn("Fix: Destroy it with `flocker-zfs destroy %s`" % (dataset_id,),
                      str(error))
        self.assertFalse(self.successResultOf(self.backend.get(dataset_id)).mounted)

    def test_other_create_failure_destroys_nothing(self):
        """
        A create that fails for any other reason than a mount never destroys
        an existing dataset, even one that looks new (unmounted, no
        snapshots, generation 1): it may hold data another create made.
        """
        dataset_id = str(uuid.uuid4())
        self.successResultOf(self.backend.create(dataset_id))
        self.successResultOf(self.fake.run(["zfs", "unmount", "flocker/" + dataset_id]))
        self.fake.fail_next(lambda argv: argv[1] == "create", 1,
                            b"cannot create 'x': out of space\n")
        self.failureResultOf(self.backend.create(dataset_id))
        self.assertIn(dataset_id, self.successResultOf(self.backend.discover()).datasets)

    def test_mount_failure_undone(self):
        """
        A create whose mount fails (here: a non-empty directory in the way)
        leaves no dataset and leaves the directory alone.
        """
        dataset_id = str(uuid.uuid4())
        occupied = self.backend.path(dataset_id)
        occupied.makedirs()
        occupied.child("left").setContent(b"x")
        error = self.failureResultOf(self.backend.create(dataset_id), MountFailed).value
        self.assertIn("directory is not empty", str(error))
        self.assertEqual(self.successResultOf(self.backend.discover()).datasets, {})
        self.assertEqual(occupied.child("left").getContent(), b"x")

    def test_destroy_failure_remounts(self):
        """
        If the destroy itself fails after the unmount, the dataset is
        mounted again with its data.
        """
        dataset_id = str(uuid.uuid4())
        self.successResultOf(self.backend.create(dataset_id))
        self.backend.path(dataset_id).child("f").setContent(b"keep")
        self.fake.fail_next(lambda argv: argv[1] == "destroy", 1,
                            b"cannot destroy 'x': I/O error\n")
        self.failureResultOf(self.backend.destroy(dataset_id), CommandFailed)
        dataset = self.successResultOf(self.backend.get(dataset_id))
        self.assertEqual((dataset.mounted, self.backend.path(dataset_id).child("f").getContent()),
                         (True, b"keep"))

    def test_get_missing(self):
        """
        ``get`` of an unknown id fails with ``DatasetNotFound``.
        """
        self.failureResultOf(self.backend.get(str(uuid.uuid4())), DatasetNotFound)

    @capture_logging(None)
    def test_logged_with_commands(self, logger):
        """
        ``create`` is one eliot action whose children are its commands: the
        listing that checks the mount root's place, the create and the
        listing of the result.
        """
        dataset_id = str(uuid.uuid4())
        self.successResultOf(self.backend.create(dataset_id))
        [start] = LoggedAction.of_type(logger.messages, START)
        [create] = LoggedAction.of_type(logger.messages, CREATE)
        self.assertTrue(create.succeeded)
        self.assertEqual(create.start_message["dataset_id"], dataset_id)
        argvs = [child.start_message["argv"][1] for child in create.children
                 if isinstance(child, LoggedAction)
                 and child.start_message["action_type"] == COMMAND]
        self.assertEqual(argvs, ["get", "create", "get"])
        self.assertTrue(start.succeeded)


class ProcessLockTests(SynchronousTestCase):
    """
    With a ``lock_dir`` the backend also takes the dataset's ``flock``
    shared with ``peer-serve`` and the node's other flocker-zfs processes.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.lock_dir = os.path.abspath(self.mktemp())
        self.fake = FakeZFS()
        self.fake.add_pool("flocker")
        self.addCleanup(self.fake.unmount_all)
        self.backend = ZFSBackend(self.clock, "flocker", os.path.abspath(self.mktemp()),
                                  str(uuid.uuid4()), runner=self.fake, lock_dir=self.lock_dir,
                                  lock_wait=30)
        self.dataset_id = str(uuid.uuid4())
        self.successResultOf(self.backend.create(self.dataset_id))

    def hold(self, purpose="flocker-zfs peer-serve receive"):
        """Hold the dataset's lock as another process (another open file) would."""
        lock = DatasetLock(self.lock_dir, "flocker", self.dataset_id, purpose=purpose)
        lock.acquire()
        self.addCleanup(lock.release)
        return lock

    def test_destroy_waits(self):
        """
        A destroy while another holder has the lock runs no command until
        it is released, then destroys.
        """
        lock = self.hold()
        before = list(self.fake.commands)
        d = self.backend.destroy(self.dataset_id)
        self.clock.advance(10)
        self.clock.advance(10)
        self.assertNoResult(d)
        self.assertEqual(self.fake.commands, before)
        lock.release()
        self.clock.advance(1)
        self.successResultOf(d)
        self.assertEqual(self.successResultOf(self.backend.discover()).datasets, {})

    def test_destroy_gives_up(self):
        """
        A lock held past ``lock_wait`` fails the operation with
        ``DatasetLocked`` naming the holder's pid; nothing changed, and the
        in-process lock is free again for the next operation.
        """
        self.hold()
        d = self.backend.destroy(self.dataset_id)
        for _ in range(31):
            self.clock.advance(1)
        error = self.failureResultOf(d, DatasetLocked).value
        self.assertIn("locked by another flocker-zfs process (pid %d: flocker-zfs peer-serve "
                      "receive); waited 30 seconds" % (os.getpid(),), str(error))
        self.assertIn(self.dataset_id, self.successResultOf(self.backend.discover()).datasets)
        self.assertEqual(self.backend._locks, {})

    def test_other_process(self):
        """
        A lock another process holds (``flock`` in a process of its own)
        makes resize and snapshot wait; they run once it exits.
        """
        pid, release = hold_in_process(
            self, os.path.join(self.lock_dir, "flocker", self.dataset_id + ".lock"))
        resized = self.backend.resize(self.dataset_id, 64 * 1024 * 1024)
        snapped = self.backend.snapshot(self.dataset_id, "s1")
        self.clock.advance(5)
        self.assertNoResult(resized)
        release()
        for _ in range(3):
            self.clock.advance(1)
        self.assertEqual(self.successResultOf(resized).maximum_size, 64 * 1024 * 1024)
        self.assertEqual(self.successResultOf(snapped).name, "s1")

    def test_held_while_operating(self):
        """
        While an operation runs, its holder record names this process and
        the operation; afterwards the lock is free.
        """
        lock = DatasetLock(self.lock_dir, "flocker", self.dataset_id)
        seen = []

        async def look():
            async with self.backend.locked(self.dataset_id, "destroy"):
                seen.append((lock.try_acquire(), lock.holder()))
        self.successResultOf(Deferred.fromCoroutine(look()))
        self.assertEqual(seen, [(False, "pid %d: flocker-zfs destroy" % (os.getpid(),))])
        self.assertTrue(lock.try_acquire())
        lock.release()

    def test_no_lock_dir(self):
        """
        Without a ``lock_dir`` (the default: tests and fakes) no flock is
        taken, so a held one does not matter.
        """
        backend = ZFSBackend(self.clock, "flocker", self.backend.mount_root.path,
                             self.backend.node_uuid, runner=self.fake)
        self.assertIsNone(backend.lock_dir)
        self.hold()
        self.successResultOf(backend.snapshot(self.dataset_id, "s2"))

    def test_bad_lock_dir(self):
        """
        A relative lock directory is refused when the backend is made.
        """
        self.assertRaises(ConfigError, ZFSBackend, self.clock, "flocker", "/flocker",
                          str(uuid.uuid4()), runner=self.fake, lock_dir="run/locks")
