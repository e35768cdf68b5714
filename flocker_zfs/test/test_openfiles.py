"""
Tests for :mod:`flocker_zfs._openfiles`.
"""

import os

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from .._openfiles import open_writers, writers_under


class WritersUnderTests(SynchronousTestCase):
    """
    Tests for :func:`writers_under` on this process's own ``/proc`` entry.
    """

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.path = os.path.join(self.root, "f")
        with open(self.path, "wb") as handle:
            handle.write(b"x")

    def mine(self):
        return [w for w in writers_under(self.root) if w[0] == os.getpid()]

    def test_writer_found(self):
        """
        A file open for writing under the directory is reported with this
        process's pid and the file.
        """
        with open(self.path, "ab"):
            [(pid, _, target)] = self.mine()
        self.assertEqual((pid, target), (os.getpid(), self.path))
        self.assertEqual(self.mine(), [])

    def test_reader_ignored(self):
        """
        A file open only for reading is not a writer.
        """
        with open(self.path, "rb"):
            self.assertEqual(self.mine(), [])

    def test_other_directory_ignored(self):
        """
        Files outside the directory (even with a common prefix) are ignored.
        """
        sibling = self.root + "-other"
        os.makedirs(sibling)
        with open(os.path.join(sibling, "g"), "wb"):
            self.assertEqual(self.mine(), [])

    def test_deferred(self):
        """
        Without a thread pool the scan runs at once, in a Deferred.
        """
        with open(self.path, "ab"):
            found = self.successResultOf(open_writers(MemoryReactorClock(), self.root))
        self.assertIn(os.getpid(), [w[0] for w in found])
