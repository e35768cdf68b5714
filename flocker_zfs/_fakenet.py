# test-case-name: flocker_zfs.test.test_replication
"""
A fake network of nodes for tests: each node has its own :class:`FakeZFS`
pool, a real :class:`ZFSBackend`, a real peer server and a real
:class:`Replicator`; :class:`FakePeer` carries requests and streams between
them in memory, through the same protocol codec SSH would carry.

Faults a test can inject: a node unreachable (:meth:`FakeNetwork.partition`),
a stream cut after some bytes (:meth:`FakeNetwork.cut_next_stream`), a reply
lost after the peer did the work (:meth:`FakeNetwork.lose_next_reply`).
Public through :mod:`flocker_zfs.testing`.
"""

import os
import shlex
import uuid

from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from zope.interface import implementer

from ._backend import ZFSBackend
from ._fakezfs import FakeZFS
from ._peerserver import BytesReceiveStream, PeerServer
from ._protocol import decode_response, request
from ._replication import Replicator
from .errors import PeerUnreachable, TransferFailed, TransportError, ZFSError
from .interfaces import IPeer


class FakeNode(object):
    """
    One node of a :class:`FakeNetwork`.

    :ivar str address: how peers reach it.
    :ivar fake: its :class:`FakeZFS`.
    :ivar backend: its :class:`ZFSBackend` (pool ``flocker``).
    :ivar replicator: its :class:`Replicator`.
    :ivar server: its peer server.
    :ivar list writers: ``(pid, command, file)`` of simulated processes with
        files open for writing in its datasets (what the handoff checks).
    """

    def __init__(self, network, address, fake, backend, replicator, server):
        self.network = network
        self.address = address
        self.fake = fake
        self.backend = backend
        self.replicator = replicator
        self.server = server

    @property
    def node_uuid(self):
        return self.backend.node_uuid

    def peer(self, address):
        """
        :return: an :class:`IPeer` from this node to the node at ``address``.
        """
        return FakePeer(self.network, self, address)


class FakeNetwork(object):
    """
    Nodes that reach each other through :class:`FakePeer`.

    :param root: a directory the test owns; each node mounts its datasets
        under ``<root>/<address>``.
    :param clock: an ``IReactorTime`` for the backends (default a ``Clock``).
    """

    def __init__(self, root, clock=None):
        self.root = root
        self.clock = clock if clock is not None else Clock()
        self.nodes = {}
        self._down = set()
        self._cuts = {}
        self._lost = {}

    def add_node(self, address, profile="zfs-fuse", pool="flocker"):
        """
        Add a node with an empty pool.

        :return: the :class:`FakeNode`.
        """
        fake = FakeZFS(profile=profile, seed=len(self.nodes) + 1)
        fake.add_pool(pool)
        backend = ZFSBackend(self.clock, pool, os.path.join(self.root, address),
                             str(uuid.uuid4()), runner=fake)
        writers = []
        replicator = Replicator(backend, self.clock,
                                open_writers=lambda path: succeed(list(writers)))
        node = FakeNode(self, address, fake, backend, replicator, PeerServer(backend))
        node.writers = writers
        self.nodes[address] = node
        return node

    def unmount_all(self):
        """
        Remove every node's mount directories (for test clean-up).
        """
        for node in self.nodes.values():
            node.fake.unmount_all()

    # -- faults ------------------------------------------------------------

    def partition(self, address):
        """``address`` becomes unreachable until :meth:`heal`."""
        self._down.add(address)

    def heal(self, address):
        """``address`` is reachable again."""
        self._down.discard(address)

    def cut_next_stream(self, address, after, skip=0):
        """
        A stream to ``address`` is cut after ``after`` bytes: the next one,
        or the one after ``skip`` streams went through.
        """
        self._cuts[address] = (skip, after)

    def lose_next_reply(self, address, verb):
        """
        The next ``verb`` request to ``address`` is carried out there, but
        its reply never arrives (the connection drops).
        """
        self._lost[(address, verb)] = True

    def _take_cut(self, address):
        planned = self._cuts.get(address)
        if planned is None:
            return None
        skip, after = planned
        if skip > 0:
            self._cuts[address] = (skip - 1, after)
            return None
        del self._cuts[address]
        return after

    def _unreachable(self, address):
        return PeerUnreachable(
            address, b"ssh: connect to host %s port 22: Connection refused\n"
            % (address.encode("ascii"),))


@implementer(IPeer)
class FakePeer(object):
    """
    ``IPeer`` from one :class:`FakeNode` to another.
    """

    def __init__(self, network, source, address):
        self._network = network
        self._source = source
        self.address = address

    def __repr__(self):
        return "<FakePeer %s -> %s>" % (self._source.address, self.address)

    def _target(self):
        if self.address in self._network._down or self.address not in self._network.nodes:
            return None
        return self._network.nodes[self.address]

    def _finish(self, verb, result):
        status, stdout = result
        if self._network._lost.pop((self.address, verb), False):
            raise TransportError(self.address, b"Connection to %s closed by remote host.\n"
                                 % (self.address.encode("ascii"),))
        return decode_response(self.address, stdout)

    def call(self, verb, *args):
        target = self._target()
        if target is None:
            return fail(self._network._unreachable(self.address))
        text = shlex.join(request(verb, *args))
        d = target.server.handle(text, None)
        d.addCallback(lambda result: self._finish(verb, result))
        return d

    def stream(self, send_argv, verb, *args, progress=None):
        target = self._target()
        if target is None:
            return fail(TransferFailed("transport", self._network._unreachable(self.address)))
        try:
            data = self._source.fake.send_stream(send_argv)
        except ZFSError as error:
            return fail(TransferFailed("sender", error))
        cut = self._network._take_cut(self.address)
        if cut is not None:
            data = data[:cut]
        if progress is not None:
            progress(len(data))
        text = shlex.join(request(verb, *args))
        d = target.server.handle(text, BytesReceiveStream(target.fake, data))

        def received(result):
            if cut is not None:
                raise TransferFailed("transport", TransportError(
                    self.address, b"Connection to %s closed by remote host.\n"
                    % (self.address.encode("ascii"),)))
            try:
                response = self._finish(verb, result)
            except TransportError as error:
                raise TransferFailed("transport", error)
            except Exception as error:
                raise TransferFailed("receiver", error)
            return response, len(data)
        d.addCallback(received)
        return d
