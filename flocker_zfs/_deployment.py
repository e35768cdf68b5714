# test-case-name: flocker_zfs.test.test_deployment
"""
The desired deployment of the reference agent: which nodes exist, where
each dataset should be writable, its maximum size, which nodes should hold a
read-only replica and which datasets should be deleted.

It is a YAML file (read with ``safe_load``)::

    nodes:
      - uuid: 3f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f
        address: 10.0.0.1
        ssh_port: 22              # optional, default 22
    datasets:
      - id: 9a2b6f1c-3d4a-4b7c-9e8f-0a1b2c3d4e5f
        primary: 3f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f
        maximum_size: 1G          # optional: bytes, "512M", "1.5G", or null
        deleted: false            # optional
        replicas: []              # optional: node uuids

Parsing is pure: :func:`parse_deployment` turns text into immutable records
or raises one :class:`~flocker_zfs.errors.ConfigError` naming the file, the
path of the key (``datasets[2].primary``) and what was expected.
"""

import yaml
from pyrsistent import PClass, field, pmap_field, pset_field

from ._backend import MINIMUM_SIZE
from ._files import read_bounded
from ._sizes import InvalidSize, parse_size
from ._ssh import canonical_host, validate_host
from ._yamlsource import NOTHING, decode_text, load_yaml
from .errors import ConfigError, InvalidName
from .names import is_dataset_id, shown

_FORMAT = "docs/deployer.rst describes it"
_FIX = "Correct the deployment file (see docs/deployer.rst for its format) and try again."

#: The largest deployment file read (as the agent's own limit): thousands of
#: datasets fit; a bigger file is the wrong one.
MAX_DEPLOYMENT_BYTES = 16 * 1024 * 1024


class NodeAddress(PClass):
    """
    One node of the deployment and how its peers reach it over SSH.

    :ivar str uuid: the node's identity (its ``node.json``).
    :ivar str address: host name or IP address.
    :ivar int ssh_port: its sshd's port.
    """

    uuid = field(type=str, mandatory=True,
                 invariant=lambda v: (is_dataset_id(v), "uuid must be a lowercase UUID"))
    address = field(type=str, mandatory=True)
    ssh_port = field(type=int, initial=22,
                     invariant=lambda v: (0 < v < 65536, "ssh_port must be 1-65535"))


class DesiredDataset(PClass):
    """
    What the deployment wants for one dataset.

    :ivar str dataset_id: a lowercase UUID.
    :ivar str primary: the node uuid where it should be writable.
    :ivar maximum_size: bytes, or ``None`` for no limit.
    :ivar bool deleted: every node should destroy its copy.
    :ivar replicas: node uuids that should hold a read-only replica (the
        primary, if named, is ignored).
    """

    dataset_id = field(type=str, mandatory=True,
                       invariant=lambda v: (is_dataset_id(v), "dataset_id must be a UUID"))
    primary = field(type=str, mandatory=True)
    maximum_size = field(type=(int, type(None)), initial=None)
    deleted = field(type=bool, initial=False)
    replicas = pset_field(str)


class Deployment(PClass):
    """
    The whole desired deployment.

    :ivar nodes: ``node uuid -> NodeAddress``.
    :ivar datasets: ``dataset id -> DesiredDataset``.
    """

    nodes = pmap_field(str, NodeAddress)
    datasets = pmap_field(str, DesiredDataset)

    def __invariant__(self):
        bad = [k for k, v in self.nodes.items() if k != v.uuid]
        bad += [k for k, v in self.datasets.items() if k != v.dataset_id]
        return (not bad, "keys must equal the records' ids: %r" % (bad,))


# -- parsing -------------------------------------------------------------------

class _Invalid(Exception):
    """One problem at one key path (turned into a ConfigError by the caller)."""

    def __init__(self, path, message):
        Exception.__init__(self, path, message)
        self.path = path
        self.message = message


