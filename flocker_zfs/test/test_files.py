"""
Tests for :mod:`flocker_zfs._files`: reading an operator's small files
without trusting the path.
"""

import errno
import os

from twisted.trial.unittest import SynchronousTestCase

from .. import _yamlsource
from .._files import check_regular, read_bounded
from ..errors import ConfigError


def not_regular_files(case):
    """
    The paths a reader of small files must refuse unread, for the tests of
    every file flocker-zfs reads.

    :param case: the test case (its ``mktemp`` is used).
    :return: ``[(path, kind)]``: ``/dev/zero`` (endless), a new named pipe
        (no writer) and a new directory, each with the words the refusal
        names it by.
    """
    pipe = os.path.abspath(case.mktemp())
    os.mkfifo(pipe)
    directory = os.path.abspath(case.mktemp())
    os.mkdir(directory)
    return [("/dev/zero", "a character device"), (pipe, "a named pipe"),
            (directory, "a directory")]


class ReadBoundedTests(SynchronousTestCase):
    """
    Tests for :func:`read_bounded`, the one reader of small files (also
    ``_yamlsource.read_source``).
    """

    def refused(self, path, limit=100, fix="Point at the test file.", missing_fix=None):
        with self.assertRaises(ConfigError) as caught:
            read_bounded(path, limit, "test file", fix=fix, missing_fix=missing_fix)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        self.assertIn(path.replace("\n", "\\n"), message)
        return caught.exception.summary(), caught.exception.fix

    def write(self, content):
        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as handle:
            handle.write(content)
        return path

    def test_regular(self):
        """
        A regular file up to the limit is read whole.
        """
        self.assertEqual(read_bounded(self.write(b"x" * 100), 100, "test file", fix=""),
                         b"x" * 100)

    def test_too_large(self):
        """
        A file over the limit is refused, naming it and the limit (and the
        limit's size for people once it is 1K or more).
        """
        path = self.write(b"x" * 1025)
        self.assertEqual(self.refused(path, limit=1024), (
            "test file %s is larger than 1024 bytes (1K), more than such a file ever holds"
            % (path,), "Point at the test file."))
        self.assertEqual(self.refused(path, limit=99)[0],
                         "test file %s is larger than 99 bytes, more than such a file ever "
                         "holds" % (path,))

    def test_not_regular(self):
        """
        ``/dev/zero`` (endless), a named pipe (not waited on) and a
        directory are refused unread, each named as what it is.
        """
        for path, kind in not_regular_files(self):
            self.assertEqual(self.refused(path), (
                "test file %s is not a regular file but %s" % (path, kind),
                "Point at the test file."))

    def test_replaced_after_stat(self):
        """
        A path that was a regular file when looked at but is a named pipe
        when opened is refused once open, without waiting for a writer.
        """
        path = os.path.abspath(self.mktemp())
        os.mkfifo(path)
        regular = os.stat(self.write(b"x"))
        real_stat = os.stat
        self.patch(os, "stat", lambda name: regular if name == path else real_stat(name))
        self.assertEqual(self.refused(path)[0],
                         "test file %s is not a regular file but a named pipe" % (path,))

    def test_missing(self):
        """
        A missing file is the caller's to explain (``FileNotFoundError``)
        unless the caller gives the fix for it.
        """
        path = os.path.abspath(self.mktemp())
        self.assertRaises(FileNotFoundError, read_bounded, path, 10, "test file", "")
        self.assertEqual(self.refused(path, missing_fix="Create it."),
                         ("cannot read test file %s: no such file" % (path,), "Create it."))

    def test_unreadable(self):
        """
        A path that cannot be read says why, without the path twice: here a
        path through a regular file, and ``/proc/self/mem`` whose read fails.
        """
        path = self.write(b"x") + "/file"
        self.assertEqual(self.refused(path, missing_fix="Create it."), (
            "cannot read test file %s: not a directory" % (path,), "Point at the test file."))
        self.assertEqual(self.refused("/proc/self/mem")[0],
                         "cannot read test file /proc/self/mem: input/output error")

    def test_permission_denied(self):
        """
        A file this user may not read says so, with the fix for that.
        """
        path = self.write(b"x")

        def refuse(name, flags):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        self.patch(os, "open", refuse)
        self.assertEqual(self.refused(path), (
            "cannot read test file %s: permission denied" % (path,),
            "Run as root, or make the file readable by this user."))

    def test_one_line(self):
        """
        A path with a line break is quoted escaped: the message stays one line.
        """
        path = os.path.abspath(self.mktemp()) + "\nx"
        os.mkfifo(path)
        self.assertEqual(self.refused(path)[0],
                         "test file %s is not a regular file but a named pipe"
                         % (path.replace("\n", "\\n"),))

    def test_read_source(self):
        """
        ``_yamlsource.read_source`` (what the agent reads the deployment file
        with) is this reader, not a second one.
        """
        self.assertIs(_yamlsource.read_source, read_bounded)


class CheckRegularTests(SynchronousTestCase):
    """
    Tests for :func:`check_regular`, for files others read (an SSH key).
    """

    def test_kinds(self):
        """
        A regular file passes; anything else is named.
        """
        check_regular("ssh identity", "/k", os.stat(__file__).st_mode, "Fix it.")
        with self.assertRaises(ConfigError) as caught:
            check_regular("ssh identity", "/dev/null", os.stat("/dev/null").st_mode, "Fix it.")
        self.assertEqual((caught.exception.summary(), caught.exception.fix), (
            "ssh identity /dev/null is not a regular file but a character device", "Fix it."))
