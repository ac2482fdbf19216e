"""The on-disk spool: order, size bound, restart, damaged files."""

from __future__ import annotations

import logging

import pytest

from edge_agent.publish.spool import Message, Spool, SpoolError, decode_record, encode_record


def rec(i: int, size: int = 100) -> list[Message]:
    return [Message(f"t/{i}", bytes([i % 256]) * size, 1, False), Message(f"t/{i}/img", b"x", 0, True)]


def drain(spool: Spool) -> list[str]:
    out = []
    while (r := spool.peek()) is not None:
        out.append(r.messages[0].topic)
        spool.remove(r.seq)
    return out


def test_round_trip_keeps_topic_payload_qos_retain():
    msgs = [Message("a/ü/b", b"\x00\xff" * 10, 2, True), Message("c", b"", 0, False)]
    assert decode_record(encode_record(msgs)) == msgs


def test_replay_in_append_order_and_survives_a_restart(tmp_path):
    s = Spool(tmp_path, 1 << 20)
    for i in range(5):
        s.append(rec(i))
    assert len(s) == 5
    first = s.peek()
    s.remove(first.seq)
    s2 = Spool(tmp_path, 1 << 20)  # "agent restart"
    assert len(s2) == 4
    s2.append(rec(5))
    assert drain(s2) == ["t/1", "t/2", "t/3", "t/4", "t/5"]
    assert len(Spool(tmp_path, 1 << 20)) == 0


def test_full_spool_drops_the_oldest_and_counts(tmp_path, caplog):
    one = len(encode_record(rec(0, 1000)))
    s = Spool(tmp_path, one * 3 + 10)
    for i in range(5):
        s.append(rec(i, 1000))
    assert s.dropped == 2 and len(s) == 3 and s.total_bytes <= s.max_bytes
    assert drain(s) == ["t/2", "t/3", "t/4"]
    assert "dropped the oldest" in caplog.text


def test_a_record_larger_than_the_spool_is_refused_and_counted(tmp_path):
    s = Spool(tmp_path, 500)
    s.append(rec(1, 10))
    assert s.append(rec(2, 1000)) is None
    assert s.dropped == 1 and drain(s) == ["t/1"]  # nothing else was evicted for it


def test_damaged_file_is_quarantined_not_sent(tmp_path, caplog):
    s = Spool(tmp_path, 1 << 20)
    for i in range(3):
        s.append(rec(i))
    files = sorted(tmp_path.glob("*.rec"))
    data = files[1].read_bytes()
    files[1].write_bytes(data[:-5] + b"XXXXX")  # a torn write / bit rot
    (tmp_path / "0000000000000099.tmp").write_bytes(b"half")  # a crash mid-write
    with caplog.at_level(logging.ERROR):
        s2 = Spool(tmp_path, 1 << 20)
        assert drain(s2) == ["t/0", "t/2"]
    assert s2.damaged == 1 and (tmp_path / "bad" / files[1].name).exists()
    assert "checksum mismatch" in caplog.text
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("data", [b"", b"garbage", b"NWSP1\n" + b"\x00" * 40])
def test_decode_refuses_garbage(data):
    with pytest.raises(SpoolError):
        decode_record(data)
