from wsraw import RawClient


def test_echo_text_round_trip(echo_server):
    client = RawClient(echo_server.port)
    client.handshake()
    client.send_frame(0x1, b"hello")
    assert client.recv_frame() == (True, 0, 0x1, b"hello")
    client.send_frame(0x8, b"\x03\xe8")
    assert client.recv_frame() == (True, 0, 0x8, b"\x03\xe8")
    client.expect_eof()
