"""
Tests for :mod:`flocker_zfs._dslock`: the per-dataset ``flock`` shared by
the node's flocker-zfs processes.
"""

import os
import subprocess
import sys
import time

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from .._dslock import (
    DEFAULT_LOCK_DIR, DEFAULT_LOCK_WAIT, DatasetLock, DatasetLocked, acquire_waiting,
    validate_lock_dir)
from ..errors import ConfigError, DatasetBusy

DATASET = "6f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f"

#: Holds the flock of argv[1] (as another flocker-zfs process would,
#: recording its pid) until killed; prints "held" once it has it.
_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, b"%d flocker-zfs peer-serve receive\\n" % os.getpid())
print("held", flush=True)
sys.stdin.read()
"""


def hold_in_process(case, path):
    """
    Hold the flock of ``path`` in another process until the returned
    ``release()`` is called (or the test ends).

    :return: ``(pid, release)``.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, path],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def release():
        if process.poll() is None:
            process.stdin.close()
            process.wait()
            process.stdout.close()
    case.addCleanup(release)
    if process.stdout.readline() != b"held\n":
        raise AssertionError("the lock holder did not start")
    return process.pid, release


class DatasetLockTests(SynchronousTestCase):
    """
    Tests for :class:`DatasetLock`.
    """

    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())

    def lock(self, purpose=""):
        return DatasetLock(self.directory, "flocker", DATASET, purpose=purpose)

    def test_path(self):
        """
        The lock file is ``<dir>/<pool>/<dataset id>.lock``; the default
        directory is peer-serve's.
        """
        self.assertEqual(self.lock().path,
                         os.path.join(self.directory, "flocker", DATASET + ".lock"))
        self.assertEqual(DEFAULT_LOCK_DIR, "/run/flocker-zfs")

    def test_exclusive(self):
        """
        While one holds it, another lock object on the same dataset (even in
        the same process) cannot take it; after ``release`` it can.  Another
        pool's dataset of the same id is a different lock.
        """
        first, second = self.lock(), self.lock()
        self.assertTrue(first.try_acquire())
        self.assertFalse(second.try_acquire())
        self.assertTrue(DatasetLock(self.directory, "tank", DATASET).try_acquire())
        first.release()
        self.assertTrue(second.try_acquire())
        self.assertEqual((first.held, second.held), (False, True))

    def test_holder_recorded(self):
        """
        The holder records its pid and purpose; ``acquire`` by another
        fails at once with ``DatasetLocked`` (a ``DatasetBusy``) naming them.
        """
        self.lock("flocker-zfs destroy").acquire()
        with self.assertRaises(DatasetLocked) as caught:
            self.lock().acquire()
        error = caught.exception
        self.assertIsInstance(error, DatasetBusy)
        self.assertEqual(error.holder, "pid %d: flocker-zfs destroy" % (os.getpid(),))
        self.assertIn("dataset %s is locked by another flocker-zfs process (pid %d: "
                      "flocker-zfs destroy); lock file %s" % (DATASET, os.getpid(),
                                                              self.lock().path), str(error))
        self.assertIn("Fix: Wait until that process has finished", str(error))

    def test_other_process(self):
        """
        A lock held by another process is refused, naming that process's
        pid; once it exits, the lock is free (a dead holder leaves none).
        """
        pid, release = hold_in_process(self, self.lock().path)
        lock = self.lock()
        self.assertFalse(lock.try_acquire())
        self.assertEqual(lock.holder(), "pid %d: flocker-zfs peer-serve receive" % (pid,))
        release()
        self.assertTrue(lock.try_acquire())

    def test_unusable_directory(self):
        """
        A lock directory that cannot be made is a ``ConfigError`` naming it.
        """
        with open(self.directory, "w"):
            pass
        with self.assertRaises(ConfigError) as caught:
            self.lock().try_acquire()
        self.assertIn("cannot use lock directory %s/flocker" % (self.directory,),
                      str(caught.exception))

    def test_validate(self):
        """
        A lock directory must be an absolute path on one line.
        """
        self.assertEqual(validate_lock_dir("/run/x"), "/run/x")
        for bad in ["run/x", "", "/a\nb", None, 3]:
            self.assertRaises(ConfigError, validate_lock_dir, bad)


class AcquireWaitingTests(SynchronousTestCase):
    """
    Tests for :func:`acquire_waiting`.
    """

    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        self.clock = Clock()

    def lock(self, purpose=""):
        return DatasetLock(self.directory, "flocker", DATASET, purpose=purpose)

    def test_free(self):
        """
        A free lock is taken at once.
        """
        lock = self.lock()
        self.successResultOf(Deferred.fromCoroutine(acquire_waiting(self.clock, lock)))
        self.assertTrue(lock.held)

    def test_waits_for_release(self):
        """
        A held lock is retried on the clock (nothing blocks) and taken soon
        after the holder releases it.
        """
        holder = self.lock("flocker-zfs peer-serve receive")
        holder.acquire()
        lock = self.lock()
        d = Deferred.fromCoroutine(acquire_waiting(self.clock, lock, wait=30))
        self.clock.advance(20)
        self.assertNoResult(d)
        holder.release()
        self.clock.advance(1)
        self.successResultOf(d)
        self.assertTrue(lock.held)

    def test_gives_up(self):
        """
        A lock still held after ``wait`` seconds fails with
        ``DatasetLocked`` naming the holder and the wait.
        """
        self.lock("flocker-zfs peer-serve receive").acquire()
        d = Deferred.fromCoroutine(acquire_waiting(self.clock, self.lock(), wait=5))
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        error = self.failureResultOf(d, DatasetLocked).value
        self.assertIn("(pid %d: flocker-zfs peer-serve receive); waited 5 seconds"
                      % (os.getpid(),), str(error))
        self.assertEqual(DEFAULT_LOCK_WAIT, 60.0)


class RealClockTests(TestCase):
    """
    :func:`acquire_waiting` on the real reactor.
    """

    async def test_other_process(self):
        """
        A lock another process holds is taken once that process lets go.
        """
        from twisted.internet import reactor
        directory = os.path.abspath(self.mktemp())
        lock = DatasetLock(directory, "flocker", DATASET)
        pid, release = hold_in_process(self, lock.path)
        reactor.callLater(0.3, release)
        started = time.monotonic()
        await acquire_waiting(reactor, lock, wait=30)
        self.assertTrue(lock.held)
        self.assertGreater(time.monotonic() - started, 0.25)
        lock.release()
