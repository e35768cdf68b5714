"""
Tests for :mod:`flocker_zfs._protocol`.
"""

import shlex
import uuid

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from .._protocol import (
    DATASETS, MAX_RESPONSE, PROTOCOL_VERSION, VERBS, ProtocolError, RemoteError,
    ResponseTooLarge, decode_response,
    encode_error, encode_ok, is_unknown_verb, parse_request, request)
from ..errors import NotManaged

ID = str(uuid.uuid4())


class RequestTests(SynchronousTestCase):
    """
    Tests for building and parsing requests.
    """

    def test_round_trip(self):
        """
        A built request parses back to its verb and typed arguments.
        """
        argv = request("receive", ID, "full", "flocker-1", 123, ID, 2, 1048576)
        self.assertEqual(parse_request(shlex.join(argv)),
                         ("receive", [ID, "full", "flocker-1", 123, ID, 2, 1048576]))

    def test_optional_size(self):
        """
        ``receive`` may leave out the trailing maximum size; ``none`` means
        no limit.
        """
        self.assertEqual(len(parse_request(shlex.join(
            request("receive", ID, 5, "s", 6, ID, 1)))[1]), 6)
        self.assertIsNone(parse_request(shlex.join(
            request("receive", ID, 5, "s", 6, ID, 1, "none")))[1][6])

    def test_refused(self):
        """
        Anything but a well-formed request is a ``ProtocolError``.
        """
        for text in ["", "   ", "zfs destroy -r flocker", "flocker-zfs peer",
                     "flocker-zfs peer nope", "flocker-zfs peer state",
                     "flocker-zfs peer state %s extra" % (ID,),
                     "flocker-zfs peer state ../../tank", "flocker-zfs peer state '%s" % (ID,),
                     "flocker-zfs peer acquire %s 1 1 %s; reboot" % (ID, ID),
                     "flocker-zfs peer receive %s full -r 1 %s 1" % (ID, ID),
                     "flocker-zfs peer receive %s full s 1 %s 1 0" % (ID, ID),
                     "flocker-zfs peer state " + "x" * 1000]:
            self.assertRaises(ProtocolError, parse_request, text)

    @given(st.text(max_size=200))
    def test_arbitrary_text(self, text):
        """
        Arbitrary text parses to a known verb or raises ``ProtocolError``.
        """
        try:
            verb, _ = parse_request(text)
        except ProtocolError:
            return
        self.assertIn(verb, VERBS)

    def test_datasets(self):
        """
        ``datasets`` takes no argument: anything after it is refused.
        """
        self.assertEqual(parse_request(shlex.join(request(DATASETS))), (DATASETS, []))
        for text in ["flocker-zfs peer datasets %s" % (ID,), "flocker-zfs peer datasets all",
                     "flocker-zfs peer datasets ''"]:
            self.assertRaises(ProtocolError, parse_request, text)
        self.assertRaises(ProtocolError, request, DATASETS, ID)

    def test_verbs(self):
        """
        The verbs of this version, as ``hello`` lists them; adding
        ``datasets`` is a compatible addition, so the protocol version is
        still 1.
        """
        self.assertEqual(VERBS, ("abort-receive", "acquire", "datasets", "hello", "receive",
                                 "state"))
        self.assertEqual(PROTOCOL_VERSION, 1)


class ResponseTests(SynchronousTestCase):
    """
    Tests for encoding and decoding responses.
    """

    def test_ok(self):
        """
        A success response decodes to its fields.
        """
        self.assertEqual(decode_response("p", encode_ok(a=1))["a"], 1)

    def test_error(self):
        """
        An error response becomes a ``RemoteError`` with the peer's error
        name, message and fix.
        """
        with self.assertRaises(RemoteError) as caught:
            decode_response("p", encode_error(NotManaged("dataset x is not ours")))
        self.assertEqual(caught.exception.name, "NotManaged")
        self.assertIn("peer p: dataset x is not ours", str(caught.exception))

    def test_unknown_verb(self):
        """
        An older server's refusal of a verb it does not know is recognised
        as such, and only for that verb; other refusals are not.
        """
        with self.assertRaises(ProtocolError) as caught:
            parse_request("flocker-zfs peer frobnicate")
        refusal = self.refusal(caught.exception)
        self.assertTrue(is_unknown_verb(refusal, "frobnicate"))
        self.assertFalse(is_unknown_verb(refusal, "hello"))
        self.assertFalse(is_unknown_verb(self.refusal(ProtocolError(
            "peer request state takes 1 arguments, got 0")), "state"))
        self.assertFalse(is_unknown_verb(self.refusal(NotManaged(
            "unknown peer request 'frobnicate'")), "frobnicate"))
        self.assertFalse(is_unknown_verb(caught.exception, "frobnicate"))

    def refusal(self, error):
        """The ``RemoteError`` a client gets when a server answers ``error``."""
        try:
            decode_response("p", encode_error(error))
        except RemoteError as remote:
            return remote
        self.fail("not an error response")

    def test_too_large(self):
        """
        Output longer than ``MAX_RESPONSE`` is refused without being decoded,
        naming the peer and the limit; exactly ``MAX_RESPONSE`` is decoded.
        """
        pad = "x" * (MAX_RESPONSE - len(encode_ok(pad="")))
        self.assertEqual(decode_response("p", encode_ok(pad=pad))["pad"], pad)
        with self.assertRaises(ResponseTooLarge) as caught:
            decode_response("node-b:2222", encode_ok(pad=pad + "x"))
        self.assertIsInstance(caught.exception, ProtocolError)
        self.assertIn("peer node-b:2222 sent more than 16 MiB (16777216 bytes)",
                      str(caught.exception))

    def test_garbage(self):
        """
        Output that is not a response is a ``ProtocolError``.
        """
        for stdout in [b"", b"hello\n", b"[1]\n", b'{"ok": 1}\n', b"\xff\n"]:
            self.assertRaises(ProtocolError, decode_response, "p", stdout)
