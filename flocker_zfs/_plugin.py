# test-case-name: flocker_zfs.test.test_plugin
"""
The backend description a host dataset agent loads: found by the name
``zfs``, through the ``flocker.backends`` entry point, or as the
``FLOCKER_BACKEND`` attribute of this module.
"""

from pyrsistent import PClass, field, pset_field

from ._backend import ZFSBackend
from .errors import ConfigError
from .names import validate_mount_root, validate_pool_name
from .node import DEFAULT_NODE_FILE, load_node_uuid

#: Defaults of the ``dataset:`` section keys this backend reads.
DEFAULTS = {
    "pool": "flocker",
    "mount_root": "/flocker",
    "node_file": DEFAULT_NODE_FILE,
}


class BackendDescription(PClass):
    """
    How a host agent builds and drives a storage backend.

    :ivar str name: the ``backend:`` value that selects it.
    :ivar factory: ``callable(reactor, **config)`` returning the backend (an
        ``IStorageBackend`` that is also an ``IService``).
    :ivar bool needs_reactor: ``factory`` takes the reactor first.
    :ivar bool needs_cluster_id: ``factory`` takes ``cluster_id=``.
    :ivar required_config: keys the ``dataset:`` section must have.
    :ivar str deployer_type: ``"p2p"``: data moves between nodes by
        replication, not by attaching shared storage.
    """

    name = field(type=str, mandatory=True)
    factory = field(mandatory=True)
    needs_reactor = field(type=bool, mandatory=True)
    needs_cluster_id = field(type=bool, mandatory=True)
    required_config = pset_field(str)
    deployer_type = field(type=str, mandatory=True)


def zfs_backend_factory(reactor, pool=DEFAULTS["pool"], mount_root=DEFAULTS["mount_root"],
                        node_file=DEFAULTS["node_file"], **unknown):
    """
    Build the ZFS backend from the agent's ``dataset:`` section.

    :raises ConfigError: an unknown key, or a bad value (named).
    """
    if unknown:
        raise ConfigError("unknown key(s) in the dataset section for backend zfs: %s"
                          % (", ".join(sorted(unknown)),),
                          fix="Known keys: backend, %s." % (", ".join(sorted(DEFAULTS)),))
    # Names first: bad input must change nothing (not even create the identity).
    validate_pool_name(pool)
    validate_mount_root(mount_root)
    return ZFSBackend(reactor, pool, mount_root, load_node_uuid(node_file))


FLOCKER_BACKEND = BackendDescription(
    name="zfs",
    factory=zfs_backend_factory,
    needs_reactor=True,
    needs_cluster_id=False,
    required_config=set(),
    deployer_type="p2p",
)
