"""Interop with the original gtUDP, byte for byte: the datagrams its own
frame builders produced (tests/vectors/original-framing.json) and a live
exchange between two of its instances (original-echo-transcript.json)."""

from __future__ import annotations

import pytest

import gtudp
from conftest import load_vectors, udp

FRAMING = load_vectors("original-framing.json")["vectors"]
TRANSCRIPT = load_vectors("original-echo-transcript.json")["datagrams"]


def framed(vector: dict) -> dict:
    return dict(
        magic_numbers=bytes.fromhex(vector["magic_hex"]),
        frame_identifier=bytes.fromhex(vector["type_data_hex"]),
        recv_identifier=bytes.fromhex(vector["type_recv_hex"]),
        ack_identifier=bytes.fromhex(vector["type_ack_hex"]),
    )


@pytest.mark.parametrize("vector", FRAMING, ids=lambda v: f"{v['magic_hex'] or 'nomagic'}-{v['type_data_hex']}-{len(v['payload_hex']) // 2}B")
def test_receives_the_originals_data_and_answers_with_its_recv(vector):
    """An original sender's DATA is handed over, answered with exactly the
    RECV the original would send, and the original's ACK ends the exchange."""
    plain, sock = udp(), udp()
    g = gtudp.GTUDP(sock, **framed(vector))
    g.start()
    plain.settimeout(10)
    plain.sendto(bytes.fromhex(vector["data_packet_hex"]), sock.getsockname())
    assert g.recvfrom() == (bytes.fromhex(vector["payload_hex"]), plain.getsockname())
    recv, _ = plain.recvfrom(65535)
    assert recv.hex() == vector["recv_packet_hex"]
    plain.sendto(bytes.fromhex(vector["ack_packet_hex"]), sock.getsockname())
    summary = g.cleanup(timeout=5)
    stats = summary["stats"]
    # The ACK was recognised: the drain had no RECV left to resend.
    assert stats["datagrams_in"]["ack"] == 1 and stats["dropped"]["ack_unknown"] == 0
    assert not summary["deadline_reached"]
    sock.close()
    plain.close()


@pytest.mark.parametrize("vector", FRAMING[::3], ids=lambda v: f"{v['magic_hex'] or 'nomagic'}-{v['type_data_hex']}")
def test_sends_data_the_original_parses_and_takes_its_recv_as_delivery(vector):
    plain, sock = udp(), udp()
    g = gtudp.GTUDP(sock, **framed(vector))
    payload = bytes.fromhex(vector["payload_hex"])
    delivery = g.sendto(payload, plain.getsockname())
    plain.settimeout(10)
    data, _ = plain.recvfrom(65535)
    prefix = bytes.fromhex(vector["magic_hex"] + vector["type_data_hex"])
    assert data.startswith(prefix) and data[len(prefix) + 4:] == payload
    identity = data[len(prefix):len(prefix) + 4]
    recv = bytes.fromhex(vector["magic_hex"] + vector["type_recv_hex"]) + identity
    plain.sendto(recv, sock.getsockname())
    assert delivery.wait(timeout=10) is True
    ack, _ = plain.recvfrom(65535)
    assert ack == bytes.fromhex(vector["magic_hex"] + vector["type_ack_hex"]) + identity
    g.cleanup(timeout=5)
    sock.close()
    plain.close()


def test_replays_the_original_clients_side_of_its_echo_transcript():
    """The original client's DATA (both messages) reach a gtudp server, which
    answers each with the RECV the original server sent, hands each payload
    over once although both arrive twice (the original resent them), and
    takes the client's ACKs."""
    plain, sock = udp(), udp()
    g = gtudp.GTUDP(sock)
    g.start()
    plain.settimeout(10)
    client_data = [
        bytes.fromhex(d["hex"]) for d in TRANSCRIPT if d["dir"] == "client->server" and d["hex"].startswith("1d")
    ]
    expected_recvs = {d["hex"] for d in TRANSCRIPT if d["dir"] == "server->client" and d["hex"].startswith("5f")}
    assert len(client_data) == 4
    for datagram in client_data:
        plain.sendto(datagram, sock.getsockname())
    g.settimeout(10)
    payloads = sorted(g.recvfrom()[0] for _ in range(2))
    assert payloads == [b"first", b"second"]
    # One RECV per DATA, and one validation probe: a RECV of the same size
    # naming a token instead of a message, which the original answers with
    # ACK like any RECV.
    replies = [plain.recvfrom(100)[0].hex() for _ in range(len(client_data) + 1)]
    recvs = set(replies)
    assert expected_recvs <= recvs
    probes = recvs - expected_recvs
    assert len(probes) == 1 and all(p.startswith("5f") and len(p) == 10 for p in probes)
    for recv in recvs:
        plain.sendto(bytes.fromhex("ae" + recv[2:]), sock.getsockname())
    g.setblocking(False)
    with pytest.raises(gtudp.Timeout):
        g.recvfrom()
    summary = g.cleanup(timeout=5)
    assert summary["stats"]["duplicates_suppressed"] == 2
    assert not summary["deadline_reached"]
    sock.close()
    plain.close()
