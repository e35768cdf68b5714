"""
Tests for ``zfs send``/``zfs receive`` in the fake ZFS
(:mod:`flocker_zfs._fakestream`), through :meth:`FakeZFS.send_stream` and
:meth:`FakeZFS.receive_stream`, plus the eliot logging of :meth:`FakeZFS.run`.
"""

import os

from eliot.testing import LoggedAction, capture_logging

from .._actions import COMMAND
from .._fakestream import read_token
from .._fakezfs import FakeZFS
from ..errors import DatasetNotFound, OutOfSpace
from .test_fakezfs import OPENZFS, FakeCase


class SendReceiveTests(FakeCase):
    """``zfs send`` (:meth:`send_stream`) and ``zfs receive`` (:meth:`receive_stream`)."""

    def source(self, fake=None):
        fake = fake or self.fake
        path = self.create_mounted("p/src", fake=fake)
        self.write(os.path.join(path, "f"), b"one")
        self.ok("snapshot p/src@1", fake)
        self.write(os.path.join(path, "g"), b"two")
        self.ok("snapshot p/src@2", fake)
        return fake

    def recv(self, line, data, fake=None):
        status, out, err = (fake or self.fake).receive_stream(["zfs", "receive"] + line.split(),
                                                              data)
        return status, err.decode("utf-8")

    def test_full_and_incremental(self):
        """A full then an incremental stream replicate files and snapshot guids."""
        self.source()
        full = self.fake.send_stream(["zfs", "send", "p/src@1"])
        self.assertEqual(self.recv("-o mountpoint=x p/dst", full)[0], 2)
        self.assertEqual(self.recv("p/dst", full), (0, ""))
        self.assertEqual(self.recv("p/dst", full)[1], "cannot receive new filesystem stream: "
                         "destination 'p/dst' exists\nmust specify -F to overwrite it\n")
        inc = self.fake.send_stream(["zfs", "send", "-i", "@1", "p/src@2"])
        self.ok("set mountpoint=%s p/dst" % (self.mnt("dst"),))
        self.assertEqual(self.recv("p/dst", inc), (0, ""))
        self.ok("unmount p/dst")    # zfs-fuse: see StaleViewTests
        self.ok("mount p/dst")
        self.assertEqual(sorted(os.listdir(self.mnt("dst"))), ["f", "g"])
        guids = self.ok("get -H -p -o value guid p/src@2 p/dst@2").split()
        self.assertEqual(guids[0], guids[1])

    def test_incremental_checks(self):
        """Modified destination, missing base and -F, with ZFS's wording."""
        self.source()
        self.recv("p/dst", self.fake.send_stream(["zfs", "send", "p/src@1"]))
        self.ok("set mountpoint=%s p/dst" % (self.mnt("dst"),))
        self.write(os.path.join(self.mnt("dst"), "local"), b"x")
        inc = self.fake.send_stream(["zfs", "send", "-i", "p/src@1", "p/src@2"])
        self.assertEqual(self.recv("p/dst", inc)[1], "cannot receive incremental stream: "
                         "destination p/dst has been modified\nsince most recent snapshot\n")
        self.assertEqual(self.recv("-F p/dst", inc), (0, ""))
        self.assertFalse(os.path.exists(os.path.join(self.mnt("dst"), "local")))
        self.assertEqual(self.recv("p/other", inc)[1], "cannot receive incremental stream: most "
                         "recent snapshot of p/dst does not\nmatch incremental source\n")

    def test_bad_streams(self):
        """Empty, garbage and truncated streams fail without creating anything."""
        self.source()
        full = self.fake.send_stream(["zfs", "send", "p/src@2"])
        before = self.fake.snapshot_state()
        self.assertEqual(self.recv("p/d", b""),
                         (1, "cannot receive: failed to read from stream\n"))
        self.assertEqual(self.recv("p/d", b"x" * 400),
                         (1, "cannot receive: invalid stream (bad magic number)\n"))
        self.assertEqual(self.recv("p/d", full[:-10]),
                         (1, "cannot receive new filesystem stream: invalid backup stream\n"))
        self.assertEqual(self.fake.snapshot_state(), before)
        self.assertEqual(self.recv("-s p/d", full)[0], 2)

    def test_resume_openzfs(self):
        """OpenZFS ``receive -s`` keeps a token; ``send -t`` resumes the transfer."""
        fake = self.source(self.make_fake(OPENZFS))
        full = fake.send_stream(["zfs", "send", "p/src@2"])
        status, err = self.recv("-s p/d", full[:-5], fake)
        self.assertTrue(err.startswith("cannot receive new filesystem stream: checksum "
                                       "mismatch or incomplete stream.\nPartially received"))
        token = self.ok("get -H -o value receive_resume_token p/d", fake).strip()
        self.assertEqual(read_token(token)["toname"], "p/src@2")
        self.assertEqual(self.recv("p/d", full, fake)[1], "cannot receive new filesystem "
                         "stream: destination p/d contains partially-complete state from "
                         "\"zfs receive -s\".\n")
        rest = fake.send_stream(["zfs", "send", "-t", token])
        self.assertEqual(self.recv("-s p/d", rest, fake), (0, ""))
        self.assertEqual(self.ok("get -H -o value receive_resume_token p/d", fake), "-\n")
        self.assertEqual(self.ok("list -H -t snapshot -o name -r p/d", fake), "p/d@2\n")

    def test_send_errors_and_estimate(self):
        """Missing snapshots and bases; OpenZFS estimates with ``-nP``."""
        self.source()
        self.assertEqual(self.fails("send p/src@nope")[1],
                         "WARNING: could not send p/src@nope: does not exist\n")
        self.assertEqual(self.fails("send -i @2 p/src@1")[1], "warning: cannot send "
                         "'p/src@1': not an earlier snapshot from the same fs\n")
        fake = self.source(self.make_fake(OPENZFS))
        self.assertEqual(self.ok("send -nP p/src@1", fake), "full\tp/src@1\t6147\nsize\t6147\n")

    def test_out_of_space(self):
        """A receive that would overfill the pool fails with ``OutOfSpace``."""
        path = self.create_mounted("p/src")
        self.write(os.path.join(path, "big"), b"x" * 600000)
        self.ok("snapshot p/src@1")
        small = FakeZFS()
        small.add_pool("p", size=500000)
        status, out, err = small.receive_stream(["zfs", "receive", "p/d"],
                                                self.fake.send_stream(["zfs", "send", "p/src@1"]))
        self.assertEqual(err, b"cannot receive new filesystem stream: out of space\n")


