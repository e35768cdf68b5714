# test-case-name: flocker_zfs.test.test_realzfs
"""
Real-ZFS fixtures for trial tests: throw-away file-backed pools.

Tier-2 tests (see ``docs/testing.rst``) run against the real ``zfs`` and
``zpool`` commands (zfs-fuse here, OpenZFS on a production host). Each test
gets its own pool on a sparse file, destroyed again by the test's clean-up::

    def test_something(self):
        mount_root = make_mount_root(self)   # first: cleaned up last
        pool = make_pool(self)
        ...

When root, the ZFS commands or a running ZFS are missing, the test is
skipped, except under ``CI=true``, where the real tier is required and a
missing prerequisite fails the test instead (:func:`skip_or_fail`).

Pool names are ``fzt<pid>x<n>x<random>``: ``scripts/test`` destroys pools
with that prefix whose process is gone (runs that were killed before their
clean-up) together with their backing files in :data:`WORK_DIR`.

This is test-fixture code: it runs ``zpool`` and ``zfs`` synchronously with
:mod:`subprocess`, blocking the reactor while it does. That is acceptable in
test set-up and clean-up only; library code never does it.
"""

import itertools
import os
import random
import shutil
import string
import subprocess
import time
import warnings

from twisted.trial.unittest import FailTest, SkipTest

__all__ = [
    "WORK_DIR", "POOL_PREFIX", "in_ci", "skip_or_fail", "require_real_zfs",
    "make_pool", "make_mount_root", "destroy_pool",
]

#: Where backing files and mount roots are made; ``scripts/test`` cleans it.
WORK_DIR = "/var/tmp/flocker-zfs-test"

#: Prefix of every pool made here, the pattern of the leftover clean-up.
POOL_PREFIX = "fzt"

#: Directories searched for ``zfs`` and ``zpool`` after ``PATH``.
_SBIN = "/usr/sbin:/sbin"

_counter = itertools.count(1)
_checked = None     # (paths, None) or (None, reason) once checked


def in_ci():
    """
    Tell whether the tests run under CI, where the real tier must run.

    :return: ``True`` when the ``CI`` environment variable is ``1``, ``true``
        or ``yes`` (in any case).
    """
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def time_scale(environ=os.environ):
    """
    How much slower than this project's own machines real ZFS runs here.

    Waits and test timeouts of the slowest real tests are multiplied by it:
    the OpenZFS tier (tools/test-openzfs) runs in emulated VMs where each
    process start takes seconds and sets ``FLOCKER_ZFS_TIME_SCALE``.

    :return: a float, at least 1 (1 when unset or not a number).
    """
    try:
        return max(1.0, float(environ.get("FLOCKER_ZFS_TIME_SCALE", "1")))
    except ValueError:
        return 1.0


def skip_or_fail(reason):
    """
    Give up on a test that needs something this machine lacks.

    :param str reason: What is missing and how to get it.
    :raises SkipTest: Normally.
    :raises FailTest: Under CI (:func:`in_ci`), where a skip would hide that
        the real-ZFS tier did not run.
    """
    if in_ci():
        raise FailTest("real ZFS tier required under CI=true: " + reason)
    raise SkipTest(reason)


