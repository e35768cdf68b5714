"""
flocker-zfs: a Twisted peer-to-peer ZFS dataset backend.

:class:`ZFSBackend` manages the datasets of one local pool and
:class:`Replicator` pushes them to peers and hands them off (through an
:class:`SSHPeer`); every operation returns a ``Deferred``.
:mod:`flocker_zfs.testing` has a fake ZFS (and a fake network of nodes) for
users' own tests, and :mod:`flocker_zfs.errors` the typed errors.

A host's dataset agent loads the backend from ``agent.yml``
(:func:`load_config`, :func:`backend_from_config`, found by name, entry point
or module through :func:`find_backend`).  The reference agent,
:class:`AgentService` (an ``IService``; :func:`agent_from_config`), converges
a desired :class:`Deployment` (:func:`load_deployment`): it discovers this
node (:func:`discover_state`), plans with the pure
:func:`calculate_changes` and runs the plan's state changes
(:func:`run_state_change`).
"""

from ._agent import AgentService, agent_from_config, ssh_peers
from ._backend import ZFSBackend
from ._config import DEFAULT_CONFIG, AgentConfig, ZFSSettings, load_config, parse_config
from ._deployer import ClusterState, NodeState, calculate_changes, discover_state
from ._deployment import (
    Deployment, DesiredDataset, NodeAddress, load_deployment, parse_deployment)
from ._plugin import BackendDescription, backend_from_config, find_backend, zfs_backend
from ._replication import Replicator
from ._runner import ProcessRunner
from ._ssh import SSHConfig
from ._sshpeer import SSHPeer
from ._statechanges import (
    ChangeContext, CreateDataset, CreateWithdrawn, DeleteDataset, DemoteDataset,
    HandoffDataset, InParallel, IStateChange, PushDataset, RecoverHandoff, ResizeDataset,
    Sequentially, run_state_change)
from .interfaces import IRunner, IStorageBackend
from .model import (
    Capabilities, Dataset, HandoffResult, PoolState, PushResult, Snapshot)
from .node import load_node_uuid

__all__ = [
    "ZFSBackend", "ProcessRunner", "IRunner", "IStorageBackend",
    "Capabilities", "Dataset", "PoolState", "Snapshot", "load_node_uuid",
    "Replicator", "SSHPeer", "SSHConfig", "PushResult", "HandoffResult",
    # agent integration
    "DEFAULT_CONFIG", "AgentConfig", "ZFSSettings", "load_config", "parse_config",
    "BackendDescription", "backend_from_config", "find_backend", "zfs_backend",
    "Deployment", "DesiredDataset", "NodeAddress", "load_deployment", "parse_deployment",
    "NodeState", "ClusterState", "discover_state", "calculate_changes",
    "IStateChange", "ChangeContext", "run_state_change", "CreateDataset", "ResizeDataset",
    "PushDataset", "HandoffDataset", "RecoverHandoff", "DeleteDataset", "DemoteDataset",
    "CreateWithdrawn", "Sequentially",
    "InParallel", "AgentService", "agent_from_config", "ssh_peers",
]
