"""
Embedding flocker-zfs in an existing Twisted application (docs/agent.rst).

:func:`make_storage` builds the ZFS backend and the reference agent from an
``agent.yml`` as one service; :func:`make_service` is the application's own
service tree, with flocker-zfs added next to the application's services.
A ``.tac`` file (``twistd -ny myapp.tac``) then only needs::

    from twisted.application.service import Application
    from twisted.internet import reactor
    from flocker_zfs._config import load_config

    application = Application("myapp")
    make_service(reactor, load_config("/etc/flocker/agent.yml")).setServiceParent(
        application)

Everything takes the reactor, and the ZFS runner and peer factory can be
replaced, so the same code runs in ``trial`` on :mod:`flocker_zfs.testing`
(see flocker_zfs/test/test_embedding.py).
"""

from eliot import Message
from twisted.application.internet import TimerService
from twisted.application.service import MultiService

from flocker_zfs._agent import AgentService, ssh_peers
from flocker_zfs._plugin import zfs_backend


def make_storage(reactor, config, runner=None, make_peer=None):
    """
    The backend and the agent of ``config`` as one service named
    ``"flocker-zfs"``.  Children start in order (the backend's start-up
    checks first) and stop in reverse (the agent lets its changes finish
    before the backend goes).

    :param config: an ``AgentConfig`` (``flocker_zfs._config.load_config``)
        whose backend is ``zfs``.
    :param runner: runs ``zfs``/``zpool``; ``None`` for real processes, a
        ``FakeZFS`` in tests.
    :param make_peer: ``callable(NodeAddress) -> IPeer``; ``None`` for SSH
        with the config's key and known_hosts.
    :return: the ``MultiService``; its ``backend`` and ``agent`` attributes
        are the two children.
    """
    settings = config.settings
    backend = zfs_backend(reactor, settings, runner=runner)
    if make_peer is None:
        make_peer = ssh_peers(reactor, settings.ssh_config())
    agent = AgentService(reactor, backend, settings.deployment, make_peer,
                         poll_interval=settings.poll_interval,
                         max_parallel=settings.max_parallel)
    storage = MultiService()
    storage.setName("flocker-zfs")
    backend.setServiceParent(storage)
    agent.setServiceParent(storage)
    storage.backend, storage.agent = backend, agent
    return storage


class WritableDatasets(TimerService):
    """
    The application's own use of the backend: every ``interval`` seconds it
    notes which datasets this node can write to (say, to serve them).

    :ivar frozenset writable: their ids, as of the last check.
    """

    def __init__(self, reactor, backend, interval=60.0):
        TimerService.__init__(self, interval, self.refresh)
        self.clock = reactor
        self.backend = backend
        self.writable = frozenset()
        self.setName("writable-datasets")

    def refresh(self):
        d = self.backend.discover()
        d.addCallback(self._found)
        # A failed check must not stop the timer: log it and try next time.
        d.addErrback(lambda failure: Message.log(
            message_type="myapp:refresh_failed", reason=str(failure.value)))
        return d

    def _found(self, state):
        self.writable = frozenset(
            dataset_id for dataset_id, dataset in state.datasets.items()
            if dataset.writable)


def make_service(reactor, config, runner=None, make_peer=None):
    """
    The whole application: its own services and flocker-zfs, in one tree.

    :return: the top ``MultiService``.
    """
    top = MultiService()
    storage = make_storage(reactor, config, runner=runner, make_peer=make_peer)
    storage.setServiceParent(top)
    WritableDatasets(reactor, storage.backend).setServiceParent(top)
    return top