def _check():
    """
    Look for root, the ZFS commands and an answering ZFS.

    :return: ``((zfs, zpool), None)`` with absolute paths, or
        ``(None, reason)``.
    """
    if os.geteuid() != 0:
        return None, "real ZFS tests need root (run: sudo bash scripts/test)"
    search = os.environ.get("PATH", "") + os.pathsep + _SBIN
    paths = tuple(shutil.which(name, path=search) for name in ("zfs", "zpool"))
    if None in paths:
        return None, ("no zfs/zpool command on PATH or in %s: install zfs-fuse or "
                      "zfsutils-linux (scripts/setup installs zfs-fuse)" % (_SBIN,))
    try:
        result = subprocess.run([paths[1], "list"], capture_output=True,
                                timeout=30, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, "'zpool list' did not answer within 30 s"
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()
        return None, ("'zpool list' failed (exit %d: %s): start ZFS first "
                      "(scripts/setup starts zfs-fuse)"
                      % (result.returncode, stderr.splitlines()[0] if stderr else "no message"))
    return paths, None


def require_real_zfs():
    """
    Make sure a real, working ZFS can be used, or skip (fail under CI).

    The checks run once per process; later calls reuse the answer.

    :return: ``(zfs, zpool)``, the absolute paths of the two commands.
    :raises SkipTest: If root, the commands or a running ZFS are missing.
    :raises FailTest: Instead of ``SkipTest`` under CI.
    """
    global _checked
    if _checked is None:
        _checked = _check()
    paths, reason = _checked
    if reason is not None:
        skip_or_fail(reason)
    return paths


class ZFSFixtureError(Exception):
    """
    A ``zfs``/``zpool`` command run by a fixture failed.

    :ivar list argv: The command.
    :ivar int status: Its exit status.
    :ivar str stderr: What it printed on standard error.
    """

    def __init__(self, argv, status, stderr):
        super().__init__(argv, status, stderr)
        self.argv, self.status, self.stderr = argv, status, stderr

    def __str__(self):
        return "%s exited with %d: %s" % (" ".join(self.argv), self.status, self.stderr.strip())


def _run(argv):
    """
    Run a command to completion.

    :param list argv: The command.
    :return: ``(status, stdout, stderr)``, the output decoded as UTF-8.
    """
    result = subprocess.run(argv, capture_output=True, timeout=120,
                            stdin=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C"))
    return (result.returncode, result.stdout.decode("utf-8", "replace"),
            result.stderr.decode("utf-8", "replace"))


def _unique():
    """
    :return: A short token no other test (in this or another process) uses:
        ``<pid>x<n>x<4 random characters>``.
    """
    tail = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(4))
    return "%dx%dx%s" % (os.getpid(), next(_counter), tail)


def make_pool(case, size=256 * 1024 * 1024):
    """
    Create a pool on a new sparse file, destroyed at the end of ``case``.

    The pool's root is not mounted (``mountpoint=none``).

    :param case: The running test; its ``addCleanup`` is used.
    :param int size: Size of the backing file in bytes.
    :return: The pool's name.
    :raises SkipTest: If real ZFS cannot be used (``FailTest`` under CI).
    :raises ZFSFixtureError: If ``zpool create`` fails.
    """
    zpool = require_real_zfs()[1]
    os.makedirs(WORK_DIR, exist_ok=True)
    name = POOL_PREFIX + _unique()
    backing = os.path.join(WORK_DIR, name + ".img")
    with open(backing, "wb") as f:
        f.truncate(size)
    # Clean-ups run last-in first-out: the file goes after the pool.
    case.addCleanup(os.remove, backing)
    argv = [zpool, "create", "-m", "none", name, backing]
    status, _, stderr = _run(argv)
    if status != 0:
        raise ZFSFixtureError(argv, status, stderr)
    case.addCleanup(destroy_pool, name)
    return name


def destroy_pool(name, attempts=5):
    """
    Destroy a pool, retrying while it is busy.

    Before each retry, the pool's own mounted datasets (and no others) are
    unmounted, deepest first.

    :param str name: The pool.
    :param int attempts: How many times to try.
    :raises ZFSFixtureError: If the pool is still there after the last try.
    """
    zfs, zpool = require_real_zfs()
    argv = [zpool, "destroy", "-f", name]
    for attempt in range(attempts):
        if attempt:
            time.sleep(1)
            status, out, _ = _run([zfs, "list", "-H", "-r", "-t", "filesystem",
                                   "-o", "name,mounted", name])
            mounted = [line.split("\t")[0] for line in out.splitlines()
                       if line.endswith("\tyes")]
            for dataset in sorted(mounted, reverse=True):
                _run([zfs, "unmount", "-f", dataset])
        status, _, stderr = _run(argv)
        if status == 0 or _run([zpool, "list", name])[0] != 0:
            return
        if "busy" not in stderr:
            break
    raise ZFSFixtureError(argv, status, stderr)


def _mounts():
    """
    :return: The set of mount points in ``/proc/mounts``.
    """
    with open("/proc/mounts") as f:
        # Spaces in mount points are written as \040.
        return {line.split()[1].replace("\\040", " ") for line in f}


def make_mount_root(case):
    """
    Create an empty directory for mount points, removed at the end of ``case``.

    Clean-up removes empty directories only and never touches anything at or
    below a mount point, so it cannot delete data. Call it before
    :func:`make_pool`, so that the pool (and its mounts) are gone first.

    :param case: The running test; its ``addCleanup`` is used.
    :return: The directory's absolute path.
    """
    path = os.path.join(WORK_DIR, "mnt-" + _unique())
    os.makedirs(path)
    case.addCleanup(_remove_empty_tree, path)
    return path


def _remove_empty_tree(path):
    """
    Remove ``path`` and the empty directories under it, leaving alone every
    mount point and what is below one.

    :param str path: The directory.
    """
    mounts = _mounts()
    found = []
    for top, dirs, files in os.walk(path):
        if top in mounts:
            dirs[:] = []    # neither remove nor descend into a mount point
        else:
            found.append(top)
    for top in reversed(found):     # children before their parents
        try:
            os.rmdir(top)
        except OSError:
            pass    # not empty, or a mount point is inside: left alone
    if os.path.exists(path):
        warnings.warn("mount root %s was not removed: it is not empty or "
                      "something is still mounted in it" % (path,))
