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
    """An original sender's DATA is held until its address answers the
    validation probe (as the original answers any RECV: with the ACK of its
    identity), then handed over, answered with exactly the RECV the original
    would send, and the original's ACK ends the exchange."""
    plain, sock = udp(), udp()
    g = gtudp.GTUDP(sock, **framed(vector))
    g.start()
    plain.settimeout(10)
    g.settimeout(10)
    plain.sendto(bytes.fromhex(vector["data_packet_hex"]), sock.getsockname())
    # The DATA's address has not proven it reads our datagrams: the DATA is
    # held (neither answered nor handed over) and a probe goes out first, a
    # header-only RECV naming a token, not the message.
    recv_prefix = bytes.fromhex(vector["magic_hex"] + vector["type_recv_hex"])
    probe, _ = plain.recvfrom(65535)
    assert probe.startswith(recv_prefix) and len(probe) == len(recv_prefix) + 4
    assert probe.hex() != vector["recv_packet_hex"]
    ack_prefix = bytes.fromhex(vector["magic_hex"] + vector["type_ack_hex"])
    plain.sendto(ack_prefix + probe[len(recv_prefix):], sock.getsockname())
    # Proven: the held DATA is handed over and answered.
    assert g.recvfrom() == (bytes.fromhex(vector["payload_hex"]), plain.getsockname())
    recv, _ = plain.recvfrom(65535)
    while recv == probe:  # the probe resent before its answer arrived
        recv, _ = plain.recvfrom(65535)
    assert recv.hex() == vector["recv_packet_hex"]
    plain.sendto(bytes.fromhex(vector["ack_packet_hex"]), sock.getsockname())
    summary = g.cleanup(timeout=5)
    stats = summary["stats"]
    # Both ACKs were recognised (the probe's answer and the message's): the
    # drain had no RECV left to resend.
    assert stats["datagrams_in"]["ack"] == 2 and stats["dropped"]["ack_unknown"] == 0
    assert stats["validated_by_probe"] == 1
    assert stats["data_held_for_validation"] == 1 and stats["held_data_taken"] == 1
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
    """The original client's DATA (both messages) reach a gtudp server,
    which holds them until the client's address answers the validation
    probe (the original answers any RECV with an ACK), then hands each
    payload over once although both arrived twice (the original resent
    them), answers each with the RECV the original server sent, and takes
    the client's ACKs."""
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
    # Nothing is answered or handed over before the address proves itself:
    # the first reply is the validation probe, a RECV of the same size
    # naming a token instead of a message, which the original answers with
    # ACK like any RECV.
    probe = plain.recvfrom(100)[0].hex()
    assert probe.startswith("5f") and len(probe) == 10 and probe not in expected_recvs
    plain.sendto(bytes.fromhex("ae" + probe[2:]), sock.getsockname())
    payloads = sorted(g.recvfrom()[0] for _ in range(2))
    assert payloads == [b"first", b"second"]
    # Then one RECV per message (the held repeats were duplicates), and
    # perhaps the probe again if it was resent before its answer arrived.
    recvs = set()
    while len(recvs) < len(expected_recvs):
        reply = plain.recvfrom(100)[0].hex()
        if reply != probe:
            recvs.add(reply)
    assert recvs == expected_recvs
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
