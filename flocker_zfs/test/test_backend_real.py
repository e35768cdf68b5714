"""
The ``IStorageBackend`` conformance suite against real ZFS (zfs-fuse here,
OpenZFS on a real host), through the real process runner.

Skipped without root or a working ZFS, but under ``CI=true`` that is a
failure (see :mod:`flocker_zfs.test.realzfs`).
"""

import subprocess
import uuid

from twisted.internet import reactor

from .._backend import ZFSBackend
from .._runner import ProcessRunner
from . import realzfs
from .backendtests import Harness, RecordingRunner, make_istoragebackend_tests


def _busy(mountpoint):
    # A process whose working directory is inside the mountpoint makes
    # unmount fail with "target is busy", as an application would.
    process = subprocess.Popen(["sleep", "600"], cwd=mountpoint)

    def undo():
        process.kill()
        process.wait()
    return undo


def _profile():
    result = subprocess.run(["zfs", "version"], capture_output=True)
    return "openzfs" if result.returncode == 0 else "zfs-fuse"


def real_harness(case):
    """
    A :class:`Harness` on a fresh file-backed pool, destroyed after the test.
    """
    realzfs.require_real_zfs()
    # Cleanups run last-in first-out: the pool (and its mounts) goes before
    # the mount root directory is removed.
    mount_root = realzfs.make_mount_root(case)
    pool = realzfs.make_pool(case)
    raw = ProcessRunner(reactor)
    recorder = RecordingRunner(raw)
    node = str(uuid.uuid4())

    def make_backend(pool=pool, mount_root=mount_root):
        return ZFSBackend(reactor, pool, mount_root, node, runner=ProcessRunner(reactor))

    backend = ZFSBackend(reactor, pool, mount_root, node, runner=recorder)
    return Harness(backend, recorder, raw, _profile(), _busy, make_backend,
                   enforces_readonly=True)


class RealZFSBackendTests(make_istoragebackend_tests(real_harness)):
    """
    ``IStorageBackend`` over real ZFS.
    """
