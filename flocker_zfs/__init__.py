"""
flocker-zfs: a Twisted peer-to-peer ZFS dataset backend.

:class:`ZFSBackend` manages the datasets of one local pool; every operation
returns a ``Deferred``.  :mod:`flocker_zfs.testing` has a fake ZFS for
users' own tests, and :mod:`flocker_zfs.errors` the typed errors.
"""

from ._backend import ZFSBackend
from ._runner import ProcessRunner
from .interfaces import IRunner, IStorageBackend
from .model import Capabilities, Dataset, PoolState, Snapshot
from .node import load_node_uuid

__all__ = [
    "ZFSBackend", "ProcessRunner", "IRunner", "IStorageBackend",
    "Capabilities", "Dataset", "PoolState", "Snapshot", "load_node_uuid",
]
