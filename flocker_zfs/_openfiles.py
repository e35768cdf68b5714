# test-case-name: flocker_zfs.test.test_openfiles
"""
Which processes hold files open for writing under a directory, from
``/proc`` (Linux).

zfs-fuse lets a file opened for writing before ``readonly=on`` keep writing
afterwards (even through ``zfs unmount -f``), so a handoff there must know
whether anything still can: such writes would land after the final snapshot
and never reach the new owner.  Reading ``/proc`` is blocking I/O; callers
run :func:`writers_under` in a thread (:func:`open_writers`).
"""

import os

from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool

_ACCESS_MODE = 0o3  # O_ACCMODE
_READ_ONLY = 0o0    # O_RDONLY


def _under(target, path):
    return target == path or target.startswith(path.rstrip("/") + "/")


def _command(proc, pid):
    try:
        with open(os.path.join(proc, pid, "comm")) as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def _fd_writers(proc, pid, path):
    found = []
    directory = os.path.join(proc, pid, "fd")
    try:
        fds = os.listdir(directory)
    except OSError:
        return found  # gone, or not ours to look at
    for fd in fds:
        try:
            target = os.readlink(os.path.join(directory, fd))
        except OSError:
            continue
        if not _under(target, path):
            continue
        try:
            with open(os.path.join(proc, pid, "fdinfo", fd)) as handle:
                flags = [line.split()[1] for line in handle if line.startswith("flags:")]
        except (OSError, IndexError):
            flags = []
        if not flags or int(flags[0], 8) & _ACCESS_MODE != _READ_ONLY:
            found.append(target)
    return found


def _mapped_writers(proc, pid, path):
    found = []
    try:
        with open(os.path.join(proc, pid, "maps")) as handle:
            for line in handle:
                fields = line.split(None, 5)
                # A shared writable mapping writes to the file without an fd.
                if len(fields) == 6 and "w" in fields[1] and "s" in fields[1] \
                        and _under(fields[5].strip(), path):
                    found.append(fields[5].strip())
    except OSError:
        pass
    return found


def writers_under(path, proc="/proc"):
    """
    :param str path: a mountpoint.
    :return: sorted ``(pid, command, file)`` for every file under ``path``
        open for writing (or mapped shared and writable) by any process.
    """
    result = set()
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return []
    for pid in pids:
        for target in _fd_writers(proc, pid, path) + _mapped_writers(proc, pid, path):
            result.add((int(pid), _command(proc, pid), target))
    return sorted(result)


def open_writers(reactor, path):
    """
    :func:`writers_under` in the reactor's thread pool where it has one.

    :return: ``Deferred`` firing with its list.
    """
    if IReactorThreads.providedBy(reactor):
        return deferToThreadPool(reactor, reactor.getThreadPool(), writers_under, path)
    return maybeDeferred(writers_under, path)
