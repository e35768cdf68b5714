# test-case-name: flocker_zfs.test.test_fakezfs
"""
The fake ZFS's only contact with the real filesystem: the directories where
its datasets are "mounted".

A mounted fake dataset is a real directory holding its files, so code under
test can read and write them.  Unmounting copies the content into memory and
removes it from disk; mounting writes it back.  The rules are conservative:
only entries the fake has just read are deleted, only directories it created
itself are removed, and a mountpoint that already holds something is refused
(as ZFS refuses a non-empty directory).

On zfs-fuse a receive into a mounted dataset leaves its directory as it was
(the kernel's FUSE caches are not invalidated: readers keep seeing the old
content until it is mounted again), coarsened here to the whole directory.

Files, directories and symbolic links are kept; their modes, owners and
times are not.
"""

import os
import stat

from pyrsistent import pmap

from ._fakestate import Link


class DiskError(Exception):
    """
    The directory could not be used; ``str()`` is the reason as ZFS words it
    (``"directory is not empty"``) or a FakeZFS-specific explanation.
    """


class MountRecord(object):
    """
    What the fake did to the disk to mount one dataset (not part of the
    comparable state).

    :ivar str path: the mountpoint.
    :ivar list created: directories the fake created for it, outermost first.
    :ivar dict modes: path -> mode saved before ``readonly=on`` chmods.
    :ivar view: ``None`` while the directory shows the dataset's content;
        after a zfs-fuse receive into the mounted dataset, the content its
        readers still see there (see :func:`merged`).
    """

    def __init__(self, path, created):
        """Record a mount at ``path`` and the directories made for it."""
        self.path = path
        self.created = created
        self.modes = None
        self.view = None


_ABSENT = object()


def merged(content, view, on_disk):
    """
    The content of a dataset whose mounted directory shows a stale ``view``
    of it: ``content`` with what was written on disk since (entries of
    ``on_disk`` that differ from ``view``, and entries of ``view`` removed).

    :return: ``pmap`` of relative path -> value, as :func:`read` returns.
    """
    result = dict(content)
    for relative, value in on_disk.items():
        if view.get(relative, _ABSENT) != value:
            result[relative] = value
    for relative in view:
        if relative not in on_disk:
            result.pop(relative, None)
    return pmap(result)


def prepare(path):
    """
    Make ``path`` ready to be a mountpoint: create it (and missing parents)
    or check that it is an empty directory.

    :return: the directories created, outermost first.
    :raises DiskError: it is not an empty directory, or cannot be created.
    """
    if os.path.lexists(path):
        if not os.path.isdir(path) or os.path.islink(path):
            raise DiskError("Not a directory")
        if os.listdir(path):
            raise DiskError("directory is not empty")
        return []
    missing = []
    current = path
    while current and not os.path.lexists(current):
        missing.append(current)
        current = os.path.dirname(current)
    missing.reverse()
    created = []
    try:
        for directory in missing:
            os.mkdir(directory, 0o755)
            created.append(directory)
    except OSError:
        remove_created(created)
        raise DiskError("failed to create mountpoint")
    return created


def write(root, content):
    """
    Write a content map under ``root`` (which exists and is empty).
    """
    for relative in sorted(content):
        value = content[relative]
        target = os.path.join(root, relative)
        if value is None:
            os.makedirs(target, exist_ok=True)
        elif isinstance(value, Link):
            os.symlink(value.target, target)
        else:
            with open(target, "wb") as handle:
                handle.write(value)


def read(root, skip=frozenset()):
    """
    Read everything under ``root``.

    :param skip: absolute paths of directories not to descend into (the
        mountpoints of other mounted datasets); they are kept as empty
        directories, as ZFS keeps mountpoint directories in the parent.
    :return: ``pmap`` of relative path -> ``bytes``, ``None`` (directory) or
        :class:`Link`; empty if ``root`` is gone.
    :raises DiskError: a special file (device, socket, fifo) is present.
    """
    found = {}
    if not os.path.isdir(root):
        return pmap()
    pending = [root]
    while pending:
        directory = pending.pop()
        for entry in os.scandir(directory):
            relative = os.path.relpath(entry.path, root)
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                found[relative] = Link(target=os.readlink(entry.path))
            elif stat.S_ISDIR(mode):
                found[relative] = None
                if entry.path not in skip:
                    pending.append(entry.path)
            elif stat.S_ISREG(mode):
                with open(entry.path, "rb") as handle:
                    found[relative] = handle.read()
            else:
                raise DiskError("FakeZFS cannot keep the special file %r" % (entry.path,))
    return pmap(found)


def clear(root, content, skip=frozenset()):
    """
    Delete from ``root`` exactly the entries of ``content`` (just read by
    :func:`read`), deepest first; a directory is removed only once empty.
    Nothing else under ``root`` is touched.
    """
    for relative in sorted(content, reverse=True):
        target = os.path.join(root, relative)
        if target in skip:
            continue
        try:
            if content[relative] is None:
                if os.path.isdir(target) and not os.path.islink(target):
                    os.rmdir(target)
            else:
                os.unlink(target)
        except OSError:
            # Changed under us, or not empty: leave it rather than guess.
            pass


def remove_created(created):
    """
    Remove the directories the fake created for a mountpoint, innermost
    first, stopping at the first one that is not empty.
    """
    for directory in reversed(created):
        try:
            os.rmdir(directory)
        except OSError:
            return


def make_readonly(root, skip=frozenset()):
    """
    Best-effort ``readonly=on``: ``chmod`` files to 0444 and directories to
    0555 under ``root`` (root itself included).  Processes running as root
    ignore these modes, so they can still write.

    :return: ``dict`` of path -> previous mode, for :func:`restore_modes`.
    """
    modes = {}
    directories = []
    for directory, dirnames, filenames in os.walk(root, topdown=True):
        dirnames[:] = [d for d in dirnames if os.path.join(directory, d) not in skip]
        directories.append(directory)
        for name in filenames:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                modes[path] = os.stat(path).st_mode & 0o7777
                os.chmod(path, 0o444)
    for directory in reversed(directories):
        modes[directory] = os.stat(directory).st_mode & 0o7777
        os.chmod(directory, 0o555)
    return modes


def restore_modes(modes):
    """
    Undo :func:`make_readonly`: outermost directories first, so the rest
    can be reached; entries created meanwhile are left as they are.
    """
    for path in sorted(modes):
        try:
            os.chmod(path, modes[path])
        except OSError:
            pass
