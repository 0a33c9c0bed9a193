import hl7

from gateway_app.acks import AckCode, acknowledge, reject_unreadable

MESSAGE = "MSH|^~\\&|MON|ICU1|VIGIL|HOSP|20261202120000||ORU^R01^ORU_R01|abc123|P|2.6\rPID|||42"


def test_an_accept_names_the_message_it_answers():
    ack = acknowledge(hl7.parse(MESSAGE), AckCode.ACCEPT, "HOSP")
    assert str(ack.segment("MSA")(1)) == "AA"
    assert str(ack.segment("MSA")(2)) == "abc123"
    assert str(ack.segment("MSH")(5)) == "MON"  # back to the sender


def test_an_error_carries_its_reason_escaped():
    reason = "bad | value ^ with \r a segment break"
    ack = acknowledge(hl7.parse(MESSAGE), AckCode.ERROR, "HOSP", reason)
    assert [str(segment(0)) for segment in ack] == ["MSH", "MSA", "ERR"]
    assert ack.unescape(str(ack.segment("MSA")(3))) == "bad | value ^ with   a segment break"
    assert str(ack.segment("ERR")(3)).startswith("207")


def test_bytes_that_are_not_hl7_get_a_fresh_reject():
    ack = hl7.parse(reject_unreadable("HOSP", "not HL7 | at all"))
    assert str(ack.segment("MSA")(1)) == "AR"
    assert str(ack.segment("MSH")(9)) == "ACK"
