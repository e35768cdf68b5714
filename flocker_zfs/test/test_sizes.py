"""
Tests for :mod:`flocker_zfs._sizes`: reading and writing sizes.
"""

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from .._sizes import MAXIMUM_SIZE, UNITS, InvalidSize, format_size, human_size, parse_size
from ..errors import ConfigError

K, M, G, T, P = (1 << 10), (1 << 20), (1 << 30), (1 << 40), (1 << 50)

sizes = st.integers(min_value=1, max_value=MAXIMUM_SIZE)


class ParseSizeTests(SynchronousTestCase):
    """
    Tests for :func:`parse_size`.
    """

    def test_forms(self):
        """
        Bytes (as a number or digits), binary units in either case with an
        optional ``B``/``iB``, decimals that come to whole bytes, and whole
        floats.
        """
        cases = {
            1: 1, 1073741824: G, "1073741824": G, "512": 512, "512B": 512, "512b": 512,
            "512M": 512 * M, "512m": 512 * M, "10G": 10 * G, "10GB": 10 * G, "10GiB": 10 * G,
            "10gib": 10 * G, "2k": 2 * K, "1.5G": 3 * 512 * M, "1.0KB": K, "0.5K": 512,
            "3 MB": 3 * M, " 10G\n": 10 * G, "2T": 2 * T, "1P": P, "+4K": 4 * K,
            1048576.0: M, "8191P": 8191 * P, "0001K": K,
        }
        for value, expected in cases.items():
            self.assertEqual(parse_size(value), expected, repr(value))

    def test_not_sizes(self):
        """
        Anything else is refused with :class:`InvalidSize` (a
        :class:`ConfigError`), saying what a size looks like.
        """
        for value in ["", " ", "lots", "G", "B", "iB", "10iB", "1.5.0G", ".5G", "5.G",
                      "infG", "nanT", "1e3", "1e3K", "10 G B", "10X", "0x10", "1_000",
                      "\u0663K", "\u00b2", "10GG", "--5", "1" * 41, None, True, False,
                      [1], b"10G", float("inf"), float("nan")]:
            with self.assertRaises(InvalidSize, msg=repr(value)) as caught:
                parse_size(value)
            self.assertIn("neither a number of bytes nor a number with a unit K, M, G, T or P",
                          caught.exception.summary())
            self.assertIn("512M", caught.exception.fix)
            self.assertIsInstance(caught.exception, ConfigError)

    def test_not_whole(self):
        """
        A size that is not a whole number of bytes is refused.
        """
        for value in ["1.5", "0.1K", "1.0000000001G", 1.5, 0.25]:
            self.assertRaises(InvalidSize, parse_size, value)
            with self.assertRaises(InvalidSize) as caught:
                parse_size(value)
            self.assertIn("not a whole number of bytes", str(caught.exception))

    def test_not_positive(self):
        """
        Zero and negative sizes are refused, whatever their form.
        """
        for value in [0, -1, "0", "0K", "-5", "-1G", 0.0, -2.0, "0.0M"]:
            with self.assertRaises(InvalidSize, msg=repr(value)) as caught:
                parse_size(value)
            self.assertIn("not positive", str(caught.exception))

    def test_minimum(self):
        """
        A size below the caller's minimum is refused, naming the minimum.
        """
        self.assertEqual(parse_size("64M", minimum=64 * M), 64 * M)
        with self.assertRaises(InvalidSize) as caught:
            parse_size("10M", minimum=64 * M)
        self.assertEqual(caught.exception.summary(),
                         "invalid size '10M': below the minimum of 64M")

    def test_maximum(self):
        """
        Sizes up to 2**63 - 1 bytes are accepted; larger ones, however
        large, are refused.
        """
        self.assertEqual(parse_size(MAXIMUM_SIZE), MAXIMUM_SIZE)
        for value in [MAXIMUM_SIZE + 1, "8192P", "9" * 40, 1e300, 10 ** 5000]:
            with self.assertRaises(InvalidSize) as caught:
                parse_size(value)
            self.assertIn("too large", str(caught.exception))

    @given(st.one_of(st.text(max_size=50), st.integers(), st.floats(), st.booleans(),
                     st.none(), st.binary(max_size=10)))
    def test_anything(self, value):
        """
        Whatever the value, the result is a size from 1 to the maximum, or
        :class:`InvalidSize`.
        """
        try:
            size = parse_size(value)
        except InvalidSize:
            return
        self.assertEqual(type(size), int)
        self.assertTrue(1 <= size <= MAXIMUM_SIZE, size)

    @given(st.integers(min_value=1, max_value=8191), st.sampled_from(UNITS),
           st.sampled_from(["", "B", "iB", "b", "ib"]), st.booleans())
    def test_units(self, number, unit, suffix, lower):
        """
        ``<number><unit>`` is number times the unit, in any spelling.
        """
        letter, scale = unit
        text = "%d%s%s" % (number, letter.lower() if lower else letter, suffix)
        self.assertEqual(parse_size(text), number * scale)


class FormatSizeTests(SynchronousTestCase):
    """
    Tests for :func:`format_size` and :func:`human_size`.
    """

    def test_examples(self):
        """
        The largest unit that needs at most three decimals, else bytes.
        """
        cases = {1: "1", 1000: "1000", 1023: "1023", K: "1K", 1536: "1.5K", M: "1M",
                 64 * M: "64M", 10 * G: "10G", 3 * 512 * M: "1.5G", 1025: "1025",
                 G + 128 * M: "1.125G", G + M: "1025M", 8191 * P: "8191P", 2 * P: "2P",
                 MAXIMUM_SIZE: str(MAXIMUM_SIZE)}
        for size, expected in cases.items():
            self.assertEqual(format_size(size), expected, size)

    @given(sizes)
    def test_round_trip(self, size):
        """
        :func:`parse_size` reads back exactly what :func:`format_size`
        writes.
        """
        self.assertEqual(parse_size(format_size(size)), size)

    @given(sizes)
    def test_bytes_round_trip(self, size):
        """
        Plain bytes, as a number or digits, read back unchanged.
        """
        self.assertEqual((parse_size(size), parse_size(str(size))), (size, size))

    def test_human_examples(self):
        """
        One decimal of the largest unit reached; bytes below 1K.
        """
        self.assertEqual([human_size(v) for v in (0, 512, 1023, 1024, 64 * M, 3 << 39, 5 * P)],
                         ["0B", "512B", "1023B", "1.0K", "64.0M", "1.5T", "5.0P"])

    @given(sizes)
    def test_human_close(self, size):
        """
        :func:`human_size` is within half a tenth of its unit of the size.
        """
        text = human_size(size)
        if text.endswith("B"):
            self.assertEqual(int(text[:-1]), size)
            return
        scale = dict(UNITS)[text[-1]]
        self.assertLessEqual(abs(float(text[:-1]) * scale - size), 0.05 * scale + 1)
