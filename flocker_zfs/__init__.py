"""
flocker-zfs: a Twisted peer-to-peer ZFS dataset backend.

:class:`ZFSBackend` manages the datasets of one local pool and
:class:`Replicator` pushes them to peers and hands them off (through an
:class:`SSHPeer`); every operation returns a ``Deferred``.
:mod:`flocker_zfs.testing` has a fake ZFS (and a fake network of nodes) for
users' own tests, and :mod:`flocker_zfs.errors` the typed errors.
"""

from ._backend import ZFSBackend
from ._replication import Replicator
from ._runner import ProcessRunner
from ._ssh import SSHConfig
from ._sshpeer import SSHPeer
from .interfaces import IRunner, IStorageBackend
from .model import (
    Capabilities, Dataset, HandoffResult, PoolState, PushResult, Snapshot)
from .node import load_node_uuid

__all__ = [
    "ZFSBackend", "ProcessRunner", "IRunner", "IStorageBackend",
    "Capabilities", "Dataset", "PoolState", "Snapshot", "load_node_uuid",
    "Replicator", "SSHPeer", "SSHConfig", "PushResult", "HandoffResult",
]
