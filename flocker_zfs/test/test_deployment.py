"""
Tests for :mod:`flocker_zfs._deployment`: the desired deployment file.
"""

import os

import yaml
from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .._deployment import (
    MAX_DEPLOYMENT_BYTES, DesiredDataset, Deployment, NodeAddress, load_deployment,
    parse_deployment)
from ..errors import ConfigError
from .test_files import not_regular_files

A = "3f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f"
B = "4a2d3c6f-4e5b-4c8d-8f90-1b2c3d4e5f60"
C = "5b3e4d70-5f6c-4d9e-a0a1-2c3d4e5f6071"
D1 = "9a2b6f1c-3d4a-4b7c-9e8f-0a1b2c3d4e5f"
D2 = "8b1c5e2d-2c39-4a6b-8d7e-f90a1b2c3d4e"

VALID = """\
nodes:
  - uuid: %(A)s
    address: 10.0.0.1
  - uuid: %(B)s
    address: node-b.example
    ssh_port: 2222
datasets:
  - id: %(D1)s
    primary: %(A)s
    maximum_size: 1G
    replicas: [%(B)s]
  - id: %(D2)s
    primary: %(B)s
    deleted: true
""" % {"A": A, "B": B, "D1": D1, "D2": D2}


def nodes(*uuids):
    return [{"uuid": uuid, "address": "10.0.0.%d" % (i + 1,)}
            for i, uuid in enumerate(uuids)]


def document(datasets, node_uuids=(A, B)):
    return yaml.safe_dump({"nodes": nodes(*node_uuids), "datasets": datasets})


class ParseDeploymentTests(SynchronousTestCase):
    """
    Tests for :func:`parse_deployment` on valid files.
    """

    def test_valid(self):
        """
        A full file becomes the records it describes, with defaults filled in.
        """
        self.assertEqual(parse_deployment(VALID), Deployment(
            nodes={A: NodeAddress(uuid=A, address="10.0.0.1"),
                   B: NodeAddress(uuid=B, address="node-b.example", ssh_port=2222)},
            datasets={
                D1: DesiredDataset(dataset_id=D1, primary=A, maximum_size=1024 ** 3,
                                   replicas=[B]),
                D2: DesiredDataset(dataset_id=D2, primary=B, deleted=True)}))

    def test_empty(self):
        """
        An empty file (or empty lists) is an empty deployment.
        """
        for text in ("", "nodes: []\ndatasets: []\n", "nodes:\ndatasets:\n"):
            self.assertEqual(parse_deployment(text), Deployment(), text)

    def test_sizes(self):
        """
        Sizes are bytes, binary-suffixed strings (decimals too, when they
        come to whole bytes), or null for no limit.
        """
        cases = {1048576: 1048576, "512M": 512 * 1024 ** 2, "10G": 10 * 1024 ** 3,
                 "2T": 2 * 1024 ** 4, "1gib": 1024 ** 3, "3 MB": 3 * 1024 ** 2,
                 "2097152": 2097152, None: None, "1.5G": 3 * 512 * 1024 ** 2,
                 1073741824.0: 1024 ** 3, "1P": 1024 ** 5}
        for given_size, expected in cases.items():
            parsed = parse_deployment(document([{"id": D1, "primary": A,
                                                 "maximum_size": given_size}]))
            self.assertEqual(parsed.datasets[D1].maximum_size, expected, given_size)
            self.assertEqual(type(parsed.datasets[D1].maximum_size), type(expected))

    def test_primary_in_replicas(self):
        """
        The primary may be listed among the replicas (handy when moving a
        dataset by changing only ``primary``).
        """
        parsed = parse_deployment(document([{"id": D1, "primary": A, "replicas": [A, B]}]))
        self.assertEqual(parsed.datasets[D1].replicas, {A, B})

    def test_load(self):
        """
        ``load_deployment`` reads the file.
        """
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write(VALID)
        self.assertEqual(load_deployment(path), parse_deployment(VALID))


