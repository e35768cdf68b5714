"""
The embedding example of ``docs/agent.rst`` (``docs/examples/embedding.py``),
run in ``trial`` the way its docstring suggests: the application's service
tree on :mod:`flocker_zfs.testing`'s fake ZFS and fake network, driven by a
``Clock``; no root, no pool, no processes.
"""

import importlib.util
import json
import os
import uuid

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .._config import parse_config
from ..testing import FakeNetwork

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "docs", "examples", "embedding.py")


def load_example():
    """
    :return: the example, imported from its file (it is documentation, not
        part of the package).
    """
    if not os.path.exists(EXAMPLE):
        raise SkipTest("%s is not here (an installed package without docs/)" % (EXAMPLE,))
    spec = importlib.util.spec_from_file_location("flocker_zfs_embedding_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class EmbeddingTests(SynchronousTestCase):
    """
    The example's service tree, on node ``a`` of a fake network whose node
    ``b`` only answers peer requests.
    """

    def setUp(self):
        self.example = load_example()
        self.network = FakeNetwork(os.path.abspath(self.mktemp()))
        self.addCleanup(self.network.unmount_all)
        self.clock = self.network.clock
        self.a = self.network.add_node("a.example")
        self.b = self.network.add_node("b.example")
        root = os.path.abspath(self.mktemp())
        os.makedirs(root)
        # The application's backend is node a: same identity, same pool.
        node_file = os.path.join(root, "node.json")
        with open(node_file, "w") as handle:
            json.dump({"uuid": self.a.node_uuid}, handle)
        self.deployment = os.path.join(root, "deployment.yml")
        self.config = parse_config(
            "version: 1\n"
            "control-service: {hostname: control.example}\n"
            "dataset:\n"
            "  backend: zfs\n"
            "  mount_root: %s\n"
            "  node_file: %s\n"
            "  deployment: %s\n"
            "  poll_interval: 5\n" % (os.path.join(self.network.root, "a.example"),
                                      node_file, self.deployment),
            source=os.path.join(root, "agent.yml"))
        self.dataset_id = str(uuid.uuid4())
        with open(self.deployment, "w") as handle:
            handle.write("nodes:\n"
                         "  - {uuid: %s, address: a.example}\n"
                         "  - {uuid: %s, address: b.example}\n"
                         "datasets:\n"
                         "  - {id: %s, primary: %s, replicas: [%s]}\n" % (
                             self.a.node_uuid, self.b.node_uuid, self.dataset_id,
                             self.a.node_uuid, self.b.node_uuid))

    def make_service(self):
        return self.example.make_service(
            self.clock, self.config, runner=self.a.fake,
            make_peer=lambda address: self.a.peer(address.address))

    def test_tree(self):
        """
        The storage service holds the backend and then the agent, next to
        the application's own service, and they share the backend.
        """
        top = self.make_service()
        storage = top.getServiceNamed("flocker-zfs")
        self.assertEqual([service.name for service in storage],
                         ["flocker-zfs:flocker", "flocker-zfs-agent"])
        self.assertIs(storage.agent.backend, storage.backend)
        self.assertIs(top.getServiceNamed("writable-datasets").backend, storage.backend)
        self.assertEqual((storage.backend.node_uuid, storage.agent.poll_interval),
                         (self.a.node_uuid, 5.0))

    def test_converges(self):
        """
        Started, the tree's agent creates the dataset on this node and pushes
        it to ``b``; the application sees it writable here within a minute;
        stopping the tree stops the agent's iterations.
        """
        top = self.make_service()
        top.startService()
        self.clock.advance(5)
        mine = self.successResultOf(self.a.backend.get(self.dataset_id))
        replica = self.successResultOf(self.b.backend.get(self.dataset_id))
        self.assertEqual((mine.writable, replica.writable, replica.owner),
                         (True, False, self.a.node_uuid))
        self.clock.advance(60)
        self.assertEqual(top.getServiceNamed("writable-datasets").writable,
                         frozenset([self.dataset_id]))
        self.successResultOf(top.stopService())
        before = list(self.a.fake.commands)
        self.clock.advance(60)
        self.assertEqual(self.a.fake.commands, before)
