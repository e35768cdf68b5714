# test-case-name: flocker_zfs.test.test_dslock
"""
Per-dataset locks shared by every flocker-zfs process of a node.

One process's :class:`~flocker_zfs.ZFSBackend` serialises its own
operations on a dataset with an in-process lock; ``peer-serve`` (one process
per peer request), the agent and each CLI command are separate processes,
so they also take an exclusive ``flock`` on ``<lock dir>/<pool>/<dataset
id>.lock``.  A destroy, resize, snapshot, push or handoff then never runs
during a ``peer-serve`` receive into the same dataset, nor the other way
round (RELIABILITY.md scenario 54).

``flock`` belongs to the open file: it is released when the holder closes
it or dies (never left behind by a crash), and two opens conflict even in
one process.  The holder writes its pid (and what it does) into the file,
so whoever finds it locked can say by whom.  Lock files are never removed:
removing one while another process waits on it would let two hold "the"
lock.

Nothing here blocks: :meth:`DatasetLock.acquire` tries once
(``LOCK_NB``); :func:`acquire_waiting` retries on the reactor's clock for a
bounded time.
"""

import errno
import fcntl
import os

from eliot import Message
from twisted.internet.task import deferLater

from .errors import ConfigError, DatasetBusy

#: Where the lock files live unless configured otherwise (a tmpfs: locks
#: need not survive a reboot).  ``peer-serve --lock-dir``, the agent and the
#: CLI must use the same directory to exclude each other.
DEFAULT_LOCK_DIR = "/run/flocker-zfs"

#: Seconds an operation waits for another process's lock before failing.
DEFAULT_LOCK_WAIT = 60.0

#: Delays between attempts: short at first (most operations are quick),
#: then once a second.
_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5)
_RETRY_EVERY = 1.0

#: Longest holder record read back.
_MAX_RECORD = 200


class DatasetLocked(DatasetBusy):
    """
    Another flocker-zfs process (the agent, a command, or ``peer-serve``
    serving a peer) holds the dataset's lock.

    :ivar str dataset_id: the dataset.
    :ivar holder: what the holder recorded (``"pid 1234: peer-serve
        receive"``), or ``None``.
    """

    cause = "dataset is locked by another flocker-zfs process"
    fix = ("Wait until that process has finished (a transfer can take long) and retry; "
           "`ps -p PID` shows it.")

    def __init__(self, dataset_id, holder=None, waited=None, path=None):
        DatasetBusy.__init__(self, subject=dataset_id)
        self.dataset_id = dataset_id
        self.holder = holder
        self.waited = waited
        self.path = path

    def summary(self):
        text = "dataset %s is locked by another flocker-zfs process (%s)" % (
            self.dataset_id, self.holder or "pid not recorded")
        if self.waited:
            text += "; waited %g seconds" % (self.waited,)
        if self.path:
            text += "; lock file %s" % (self.path,)
        return text


def _lock_dir_error(directory, error):
    return ConfigError("cannot use lock directory %s: %s"
                       % (directory, os.strerror(error.errno)),
                       fix="Use a lock directory (lock_dir, peer-serve --lock-dir) on a local "
                           "filesystem that root can write, the same for every flocker-zfs "
                           "process of the node.")


def validate_lock_dir(path):
    """
    :return: ``path`` if it is an absolute path on one line.
    :raises ConfigError: otherwise.
    """
    if not isinstance(path, str) or not os.path.isabs(path) or "\n" in path or "\0" in path:
        raise ConfigError("invalid lock directory %r: must be an absolute path" % (path,),
                          fix="Give an absolute lock directory, e.g. %s." % (DEFAULT_LOCK_DIR,))
    return path


class DatasetLock(object):
    """
    The exclusive ``flock`` on one dataset's lock file.

    :param str directory: the lock directory.
    :param str pool: the pool (a validated pool name: no ``/``).
    :param str dataset_id: the dataset (a validated UUID).
    :param str purpose: what the holder does, recorded for whoever waits.
    """

    def __init__(self, directory, pool, dataset_id, purpose=""):
        self.directory = os.path.join(validate_lock_dir(directory), pool)
        self.path = os.path.join(self.directory, "%s.lock" % (dataset_id,))
        self.dataset_id = dataset_id
        self.purpose = purpose
        self._fd = None

    @property
    def held(self):
        """``True`` while this object holds the lock."""
        return self._fd is not None

    def try_acquire(self):
        """
        Take the lock if it is free, without waiting.

        :return: ``True`` if now held, ``False`` if another holder has it.
        :raises ConfigError: the lock directory or file cannot be used.
        """
        if self._fd is not None:
            raise RuntimeError("%s is already held by this object" % (self.path,))
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise _lock_dir_error(self.directory, error)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise ConfigError("cannot lock %s: %s" % (self.path, os.strerror(error.errno)),
                              fix="Use a lock directory on a local filesystem.")
        self._fd = fd
        record = ("%d %s" % (os.getpid(), self.purpose)).strip() + "\n"
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode("utf-8", "replace")[:_MAX_RECORD], 0)
        except OSError:
            pass    # the lock is held; only the record for others is missing
        return True

    def acquire(self):
        """
        Take the lock or fail at once.

        :raises DatasetLocked: another holder has it.
        :raises ConfigError: the lock directory or file cannot be used.
        """
        if not self.try_acquire():
            raise DatasetLocked(self.dataset_id, self.holder(), path=self.path)

    def holder(self):
        """
        :return: ``"pid N: purpose"`` as the current holder recorded it, or
            ``None`` when nothing (readable) is recorded.
        """
        try:
            with open(self.path, "rb") as handle:
                text = handle.read(_MAX_RECORD).decode("utf-8", "replace")
        except OSError:
            return None
        pid, _, purpose = text.strip().partition(" ")
        if not pid.isdigit():
            return None
        return "pid %s: %s" % (pid, purpose) if purpose else "pid %s" % (pid,)

    def release(self):
        """Unlock (closing the descriptor releases the ``flock``)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


async def acquire_waiting(reactor, lock, wait=DEFAULT_LOCK_WAIT):
    """
    Take ``lock``, retrying on ``reactor``'s clock while another process
    holds it, for at most ``wait`` seconds.  The reactor is never blocked.

    :raises DatasetLocked: still held by another after ``wait`` seconds
        (naming the holder's pid).
    :raises ConfigError: the lock directory cannot be used.
    """
    started = reactor.seconds()
    delays = list(_RETRY_DELAYS)
    logged = False
    while not lock.try_acquire():
        waited = reactor.seconds() - started
        if waited >= wait:
            raise DatasetLocked(lock.dataset_id, lock.holder(), waited=wait, path=lock.path)
        if not logged:
            Message.log(message_type="flocker_zfs:lock:wait", dataset_id=lock.dataset_id,
                        path=lock.path, holder=lock.holder(), wait=wait)
            logged = True
        delay = delays.pop(0) if delays else _RETRY_EVERY
        await deferLater(reactor, min(delay, wait - waited), lambda: None)