class DeploymentErrorTests(SynchronousTestCase):
    """
    Tests for the errors of :func:`parse_deployment` and
    :func:`load_deployment`: one :class:`ConfigError` naming the file, the key
    path and what was expected.
    """

    def error(self, text, source="deploy.yml"):
        with self.assertRaises(ConfigError) as caught:
            parse_deployment(text, source)
        return str(caught.exception)

    def assertMessage(self, text, *parts):
        message = self.error(text)
        self.assertTrue(message.startswith("deploy.yml"), message)
        for part in parts:
            self.assertIn(part, message)
        return message

    def test_malformed_yaml(self):
        """
        Malformed YAML is reported with its line and column.
        """
        self.assertMessage("nodes:\n  - uuid: [x\n",
                           "deploy.yml: malformed YAML at line 3, column 1: ")
        self.assertMessage("nodes: {\n", "deploy.yml: malformed YAML at line 2, column 1: ")

    def test_duplicate_keys(self):
        """
        A key given twice anywhere rejects the whole file (YAML would keep
        the last one silently), naming the file, the line and column of
        the repeat and of the first, and the key's path.
        """
        for text, where in [
                ("nodes:\n  - {uuid: %s, address: h}\n  - {uuid: %s, address: i}\n"
                 "datasets:\n  - {id: %s, primary: %s, primary: %s}\n" % (A, B, D1, A, B),
                 "line 5, column 95: duplicate key datasets[0].primary (first at line 5, "
                 "column 48)"),
                ("datasets: []\nnodes: []\ndatasets: []\n",
                 "line 3, column 1: duplicate key datasets (first at line 1, column 1)"),
                ("nodes:\n  - uuid: %s\n    address: h\n    address: i\n" % (A,),
                 "line 4, column 5: duplicate key nodes[0].address (first at line 3, "
                 "column 5)"),
                ("nodes: []\ndatasets:\n  - {id: %s, primary: %s}\n"
                 "  - {id: %s, primary: %s, deleted: true, deleted: false}\n" % (D2, A, D1, A),
                 "line 4, column 110: duplicate key datasets[1].deleted (first at line 4, "
                 "column 95)")]:
            message = self.error(text)
            self.assertEqual(message.split(". Fix: ")[0], "deploy.yml: " + where)
            self.assertIn("Keep one of them", message)

    def test_duplicate_keys_loaded(self):
        """
        ``load_deployment`` refuses them too, naming the file.
        """
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write("nodes: []\nnodes: []\n")
        with self.assertRaises(ConfigError) as caught:
            load_deployment(path)
        self.assertEqual(caught.exception.summary(), "%s: line 2, column 1: duplicate key "
                                                     "nodes (first at line 1, column 1)" % (path,))

    def test_impossible_date(self):
        """
        A value YAML reads as an impossible date is a ConfigError, not a crash.
        """
        self.assertMessage("nodes: 2001-02-30\n",
                           "line 1, column 8: cannot read '2001-02-30' as timestamp",
                           "day is out of range")

    def test_top_not_mapping(self):
        """
        The document must be a mapping.
        """
        self.assertMessage("- 1\n", "expected a mapping", "got a list")

    def test_unknown_top_key(self):
        """
        An unknown top-level key is named, with the known ones listed.
        """
        self.assertMessage("node: []\n", "deploy.yml: node: unknown key",
                           "known keys are: nodes, datasets")

    def test_unknown_dataset_key(self):
        """
        An unknown key inside a dataset is named with its path.
        """
        self.assertMessage(document([{"id": D1, "primary": A, "size": "1G"}]),
                           "datasets[0].size: unknown key",
                           "id, primary, maximum_size, deleted, replicas")

    def test_missing_key(self):
        """
        A missing required key is named.
        """
        self.assertMessage(document([{"id": D1}]), "datasets[0]: missing key 'primary'")
        self.assertMessage(yaml.safe_dump({"nodes": [{"uuid": A}]}),
                           "nodes[0]: missing key 'address'")

    def test_wrong_types(self):
        """
        A value of the wrong type names the key and the expected type.
        """
        self.assertMessage("nodes: {}\n", "nodes: expected a list of nodes, got a mapping")
        self.assertMessage(document([{"id": D1, "primary": A, "deleted": "yes please"}]),
                           "datasets[0].deleted: expected true or false, got a string")
        self.assertMessage(document([{"id": D1, "primary": A, "replicas": B}]),
                           "datasets[0].replicas: expected a list of node uuids")
        self.assertMessage(yaml.safe_dump({"nodes": [{"uuid": A, "address": 10}]}),
                           "nodes[0].address: expected a host name or IP address",
                           "got an integer")

    def test_bool_is_not_int(self):
        """
        ``true`` is not a port number nor a size.
        """
        self.assertMessage(yaml.safe_dump({"nodes": [{"uuid": A, "address": "h",
                                                      "ssh_port": True}]}),
                           "nodes[0].ssh_port: expected a TCP port number", "got a boolean")
        self.assertMessage(document([{"id": D1, "primary": A, "maximum_size": True}]),
                           "datasets[0].maximum_size: expected a size", "got a boolean")

    def test_values_in_yaml_spelling(self):
        """
        Values are quoted as they are written in YAML (true, false, null),
        not as Python writes them.
        """
        for value, shown in [(True, "a boolean (true)"), (False, "a boolean (false)"),
                             (None, "null"), ({"a": None}, "a mapping ({a: null})"),
                             (1.5, "a number (1.5)")]:
            message = self.assertMessage(
                document([{"id": D1, "primary": value}]),
                "datasets[0].primary: expected a node uuid (a lowercase UUID string), got %s"
                % (shown,))
            for python in ("True", "False", "None"):
                self.assertNotIn(python, message)
        self.assertMessage(yaml.safe_dump({"nodes": [{"uuid": True, "address": "h"}]}),
                           "nodes[0].uuid: expected a node uuid (a lowercase UUID string), "
                           "got a boolean (true)")
        self.assertMessage("nodes: []\ntrue: 1\n", "deploy.yml: true: unknown key")

    def test_bad_port(self):
        """
        A port out of range is refused.
        """
        self.assertMessage(yaml.safe_dump({"nodes": [{"uuid": A, "address": "h",
                                                      "ssh_port": 70000}]}),
                           "nodes[0].ssh_port: expected a TCP port 1-65535, got 70000")

    def test_bad_sizes(self):
        """
        Sizes below 1 MiB, not whole bytes, negative, too large, unparseable
        or of another type are refused, quoting the value.
        """
        for size, expected in [
                (1000, "invalid size 1000: below the minimum of 1M"),
                ("1K", "invalid size '1K': below the minimum of 1M"),
                (-5, "invalid size -5: not positive"),
                (0, "invalid size 0: not positive"),
                ("0.1M", "invalid size '0.1M': not a whole number of bytes"),
                (1.5, "invalid size 1.5: not a whole number of bytes"),
                ("big", "invalid size 'big': neither a number of bytes nor"),
                ("8192P", "invalid size '8192P': too large"),
                (2 ** 70, "invalid size 1180591620717411303424: too large"),
                (True, "expected a size: bytes (an integer), a string like '512M' or '10G', "
                       "or null, got a boolean (true)"),
                ([1, False, None], "expected a size: bytes (an integer), a string like '512M' "
                                   "or '10G', or null, got a list ([1, false, null])")]:
            self.assertMessage(document([{"id": D1, "primary": A, "maximum_size": size}]),
                               "datasets[0].maximum_size: " + expected)

    def test_bad_uuid(self):
        """
        Node uuids and dataset ids must be lowercase UUIDs.
        """
        self.assertMessage(document([{"id": D1.upper(), "primary": A}]),
                           "datasets[0].id: expected a dataset id")
        self.assertMessage(yaml.safe_dump({"nodes": [{"uuid": "node-1", "address": "h"}]}),
                           "nodes[0].uuid: expected a node uuid", "'node-1'")

    def test_bad_address(self):
        """
        An address that is no host name nor IP address is refused before it
        could reach an ssh command line.
        """
        self.assertMessage(yaml.safe_dump({"nodes": [{"uuid": A, "address": "-oProxy=x"}]}),
                           "nodes[0].address: invalid peer address")

    def test_duplicate_node(self):
        """
        A node uuid listed twice is refused.
        """
        self.assertMessage(document([], node_uuids=(A, B, A)),
                           "nodes[2].uuid: node %s is listed twice" % (A,))

    def test_duplicate_endpoint(self):
        """
        Two nodes at the same address and port are refused.
        """
        text = yaml.safe_dump({"nodes": [{"uuid": A, "address": "h"},
                                         {"uuid": B, "address": "h"}]})
        self.assertMessage(text, "nodes[1].address: h port 22 is already node %s" % (A,))

    def test_duplicate_endpoint_other_spelling(self):
        """
        Two spellings of one address (IPv6 forms, an IPv4-mapped address,
        host names in another case) at the same port are one node.
        """
        for first, second in [("::1", "0:0::1"), ("HostA", "hosta"),
                              ("10.0.0.1", "::ffff:10.0.0.1"),
                              ("node-b.example", "NODE-B.example")]:
            text = yaml.safe_dump({"nodes": [{"uuid": A, "address": first},
                                             {"uuid": B, "address": second}]})
            self.assertMessage(text, "nodes[1].address: %s port 22 is already node %s (as %s)"
                               % (second, A, first))

    def test_same_address_other_port(self):
        """
        One address at two ports is two nodes.
        """
        text = yaml.safe_dump({"nodes": [{"uuid": A, "address": "::1"},
                                         {"uuid": B, "address": "0:0::1", "ssh_port": 2222}]})
        self.assertEqual(set(parse_deployment(text).nodes), {A, B})

    def test_duplicate_dataset(self):
        """
        A dataset id listed twice is refused.
        """
        self.assertMessage(document([{"id": D1, "primary": A}, {"id": D1, "primary": B}]),
                           "datasets[1].id: dataset %s is listed twice" % (D1,))

    def test_unknown_primary(self):
        """
        The primary must be one of the nodes.
        """
        self.assertMessage(document([{"id": D2, "primary": A}, {"id": D1, "primary": C}]),
                           "datasets[1].primary: node %s is not listed under nodes" % (C,))

    def test_unknown_replica(self):
        """
        Every replica must be one of the nodes.
        """
        self.assertMessage(document([{"id": D1, "primary": A, "replicas": [B, C]}]),
                           "datasets[0].replicas[1]: node %s is not listed" % (C,))

    def test_fix(self):
        """
        Every error says how to fix it.
        """
        with self.assertRaises(ConfigError) as caught:
            parse_deployment("node: []\n")
        self.assertIn("docs/deployer.rst", caught.exception.fix)

    def test_missing_file(self):
        """
        A missing file names the path and the reason (as the agent does).
        """
        path = os.path.abspath(self.mktemp())
        with self.assertRaises(ConfigError) as caught:
            load_deployment(path)
        self.assertEqual((caught.exception.summary(), caught.exception.fix), (
            "cannot read deployment file %s: no such file" % (path,),
            "Check the path, or write the file (docs/deployer.rst describes it)."))

    def test_not_utf8(self):
        """
        A file that is not UTF-8 is refused with its name.
        """
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.write(b"nodes: [\xff]\n")
        with self.assertRaises(ConfigError) as caught:
            load_deployment(path)
        self.assertIn("%s: not UTF-8" % (path,), str(caught.exception))

    def test_not_a_file(self):
        """
        A device (``/dev/zero`` would never end), a named pipe or a directory
        is refused without being read.
        """
        for path, kind in not_regular_files(self):
            with self.assertRaises(ConfigError) as caught:
                load_deployment(path)
            self.assertEqual(caught.exception.summary(),
                             "deployment file %s is not a regular file but %s" % (path, kind))
            self.assertIn("deployment YAML file", caught.exception.fix)

    def test_too_large(self):
        """
        A file over 16 MiB (the agent's limit too) is refused unread.
        """
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.truncate(MAX_DEPLOYMENT_BYTES + 1)
        with self.assertRaises(ConfigError) as caught:
            load_deployment(path)
        self.assertEqual(caught.exception.summary(),
                         "deployment file %s is larger than 16777216 bytes (16M), more "
                         "than such a file ever holds" % (path,))

    def test_errors_name_the_file(self):
        """
        ``load_deployment`` errors name the file they are about.
        """
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write("datasets: 3\n")
        with self.assertRaises(ConfigError) as caught:
            load_deployment(path)
        self.assertTrue(str(caught.exception).startswith(path + ": datasets: expected a list"))


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=10), st.sampled_from([A, B, D1, "1G", "512M"]))
_keys = st.sampled_from(["nodes", "datasets", "uuid", "address", "ssh_port", "id",
                         "primary", "maximum_size", "deleted", "replicas", "x"])
