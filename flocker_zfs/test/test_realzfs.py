"""
Tests for :mod:`flocker_zfs.test.realzfs`, the real-ZFS test fixtures.
"""

import os
import subprocess

from twisted.trial.unittest import FailTest, SkipTest, TestCase

from flocker_zfs.test import realzfs


class _Cleanups(object):
    """
    A stand-in for a test case that only collects clean-ups, so a test can
    run them itself and look at what they did.
    """

    def __init__(self):
        self.cleanups = []

    def addCleanup(self, f, *args, **kwargs):
        """Remember ``f(*args, **kwargs)`` for :meth:`run`."""
        self.cleanups.append((f, args, kwargs))

    def run(self):
        """Run the collected clean-ups, last first, as trial does."""
        while self.cleanups:
            f, args, kwargs = self.cleanups.pop()
            f(*args, **kwargs)


def _pool_exists(name):
    """:return: Whether ``zpool list NAME`` finds the pool."""
    zpool = realzfs.require_real_zfs()[1]
    return subprocess.run([zpool, "list", name], capture_output=True).returncode == 0


class CITests(TestCase):
    """
    Tests for ``in_ci`` and ``skip_or_fail``.
    """

    def test_ci_values(self):
        """``in_ci`` is true for ``CI`` set to 1, true or yes, in any case."""
        for value, expected in [("1", True), ("true", True), ("TRUE", True), ("yes", True),
                                ("", False), ("0", False), ("false", False)]:
            self.patch(os, "environ", {"CI": value})
            self.assertEqual((value, realzfs.in_ci()), (value, expected))

    def test_skip_outside_ci(self):
        """Without ``CI``, ``skip_or_fail`` skips the test with the reason given."""
        self.patch(os, "environ", {})
        exc = self.assertRaises(SkipTest, realzfs.skip_or_fail, "no zpool")
        self.assertEqual(str(exc), "no zpool")

    def test_fail_under_ci(self):
        """With ``CI=true``, ``skip_or_fail`` fails the test instead of skipping it."""
        self.patch(os, "environ", {"CI": "true"})
        exc = self.assertRaises(FailTest, realzfs.skip_or_fail, "no zpool")
        self.assertEqual(str(exc), "real ZFS tier required under CI=true: no zpool")


class MakePoolTests(TestCase):
    """
    Tests for ``make_pool`` and ``make_mount_root`` on real ZFS.
    """

    def setUp(self):
        realzfs.require_real_zfs()
        self.case = _Cleanups()
        # If an assertion fails half-way, still clean up what was made.
        self.addCleanup(self.case.run)

    def test_pool_made_and_destroyed(self):
        """
        ``make_pool`` creates a pool with the test prefix on a file under the
        work directory; its clean-up destroys both.
        """
        name = realzfs.make_pool(self.case)
        backing = os.path.join(realzfs.WORK_DIR, name + ".img")
        self.assertTrue(name.startswith(realzfs.POOL_PREFIX))
        self.assertTrue(_pool_exists(name))
        self.assertTrue(os.path.isfile(backing))
        self.case.run()
        self.assertFalse(_pool_exists(name))
        self.assertFalse(os.path.exists(backing))

    def test_pool_names_unique(self):
        """Two pools made by one process get different names."""
        self.assertNotEqual(realzfs.make_pool(self.case), realzfs.make_pool(self.case))

    def test_pool_busy_dataset_destroyed(self):
        """Clean-up destroys a pool that has a mounted child dataset."""
        mount_root = realzfs.make_mount_root(self.case)
        name = realzfs.make_pool(self.case)
        zfs = realzfs.require_real_zfs()[0]
        subprocess.run([zfs, "create", "-o", "mountpoint=" + os.path.join(mount_root, "a"),
                        name + "/a"], check=True, capture_output=True)
        self.case.run()
        self.assertFalse(_pool_exists(name))
        self.assertFalse(os.path.exists(mount_root))

    def test_mount_root_removed(self):
        """``make_mount_root`` makes an empty directory that its clean-up removes."""
        path = realzfs.make_mount_root(self.case)
        self.assertEqual(os.listdir(path), [])
        os.mkdir(os.path.join(path, "empty-child"))
        self.case.run()
        self.assertFalse(os.path.exists(path))

    def test_mount_root_keeps_files(self):
        """The clean-up of ``make_mount_root`` never deletes a file."""
        path = realzfs.make_mount_root(self.case)
        keep = os.path.join(path, "data")
        with open(keep, "w") as f:
            f.write("precious")
        self.addCleanup(os.rmdir, path)
        self.addCleanup(os.remove, keep)
        self.case.run()
        self.assertTrue(os.path.isfile(keep))
        warnings = self.flushWarnings([realzfs._remove_empty_tree])
        self.assertEqual(len(warnings), 1)
        self.assertIn(path, warnings[0]["message"])
