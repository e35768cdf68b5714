"""
Tests for :mod:`flocker_zfs._yamlsource`, on its own: decoding a file and
loading its YAML with positions in every message.  (Reading the file is
tested in ``test_files``; how ``agent.yml`` uses all this in
``test_config``.)
"""

from pyrsistent import PMap, PVector
from twisted.trial.unittest import SynchronousTestCase

from .._yamlsource import NOTHING, decode_text, freeze, kind_of, load_yaml, shown
from ..errors import ConfigError

SOURCE = "/etc/flocker/deployment.yml"


class DecodeTextTests(SynchronousTestCase):
    """
    :func:`decode_text` decodes UTF-8 and names a bad byte's position.
    """

    def test_decode(self):
        """
        UTF-8, with or without a byte order mark, is decoded.
        """
        self.assertEqual(decode_text(b"\xef\xbb\xbfa: \xc3\xa9\n", SOURCE), "a: \u00e9\n")

    def test_bad_byte(self):
        """
        A byte that is not UTF-8 is named with its line and column.
        """
        with self.assertRaises(ConfigError) as caught:
            decode_text(b"a: 1\nb: \xc3\xa9\xff\n", SOURCE)
        self.assertEqual((caught.exception.summary(), caught.exception.fix),
                         (SOURCE + ": not UTF-8 text (byte 0xff at line 2, column 5)",
                          "Save the file as UTF-8."))


class LoadYAMLTests(SynchronousTestCase):
    """
    :func:`load_yaml` loads one document with the safe loader; every
    problem is one line naming the source and the position.
    """

    def assertLoadError(self, text, *parts, **kwargs):
        with self.assertRaises(ConfigError) as caught:
            load_yaml(text, SOURCE, **kwargs)
        message = str(caught.exception)
        self.assertTrue(message.startswith(SOURCE + ": "), message)
        self.assertNotIn("\n", message)
        for part in parts:
            self.assertIn(part, message)
        return caught.exception

    def test_document(self):
        """
        A document is returned as plain values; no document is
        :data:`NOTHING`.
        """
        self.assertEqual(load_yaml("nodes: [{uuid: a}]\n", SOURCE), {"nodes": [{"uuid": "a"}]})
        self.assertIs(load_yaml("# only a comment\n", SOURCE), NOTHING)

    def test_duplicates_anywhere(self):
        """
        By default a key repeated in any mapping, however deep in lists (or
        in a key that is a mapping), is refused with its path and both
        positions.
        """
        self.assertLoadError("datasets:\n  - id: a\n    id: b\n", "line 3, column 5",
                             "duplicate key datasets[0].id", "first at line 2, column 5")
        self.assertLoadError("? {a: 1, a: 2}\n: x\n", "line 1, column 10",
                             "duplicate key ?.a", "first at line 1, column 4")

    def test_duplicates_chosen(self):
        """
        ``unique`` chooses which mappings are checked (here none).
        """
        self.assertEqual(load_yaml("a: 1\na: 2\n", SOURCE, unique=lambda root: []), {"a": 2})

    def test_merge_keys(self):
        """
        Merge keys may repeat.
        """
        text = "base: &b {x: 1}\nother: &c {y: 2}\nboth: {<<: *b, <<: *c}\n"
        self.assertEqual(load_yaml(text, SOURCE)["both"], {"x": 1, "y": 2})

    def test_malformed(self):
        """
        Malformed YAML names line and column; the format fix is added.
        """
        error = self.assertLoadError("nodes: [\n", "malformed YAML at line 2, column 1",
                                     format_fix="See docs/deployer.rst.")
        self.assertIn("See docs/deployer.rst.", error.fix)

    def test_unbuildable_value(self):
        """
        A value of a safe tag that cannot be built names its position.
        """
        self.assertLoadError("when: 2001-13-45\n", "line 1, column 7", "cannot read",
                             "timestamp")

    def test_escape_out_of_range(self):
        """
        A double-quoted escape naming no character (which PyYAML's scanner
        lets through to ``chr``) is malformed YAML at its position.
        """
        for escape in ["\\UFFFFFFFF", "\\U99999999"]:
            self.assertLoadError('a: 1\nb: "x%s"\n' % (escape,),
                                 "malformed YAML at line 2", "escape sequence out of range")

    def test_unsafe_tag(self):
        """
        Python tags are refused.
        """
        self.assertLoadError("x: !!python/object/apply:os.system ['true']\n",
                             "malformed YAML at line 1")


class FreezeTests(SynchronousTestCase):
    """
    :func:`freeze` makes a loaded document immutable.
    """

    def test_frozen(self):
        """
        Mappings become pmaps and lists pvectors, all the way down.
        """
        frozen = freeze({"a": [{"b": [1]}]}, SOURCE)
        self.assertIsInstance(frozen, PMap)
        self.assertIsInstance(frozen["a"], PVector)
        self.assertIsInstance(frozen["a"][0]["b"], PVector)

    def test_recursive(self):
        """
        A document containing itself through an alias is refused.
        """
        document = load_yaml("a: &x [*x]\n", SOURCE)
        with self.assertRaises(ConfigError) as caught:
            freeze(document, SOURCE)
        self.assertIn("contains itself through an alias", str(caught.exception))


class ShownTests(SynchronousTestCase):
    """
    Values in messages.
    """

    def test_shown(self):
        """
        YAML spelling for scalars; a huge integer is described, not printed.
        """
        self.assertEqual([shown(None), shown(True), shown("a\nb"), shown(10 ** 5000)],
                         ["null", "true", "'a\\nb'", "<integer of 16610 bits>"])

    def test_kind_of(self):
        """
        Kinds in YAML's words.
        """
        self.assertEqual([kind_of(None), kind_of(True), kind_of(1), kind_of([]), kind_of({})],
                         ["null", "a boolean", "an integer", "a list", "a mapping"])