class StaleViewTests(FakeCase):
    """
    A receive into a mounted filesystem: on zfs-fuse its readers keep the
    view they had until it is mounted again (the kernel's FUSE caches are
    not invalidated), coarsened to the whole directory; on OpenZFS they see
    the new content at once.
    """

    recv = SendReceiveTests.recv

    def replica(self, fake):
        """
        ``p/src`` with ``f`` (``one``), snapshot 1, received and mounted as
        ``p/dst``; then ``f`` changed and ``g`` added, snapshot 2.

        :return: the incremental stream from 1 to 2.
        """
        path = self.create_mounted("p/src", fake=fake)
        self.write(os.path.join(path, "f"), b"one")
        self.ok("snapshot p/src@1", fake)
        self.recv("-u p/dst", fake.send_stream(["zfs", "send", "p/src@1"]), fake)
        self.ok("set mountpoint=%s p/dst" % (self.mnt("dst", fake),), fake)
        self.write(os.path.join(path, "f"), b"two")
        self.write(os.path.join(path, "g"), b"new")
        self.ok("snapshot p/src@2", fake)
        return fake.send_stream(["zfs", "send", "-i", "@1", "p/src@2"])

    def view(self, fake):
        """:return: ``{name: bytes}`` readers of ``p/dst`` see."""
        where = self.mnt("dst", fake)
        return {name: self.read(os.path.join(where, name)) for name in os.listdir(where)}

    def test_zfs_fuse_until_remounted(self):
        """
        On zfs-fuse readers still see the old content after the receive;
        the dataset itself has the new (a snapshot of it sends it), and a
        new mount shows it.
        """
        inc = self.replica(self.fake)
        self.assertEqual(self.recv("-u p/dst", inc), (0, ""))
        self.assertEqual(self.view(self.fake), {"f": b"one"})
        self.ok("snapshot p/dst@3")
        copy = self.make_fake(OPENZFS)
        copy.receive_stream(["zfs", "receive", "p/c"],
                            self.fake.send_stream(["zfs", "send", "p/dst@3"]))
        self.assertEqual(copy.snapshot_state().datasets["p/c"].content,
                         {"f": b"two", "g": b"new"})
        self.ok("unmount p/dst")
        self.ok("mount p/dst")
        self.assertEqual(self.view(self.fake), {"f": b"two", "g": b"new"})

    def test_zfs_fuse_writes_kept(self):
        """
        What is written through a stale view (a replica made writable
        before it was mounted again) lands on the new content.
        """
        inc = self.replica(self.fake)
        self.recv("p/dst", inc)
        self.ok("set readonly=off p/dst")
        self.write(os.path.join(self.mnt("dst"), "h"), b"written")
        os.remove(os.path.join(self.mnt("dst"), "f"))
        self.assertEqual(self.fake.snapshot_state().datasets["p/dst"].content,
                         {"g": b"new", "h": b"written"})
        self.ok("unmount p/dst")
        self.ok("mount p/dst")
        self.assertEqual(self.view(self.fake), {"g": b"new", "h": b"written"})

    def test_openzfs_at_once(self):
        """On OpenZFS readers see the received content at once."""
        fake = self.make_fake(OPENZFS)
        inc = self.replica(fake)
        self.assertEqual(self.recv("-u p/dst", inc, fake), (0, ""))
        self.assertEqual(self.view(fake), {"f": b"two", "g": b"new"})


