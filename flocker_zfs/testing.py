# test-case-name: flocker_zfs.test.test_testing
"""
Test doubles for programs that use flocker-zfs: public API.

- :class:`FakeZFS`: answers ``zfs``/``zpool`` argv in memory the way real ZFS
  does (zfs-fuse or OpenZFS profile), mounting datasets on real temporary
  directories.  Plug it into :class:`flocker_zfs.ZFSBackend` as its runner.
- :func:`make_fake_backend`: a ready :class:`ZFSBackend` over a fresh
  :class:`FakeZFS` pool, for ``trial`` tests that need no root and no pool.
- :class:`FakeNetwork`: several nodes, each a fake pool with a real backend,
  peer server and replicator, reaching each other through :class:`FakePeer`
  (the peer protocol in memory), with injectable network faults.
- :class:`MemoryProcessReactor`: a ``MemoryReactorClock`` that also provides
  ``IReactorProcess``, recording spawned processes so tests can drive their
  protocols by hand.
"""

import uuid

from twisted.internet.testing import MemoryReactorClock

from ._backend import ZFSBackend
from ._fakenet import FakeNetwork, FakeNode, FakePeer
from ._fakezfs import FakeZFS
from ._memreactor import FakeProcessTransport, MemoryProcessReactor

__all__ = ["FakeZFS", "MemoryProcessReactor", "FakeProcessTransport", "make_fake_backend",
           "FakeNetwork", "FakeNode", "FakePeer"]


def make_fake_backend(mount_root, pool="flocker", profile="zfs-fuse", reactor=None,
                      node_uuid=None, fake=None):
    """
    A :class:`ZFSBackend` over a :class:`FakeZFS` holding ``pool``.

    :param str mount_root: a directory the test owns (``self.mktemp()``).
    :param profile: ``"zfs-fuse"`` or ``"openzfs"``.
    :param reactor: defaults to a new :class:`MemoryReactorClock`; the fake
        answers at once, so no reactor iteration is needed.
    :param fake: an existing :class:`FakeZFS` (for several nodes' pools in
        one fake, or to share state between backends); default a new one.
    :return: ``(backend, fake)``.
    """
    if fake is None:
        fake = FakeZFS(profile=profile)
    if pool not in fake.pools():
        fake.add_pool(pool)
    backend = ZFSBackend(
        reactor if reactor is not None else MemoryReactorClock(),
        pool, mount_root, node_uuid or str(uuid.uuid4()), runner=fake)
    return backend, fake
