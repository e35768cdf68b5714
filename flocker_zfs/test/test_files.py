"""
Tests for :mod:`flocker_zfs._files`: reading an operator's small files
without trusting the path.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from .._files import read_bounded
from ..errors import ConfigError


class ReadBoundedTests(SynchronousTestCase):
    """
    Tests for :func:`read_bounded`.
    """

    def refused(self, path, limit=100):
        with self.assertRaises(ConfigError) as caught:
            read_bounded(path, limit, "test file", fix="Point at the test file.")
        self.assertEqual(caught.exception.fix, "Point at the test file.")
        return caught.exception.summary()

    def test_regular(self):
        """
        A regular file up to the limit is read whole.
        """
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.write(b"x" * 100)
        self.assertEqual(read_bounded(path, 100, "test file", fix=""), b"x" * 100)

    def test_too_large(self):
        """
        A file over the limit is refused, naming it and the limit.
        """
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.write(b"x" * 1025)
        self.assertEqual(self.refused(path, limit=1024),
                         "test file %s is larger than 1K, more than such a file ever holds"
                         % (path,))

    def test_device(self):
        """
        ``/dev/zero`` (endless) is refused as a device without reading it.
        """
        self.assertEqual(self.refused("/dev/zero"),
                         "test file /dev/zero is a character device, not a regular file")

    def test_directory(self):
        """
        A directory is refused as such.
        """
        path = os.path.abspath(self.mktemp())
        os.mkdir(path)
        self.assertIn("is a directory, not a regular file", self.refused(path))

    def test_named_pipe(self):
        """
        A named pipe is refused without waiting for a writer.
        """
        path = os.path.abspath(self.mktemp())
        os.mkfifo(path)
        self.assertIn("is a named pipe, not a regular file", self.refused(path))

    def test_missing(self):
        """
        A missing file is the caller's to explain: ``FileNotFoundError``.
        """
        self.assertRaises(FileNotFoundError, read_bounded, self.mktemp(), 10, "test file", "")
