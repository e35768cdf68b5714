"""
Tests for :mod:`flocker_zfs.errors`: each stderr maps to its typed error,
and every message names its subject and a fix on one line.
"""

from twisted.trial.unittest import SynchronousTestCase

from ..errors import (
    COMMON, CommandFailed, ConfigError, DatasetBusy, DatasetExists, DatasetNotFound,
    HasDependentClones, OutOfSpace, PermissionDenied, PoolNotFound, QuotaTooSmall,
    ZFSError, ZFSNotRunning, error_for, subject_of)

# stderr recorded from zfs-fuse 0.7 and (where marked) OpenZFS 2.1 wording.
CASES = [
    (b"cannot open 'p/x': dataset does not exist\n", DatasetNotFound, "p/x"),
    (b"cannot create 'p/x': dataset already exists\n", DatasetExists, "p/x"),
    (b"cannot create snapshot 'p/x@s': dataset already exists\n", DatasetExists, "p/x@s"),
    (b"cannot destroy 'p/x': dataset is busy\n", DatasetBusy, "p/x"),
    (b"umount: /m/x: target is busy.\n"
     b"cannot unmount '/m/x': umount failed: umount child process failed\n",
     DatasetBusy, "/m/x"),
    (b"cannot destroy 'p/x': filesystem has dependent clones\n"
     b"use '-R' to destroy the following datasets:\np/y\n", HasDependentClones, "p/x"),
    (b"cannot set property for 'p/x': size is less than current used or reserved space\n",
     QuotaTooSmall, "p/x"),
    (b"cannot create 'p/x': out of space\n", OutOfSpace, "p/x"),
    (b"cannot open 'nope': no such pool\n", PoolNotFound, "nope"),
    (b"cannot create 'p/x': permission denied\n", PermissionDenied, "p/x"),
    (b"connect: No such file or directory\n"
     b"Please make sure that the zfs-fuse daemon is running.\n"
     b"internal error: failed to initialize ZFS library\n", ZFSNotRunning, None),
    # OpenZFS 2.1 without its kernel module.
    (b"The ZFS modules are not loaded.\nTry running '/sbin/modprobe zfs' as root to load them.\n",
     ZFSNotRunning, None),
    (b"something new\n", CommandFailed, None),
]


class ErrorForTests(SynchronousTestCase):
    """
    Tests for :func:`error_for`.
    """

    def test_cases(self):
        """
        Each recorded stderr gives its typed error with the subject named.
        """
        for stderr, expected, subject in CASES:
            error = error_for(["zfs", "x"], 1, stderr)
            self.assertEqual((type(error), error.subject, error.stderr),
                             (expected, subject, stderr), stderr)

    def test_specific_first(self):
        """
        An operation's own patterns win over the common ones.
        """
        import re
        error = error_for(["zfs"], 1, b"cannot open 'p': dataset does not exist",
                          ((OutOfSpace, re.compile(rb"dataset")),))
        self.assertIsInstance(error, OutOfSpace)

    def test_one_line_with_fix(self):
        """
        Every command error's message is one line naming the subject, the
        command and the fix.
        """
        for stderr, expected, subject in CASES:
            text = str(error_for(["zfs", "destroy", "p/x"], 1, stderr))
            self.assertNotIn("\n", text)
            self.assertIn("Fix: ", text)
            self.assertIn("zfs destroy p/x", text)
            if subject:
                self.assertIn(subject, text)

    def test_every_common_error_has_fix(self):
        """
        Every error type in the common table says how to fix it.
        """
        for error_type, _ in COMMON:
            self.assertTrue(error_type(argv=["zfs"], status=1, stderr=b"").fix)

    def test_pool_fix_names_pool(self):
        """
        ``PoolNotFound``'s fix shows the ``zpool create`` for that pool.
        """
        error = error_for(["zpool"], 1, b"cannot open 'tank': no such pool\n")
        self.assertIn("zpool create tank", error.fix)

    def test_no_argv(self):
        """
        An error raised without a command still reads well.
        """
        self.assertEqual(str(DatasetNotFound(subject="p/x@s")).split(".")[0],
                         "dataset not found: p/x@s")

    def test_hierarchy(self):
        """
        Dependent clones are a kind of busy; all are ``ZFSError``.
        """
        self.assertTrue(issubclass(HasDependentClones, DatasetBusy))
        self.assertTrue(issubclass(DatasetBusy, ZFSError))


class SubjectTests(SynchronousTestCase):
    """
    Tests for :func:`subject_of`.
    """

    def test_name_with_space(self):
        """
        Names with spaces are taken whole.
        """
        self.assertEqual(subject_of(b"cannot open 'p/a b': dataset does not exist"), "p/a b")

    def test_none(self):
        """
        No quoted name gives ``None``.
        """
        self.assertIsNone(subject_of(b"internal error"))


class ConfigErrorTests(SynchronousTestCase):
    """
    Tests for :class:`ConfigError`.
    """

    def test_custom_fix(self):
        """
        A ``ConfigError`` can carry its own fix, shown after the cause.
        """
        self.assertEqual(str(ConfigError("bad pool", fix="Use flocker.")),
                         "bad pool. Fix: Use flocker.")