class SpaceAndLoggingTests(FakeCase):
    """Pool space on snapshots, and the eliot action of each command."""

    def test_snapshot_out_of_space(self):
        """A snapshot when the files written exceed the pool fails with ``OutOfSpace``."""
        fake = FakeZFS(profile="zfs-fuse")
        fake.add_pool("small", size=200000)
        self.addCleanup(fake.unmount_all)
        path = os.path.join(self.root, "small")
        self.assertEqual(fake.execute(["zfs", "create", "-o", "mountpoint=" + path,
                                       "small/a"])[0], 0)
        self.write(os.path.join(path, "big"), b"x" * 300000)
        failure = self.failureResultOf(fake.run(["zfs", "snapshot", "small/a@s"]), OutOfSpace)
        self.assertEqual(failure.value.stderr,
                         b"cannot create snapshot 'small/a@s': out of space\n")

    @capture_logging(None)
    def test_logged(self, logger):
        """Each command is an eliot action like the real runner's, failed or not."""
        self.successResultOf(self.fake.run(["zpool", "list", "-H", "p"]))
        self.failureResultOf(self.fake.run(["zfs", "destroy", "p/nope"]), DatasetNotFound)
        done, failed = LoggedAction.of_type(logger.messages, COMMAND)
        self.assertEqual((done.succeeded, done.start_message["argv"], done.end_message["status"]),
                         (True, ["zpool", "list", "-H", "p"], 0))
        self.assertEqual((failed.succeeded, failed.end_message["status"],
                          failed.end_message["stderr"]),
                         (False, 1, "cannot open 'p/nope': dataset does not exist\n"))