_documents = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(_keys, children, max_size=5)),
    max_leaves=20)


class GarbageTests(SynchronousTestCase):
    """
    Whatever the input, ``parse_deployment`` returns a :class:`Deployment`
    or raises :class:`ConfigError`, never anything else.
    """

    def check(self, text):
        try:
            result = parse_deployment(text, "g.yml")
        except ConfigError as error:
            self.assertTrue(str(error).startswith("g.yml"), str(error))
        else:
            self.assertIsInstance(result, Deployment)

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=200))
    def test_text(self, text):
        """
        Arbitrary text.
        """
        self.check(text)

    @settings(max_examples=300, deadline=None)
    @given(_documents)
    def test_structures(self, value):
        """
        Arbitrary YAML structures made of the file's own keys.
        """
        self.check(yaml.safe_dump(value))

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(["nodes", "datasets"]), st.integers(0, 1),
           st.sampled_from(["uuid", "address", "ssh_port", "id", "primary", "maximum_size",
                            "deleted", "replicas"]), _documents)
    def test_one_value_replaced(self, section, index, key, value):
        """
        A valid file with one value replaced by garbage.
        """
        parsed = yaml.safe_load(VALID)
        entry = parsed[section][index]
        if key in entry or key in ("ssh_port", "maximum_size", "deleted", "replicas"):
            entry[key] = value
        self.check(yaml.safe_dump(parsed))


class DocumentationTests(SynchronousTestCase):
    """
    The example in docs/deployer.rst is a valid deployment.
    """

    def test_example_parses(self):
        """
        The documented example parses into the nodes and datasets it shows.
        """
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "docs", "deployer.rst")
        if not os.path.exists(path):
            raise SkipTest("docs/ is not next to the package (installed elsewhere)")
        with open(path) as handle:
            text = handle.read()
        start = text.index("Read with PyYAML")
        block = text[start:text.index("``nodes`` (a list", start)].splitlines()[2:]
        parsed = parse_deployment("\n".join(line[4:] for line in block))
        self.assertEqual((len(parsed.nodes), len(parsed.datasets)), (2, 2))
        self.assertEqual(parsed.datasets[D1].maximum_size, 10 * 1024 ** 3)
        self.assertTrue(parsed.datasets[D2].deleted)