def _type_name(value):
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a mapping", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _shown(value, limit=80):
    """
    :return: ``value`` as it is written in YAML (``true``, ``null``,
        ``[1, false]``), strings quoted, cut to ``limit`` characters, for
        quoting it in a message about the file.
    """
    if isinstance(value, str):
        return shown(value, limit)
    try:
        text = yaml.safe_dump(value, default_flow_style=True, width=2 ** 16)
    except yaml.YAMLError:
        return shown(value, limit)
    text = " ".join(text.replace("\n...\n", "").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _expect(path, value, kinds, expected):
    """
    :raises _Invalid: ``value`` is not of ``kinds`` (a bool is never an int).
    """
    if isinstance(value, bool) and bool not in kinds:
        raise _Invalid(path, "expected %s, got a boolean (%s)" % (expected, _shown(value)))
    if value is None and type(None) not in kinds:
        raise _Invalid(path, "expected %s, got null" % (expected,))
    if not isinstance(value, kinds):
        raise _Invalid(path, "expected %s, got %s (%s)" % (expected, _type_name(value),
                                                           _shown(value)))
    return value


def _mapping(path, value, known, required, what):
    """
    Check ``value`` is a mapping with only ``known`` keys and all of
    ``required``.
    """
    _expect(path, value, (dict,), "a mapping (%s)" % (what,))
    unknown = sorted(_shown(k) if not isinstance(k, str) else k
                     for k in value if k not in known)
    if unknown:
        where = "%s." % (path,) if path else ""
        raise _Invalid("%s%s" % (where, unknown[0]),
                       "unknown key; the known keys are: %s" % (", ".join(known),))
    for key in required:
        if key not in value:
            raise _Invalid(path or "(top level)",
                           "missing key %r (%s)" % (key, what))
    return value


def _uuid(path, value, what):
    _expect(path, value, (str,), "%s (a lowercase UUID string)" % (what,))
    if not is_dataset_id(value):
        raise _Invalid(path, "expected %s (a lowercase UUID such as "
                             "'3f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f'), got %s"
                       % (what, _shown(value)))
    return value


def _maximum_size(path, value):
    """
    :param value: ``None`` for no limit, or a size
        (:func:`~flocker_zfs._sizes.parse_size`: bytes, or a string such as
        ``"512M"``, ``"1.5G"``, ``"10GiB"``).
    :return: bytes (at least 1 MiB) or ``None``.
    :raises _Invalid: anything else.
    """
    if value is None:
        return None
    _expect(path, value, (int, float, str),
            "a size: bytes (an integer), a string like '512M' or '10G', or null")
    try:
        return parse_size(value, minimum=MINIMUM_SIZE)
    except InvalidSize as error:
        raise _Invalid(path, error.summary())


_NODE_KEYS = ("uuid", "address", "ssh_port")
_DATASET_KEYS = ("id", "primary", "maximum_size", "deleted", "replicas")
_TOP_KEYS = ("nodes", "datasets")


def _list(path, value, what):
    if value is None:
        return []
    return _expect(path, value, (list,), "a list of %s" % (what,))


def _node(path, value):
    _mapping(path, value, _NODE_KEYS, ("uuid", "address"), "a node: uuid, address")
    uuid = _uuid(path + ".uuid", value["uuid"], "a node uuid")
    address = _expect(path + ".address", value["address"], (str,),
                      "a host name or IP address (a string)")
    try:
        validate_host(address)
    except InvalidName as error:
        raise _Invalid(path + ".address", error.summary())
    port = value.get("ssh_port", 22)
    _expect(path + ".ssh_port", port, (int,), "a TCP port number (an integer)")
    if not 0 < port < 65536:
        raise _Invalid(path + ".ssh_port", "expected a TCP port 1-65535, got %d" % (port,))
    return NodeAddress(uuid=uuid, address=address, ssh_port=port)


def _dataset(path, value, nodes):
    _mapping(path, value, _DATASET_KEYS, ("id", "primary"), "a dataset: id, primary")
    dataset_id = _uuid(path + ".id", value["id"], "a dataset id")

    def known(where, uuid):
        _uuid(where, uuid, "a node uuid")
        if uuid not in nodes:
            raise _Invalid(where, "node %s is not listed under nodes" % (uuid,))
        return uuid

    primary = known(path + ".primary", value["primary"])
    replicas = set()
    for i, replica in enumerate(_list(path + ".replicas", value.get("replicas"),
                                      "node uuids")):
        replicas.add(known("%s.replicas[%d]" % (path, i), replica))
    deleted = _expect(path + ".deleted", value.get("deleted", False), (bool,),
                      "true or false")
    return DesiredDataset(
        dataset_id=dataset_id, primary=primary, deleted=deleted, replicas=replicas,
        maximum_size=_maximum_size(path + ".maximum_size", value.get("maximum_size")))


def _deployment(document):
    if document is None:
        document = {}
    _mapping("", document, _TOP_KEYS, (), "the deployment: nodes, datasets")
    nodes, addresses = {}, {}
    for i, value in enumerate(_list("nodes", document.get("nodes"), "nodes")):
        path = "nodes[%d]" % (i,)
        node = _node(path, value)
        if node.uuid in nodes:
            raise _Invalid(path + ".uuid", "node %s is listed twice" % (node.uuid,))
        # Compared in canonical form: "0:0::1" is "::1", "HostA" is "hosta".
        endpoint = (canonical_host(node.address), node.ssh_port)
        if endpoint in addresses:
            first = nodes[addresses[endpoint]]
            raise _Invalid(path + ".address", "%s port %d is already node %s%s"
                           % (node.address, node.ssh_port, first.uuid,
                              "" if first.address == node.address
                              else " (as %s)" % (first.address,)))
        nodes[node.uuid] = node
        addresses[endpoint] = node.uuid
    datasets = {}
    for i, value in enumerate(_list("datasets", document.get("datasets"), "datasets")):
        path = "datasets[%d]" % (i,)
        dataset = _dataset(path, value, nodes)
        if dataset.dataset_id in datasets:
            raise _Invalid(path + ".id", "dataset %s is listed twice" % (dataset.dataset_id,))
        datasets[dataset.dataset_id] = dataset
    return Deployment(nodes=nodes, datasets=datasets)


def _load_yaml(text, source):
    """
    :return: the document (``None`` for an empty one).
    :raises ConfigError: malformed YAML, a value the safe loader cannot
        build, or a key repeated in any mapping (YAML would silently keep
        the last: the whole file is refused), naming line and column.
    """
    document = load_yaml(text, source, format_fix="docs/deployer.rst describes the format.")
    return None if document is NOTHING else document


def parse_deployment(text, source="<string>"):
    """
    Parse and validate a deployment file's text.

    :param str text: the YAML.
    :param str source: where it came from, for messages.
    :return: a :class:`Deployment`.
    :raises ConfigError: naming ``source``, the key path and the problem;
        for malformed YAML and repeated keys, the line and column too.
    """
    document = _load_yaml(text, source)
    try:
        return _deployment(document)
    except _Invalid as error:
        where = ": %s" % (error.path,) if error.path else ""
        raise ConfigError("%s%s: %s" % (source, where, error.message), fix=_FIX)


def load_deployment(path):
    """
    Read and parse the deployment file at ``path``.

    :return: a :class:`Deployment`.
    :raises ConfigError: the file cannot be read, is not a regular file, is
        larger than :data:`MAX_DEPLOYMENT_BYTES`, or is invalid.
    """
    data = read_bounded(path, MAX_DEPLOYMENT_BYTES, "deployment file",
                        fix="Give the path of the deployment YAML file (%s)." % (_FORMAT,),
                        missing_fix="Check the path, or write the file (%s)." % (_FORMAT,))
    return parse_deployment(decode_text(data, path), source=path)
