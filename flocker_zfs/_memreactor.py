# test-case-name: flocker_zfs.test.test_runner
"""
:class:`MemoryProcessReactor`: a ``MemoryReactorClock`` that also provides
``IReactorProcess``.  Twisted's own testing module has no process double;
this one records each spawn and connects the protocol to a
:class:`FakeProcessTransport`, so tests drive ``childDataReceived`` and
``processEnded`` by hand.  Public through :mod:`flocker_zfs.testing`.
"""

import itertools

from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IProcessTransport, IReactorProcess
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer
from zope.interface.verify import verifyClass


@implementer(IProcessTransport)
class FakeProcessTransport(object):
    """
    The transport of a process spawned on a :class:`MemoryProcessReactor`.

    :ivar list signals: signal names sent with ``signalProcess``, in order.
    :ivar bool stdin_closed: whether ``closeStdin`` was called.
    :ivar list written: bytes written to the child's stdin.
    """

    _pids = itertools.count(1000)

    def __init__(self, protocol):
        self.pid = next(self._pids)
        self.protocol = protocol
        self.signals = []
        self.stdin_closed = False
        self.written = []
        self.ended = False

    def signalProcess(self, signalID):
        if self.ended:
            raise ProcessExitedAlready()
        self.signals.append(signalID)

    def closeStdin(self):
        self.stdin_closed = True

    def closeStdout(self):
        pass

    def closeStderr(self):
        pass

    def closeChildFD(self, descriptor):
        if descriptor == 0:
            self.stdin_closed = True

    def writeToChild(self, childFD, data):
        self.written.append(data)

    def loseConnection(self):
        self.closeStdin()

    def write(self, data):
        self.written.append(data)

    def writeSequence(self, data):
        self.written.extend(data)

    def getPeer(self):
        return None

    def getHost(self):
        return None


verifyClass(IProcessTransport, FakeProcessTransport)


@implementer(IReactorProcess)
class MemoryProcessReactor(MemoryReactorClock):
    """
    A ``MemoryReactorClock`` that records ``spawnProcess`` calls.

    :ivar list spawned: ``(protocol, executable, argv, env, childFDs,
        transport)`` tuples, in spawn order.  The protocol is connected to
        the transport at once, like the real reactor does.
    """

    def __init__(self):
        MemoryReactorClock.__init__(self)
        self.spawned = []

    def spawnProcess(self, processProtocol, executable, args=(), env=None, path=None,
                     uid=None, gid=None, usePTY=0, childFDs=None):
        transport = FakeProcessTransport(processProtocol)
        self.spawned.append((processProtocol, executable, list(args), env, childFDs,
                             transport))
        processProtocol.makeConnection(transport)
        return transport


verifyClass(IReactorProcess, MemoryProcessReactor)
