"""
The example in ``docs/testing.rst`` ("Testing your own code"), run as a
test so the documentation cannot rot: a program's own trial test using the
fake ZFS and the fake network, no root and no pool.
"""

import os
import uuid

from twisted.trial.unittest import SynchronousTestCase

from flocker_zfs.testing import FakeNetwork, make_fake_backend


class ExampleTests(SynchronousTestCase):
    """
    How a program embedding flocker-zfs tests itself.
    """

    def test_backend(self):
        """
        A dataset created through the real backend code on a fake pool is
        a real directory the test can write to.
        """
        backend, fake = make_fake_backend(os.path.abspath(self.mktemp()))
        self.addCleanup(fake.unmount_all)
        dataset_id = str(uuid.uuid4())
        dataset = self.successResultOf(backend.create(dataset_id, 1024 ** 3))
        backend.path(dataset_id).child("hello").setContent(b"world")
        self.assertEqual((dataset.writable, dataset.maximum_size), (True, 1024 ** 3))

    def test_handoff(self):
        """
        Two fake nodes: data written on one is read on the other after a
        handoff, which makes the other the writable owner.
        """
        network = FakeNetwork(os.path.abspath(self.mktemp()))
        self.addCleanup(network.unmount_all)
        a, b = network.add_node("a.example"), network.add_node("b.example")
        dataset_id = str(uuid.uuid4())
        self.successResultOf(a.backend.create(dataset_id))
        a.backend.path(dataset_id).child("f").setContent(b"moved")
        self.successResultOf(a.replicator.handoff(dataset_id, a.peer("b.example")))
        self.assertEqual(b.backend.path(dataset_id).child("f").getContent(), b"moved")
        replica = self.successResultOf(a.backend.get(dataset_id))
        self.assertEqual((replica.writable, replica.owner), (False, b.node_uuid))
