"""
A third-party backend for the plugin tests. It is found as ``backend:
flocker_zfs.test.plugin_example`` (the module route), or through a
``flocker.backends`` entry point that the tests inject.

:data:`FLOCKER_BACKEND` needs the reactor and the cluster id, requires the
``greeting`` key and checks its section itself. :data:`PLAIN_BACKEND` needs
neither and has no ``start()``.
"""

from pyrsistent import pmap
from twisted.internet.defer import succeed

from .._plugin import BackendDescription
from ..errors import ConfigError


class ExampleBackend(object):
    """
    Records how it was built and whether it was started.
    """

    def __init__(self, reactor, settings, cluster_id, runner=None):
        self.reactor = reactor
        self.settings = settings
        self.cluster_id = cluster_id
        self.runner = runner
        self.started = False

    def start(self):
        self.started = True
        return succeed(None)


def example_settings(section, source):
    """
    Accept only ``greeting`` (a string) and ``loud`` (a boolean).
    """
    unknown = sorted(set(section) - {"greeting", "loud"}, key=repr)
    if unknown:
        raise ConfigError("unknown keys for the example backend: %s" % (unknown,))
    if not isinstance(section["greeting"], str):
        raise ConfigError("%s: dataset.greeting must be a string" % (source,),
                          fix="Say hello.")
    return pmap(section)


FLOCKER_BACKEND = BackendDescription(
    name="example",
    factory=ExampleBackend,
    needs_reactor=True,
    needs_cluster_id=True,
    required_config={"greeting"},
    deployer_type="p2p",
    settings=example_settings,
)


class PlainBackend(object):
    """
    Built from its settings alone; nothing to start.
    """

    def __init__(self, settings):
        self.settings = settings


PLAIN_BACKEND = BackendDescription(name="plain", factory=PlainBackend, needs_reactor=False)
