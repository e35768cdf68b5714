# test-case-name: flocker_zfs.test.test_backend_fake
"""
Where datasets are mounted: the mount root's refusals, zfs-fuse's mount
quirks, and mounting a replica again so its readers see what a receive
brought.

zfs-fuse answers "dataset is busy" to a ``mount`` or ``destroy`` for a
moment right after an ``unmount`` succeeded (a race in its daemon), so
those are retried briefly.  And a ``zfs receive`` into a mounted filesystem
leaves zfs-fuse's kernel caches as they were
(:func:`~flocker_zfs._commands.receive_leaves_stale_lookups`); only a new
mount drops them, which is what :func:`remount` is for.
"""

import errno
import os

from eliot import Message
from twisted.internet.task import deferLater

from . import _commands as commands
from .errors import DatasetBusy, MountRootError, ZFSError

#: Seconds to wait before retrying a destroy or mount that zfs-fuse called
#: busy just after the unmount succeeded.
BUSY_RETRY_DELAYS = (0.1, 0.3, 1.0)


class MountRootInsideDataset(MountRootError):
    """
    The mount root lies inside a flocker-zfs dataset's mountpoint: a dataset
    mounted there would vanish or block whenever that dataset is unmounted,
    handed off, made a read-only replica or destroyed.
    """

    fix = ("Use a mount root outside every flocker-zfs dataset's mountpoint (normally "
           "/flocker, the same on every node; `flocker-zfs status` lists the mountpoints).")


class MountFailed(MountRootError):
    """
    A new dataset could not be mounted under the mount root, so it was
    destroyed again: a failed create or clone leaves nothing behind.
    """

    fix = ("Make the mount root a writable directory on a writable filesystem (not inside a "
           "read-only dataset or replica) where DATASET_ID is free or an empty directory, "
           "then retry.")


def enclosing_mountpoint(path, mountpoints):
    """
    :param str path: an absolute, normalised path.
    :param mountpoints: ``(dataset_id, mountpoint)`` pairs.
    :return: the pair whose mountpoint is ``path`` or one of its parent
        directories, or ``None``.
    """
    for dataset_id, mountpoint in sorted(mountpoints):
        mountpoint = mountpoint.rstrip("/")
        if not mountpoint.startswith("/"):
            continue        # none, legacy, or unknown
        if path == mountpoint or path.startswith(mountpoint + "/"):
            return dataset_id, mountpoint
    return None


def last_line(error):
    """
    :return: the line of a failed ``zfs create``/``clone``/``mount`` that
        says why it could not mount ("cannot mount ..."), else its first.
    """
    lines = [line.strip() for line in error.stderr.decode("utf-8", "replace").splitlines()
             if line.strip()]
    telling = [line for line in lines if "cannot mount" in line]
    return (telling or lines or ["no message"])[0]


async def run_retrying_busy(reactor, runner, argv, retry=True):
    """
    Run ``argv``; plain "dataset is busy" (never dependent clones, which will
    not go away) is retried after each of :data:`BUSY_RETRY_DELAYS`.

    :param bool retry: ``False`` runs it once.
    :raises ZFSError: the last failure.
    """
    delays = list(BUSY_RETRY_DELAYS) if retry else []
    while True:
        try:
            await runner.run(argv)
            return
        except DatasetBusy as error:
            if not delays or type(error) is not DatasetBusy:
                raise
            await deferLater(reactor, delays.pop(0), lambda: None)


#: Outcomes of :func:`remount`.
REMOUNTED = "remounted"
KEPT = "kept"
UNMOUNTED = "unmounted"


async def remount(reactor, runner, name):
    """
    Unmount filesystem ``name`` and mount it again, so the kernel forgets
    what it cached of the old mount.  A process with a file or its working
    directory there makes the unmount fail ("target is busy"): the mount is
    then left as it is, never forced (readers would lose their files).

    :return: ``(outcome, error)``: ``(REMOUNTED, None)``; ``(KEPT, error)``
        when the unmount failed (still mounted, still stale); or
        ``(UNMOUNTED, error)`` when the mount after it failed (the data is
        intact; the next mount brings it back).
    """
    try:
        await runner.run(commands.unmount(name))
    except ZFSError as error:
        return KEPT, error
    try:
        await run_retrying_busy(reactor, runner, commands.mount(name))
    except ZFSError as error:
        return UNMOUNTED, error
    return REMOUNTED, None


def remove_mountpoint(dataset, expected):
    """
    Remove the empty directory ZFS left at a destroyed dataset's mountpoint,
    only when it is ``expected`` (its place under our mount root).
    """
    if dataset.mountpoint != expected:
        return
    try:
        os.rmdir(dataset.mountpoint)
    except OSError as error:
        if error.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EBUSY):
            Message.log(message_type="flocker_zfs:backend:rmdir_failed",
                        path=dataset.mountpoint, reason=os.strerror(error.errno))
