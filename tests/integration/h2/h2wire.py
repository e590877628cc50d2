"""Raw HTTP/2 frames over a plain socket, for the hostile tests (tests/integration/http2_hostile_test.ts).

A well-behaved library (python3-h2) refuses to send what these tests need to send, so frames are built by hand;
only the HPACK encoding of ordinary requests and the decoding of responses use python3-hpack (shipped with h2).
Everything is bounded: every read has a deadline and every loop a count.
"""

import json
import socket
import struct
import time

from hpack import Decoder, Encoder

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PRIORITY_FLAG = 0x20

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5

ERROR_NAMES = [
    "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
    "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
]


def error_name(code):
    return ERROR_NAMES[code] if 0 <= code < len(ERROR_NAMES) else hex(code)


def frame(ftype, flags, sid, payload=b""):
    """One frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def settings(pairs=()):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", inc))


def rst_stream(sid, code=0x8):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def priority(sid, depends_on=0, weight=15):
    return frame(PRIORITY, 0, sid, struct.pack(">IB", depends_on, weight))


def ping(data=b"\0" * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, data)


def request_headers(path, method="GET", extra=(), authority="ferry.test"):
    return [(":method", method), (":scheme", "http"), (":path", path), (":authority", authority), *extra]


class Wire:
    """One client connection: sends raw bytes, reads frames with deadlines, records what the server did."""

    def __init__(self, port, rcvbuf=None, local_settings=()):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect, so the advertised TCP window is small: the server's writes then back up in its own
            # buffers instead of ours.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.eof = False
        self.reset_by_peer = False
        self.send_failed = False
        self.goaway = None  # (error code, last stream id)
        self.rst = {}  # stream id -> error code
        self.status = {}  # stream id -> :status
        self.body = {}  # stream id -> bytes
        self.ended = set()  # stream ids with END_STREAM from the server
        self.trailers = {}
        self.ping_acks = 0
        self.settings_acks = 0
        self.window_updates = {}  # stream id -> total increment
        self.server_settings = {}
        self.got_settings = False
        self.frames = 0
        self.send(PREFACE + settings(local_settings))

    def send(self, data):
        """Sends everything; False (and `send_failed`) when the server has closed or reset the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.send_failed = True
            return False

    def headers(self, sid, hdrs, end_stream=True):
        block = self.encoder.encode(hdrs)
        return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, block)

    def _parse(self):
        if len(self.buf) < 9:
            return None
        n = int.from_bytes(self.buf[:3], "big")
        if len(self.buf) < 9 + n:
            return None
        f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF, self.buf[9:9 + n])
        self.buf = self.buf[9 + n:]
        return f

    def _note(self, f):
        ftype, flags, sid, payload = f
        self.frames += 1
        if ftype == SETTINGS and not flags & ACK:
            for i in range(0, len(payload) - 5, 6):
                k, v = struct.unpack(">HI", payload[i:i + 6])
                self.server_settings[k] = v
            self.got_settings = True
            self.send(frame(SETTINGS, ACK, 0))
        elif ftype == SETTINGS:
            self.settings_acks += 1
        elif ftype == PING and flags & ACK:
            self.ping_acks += 1
        elif ftype == PING:
            self.send(ping(payload, ack=True))
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            if self.goaway is None:
                self.goaway = (code, last & 0x7FFFFFFF)
        elif ftype == RST_STREAM:
            self.rst[sid] = struct.unpack(">I", payload[:4])[0]
        elif ftype == WINDOW_UPDATE:
            self.window_updates[sid] = self.window_updates.get(sid, 0) + (struct.unpack(">I", payload)[0] & 0x7FFFFFFF)
        elif ftype in (HEADERS, CONTINUATION):
            # The tests' server never sends a block bigger than one frame; padding and priority are handled.
            block = payload
            if ftype == HEADERS and flags & 0x8:
                pad = block[0]
                block = block[1:len(block) - pad]
            if ftype == HEADERS and flags & PRIORITY_FLAG:
                block = block[5:]
            hdrs = self.decoder.decode(block, raw=False)
            st = [v for k, v in hdrs if k == ":status"]
            if st and sid not in self.status or st and st[0][0] != "1" and self.status.get(sid, "1")[0] == "1":
                self.status[sid] = st[0]
            elif not st:
                self.trailers[sid] = hdrs
            if flags & END_STREAM:
                self.ended.add(sid)
        elif ftype == DATA:
            data = payload
            if flags & 0x8:
                data = data[1:len(data) - data[0]]
            self.body[sid] = self.body.get(sid, b"") + data
            if flags & END_STREAM:
                self.ended.add(sid)
        return f

    def read_frame(self, timeout):
        """The next frame (recorded), or None at EOF or when `timeout` seconds pass without one."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse()
            if f is not None:
                return self._note(f)
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return None
            except ConnectionResetError:
                self.reset_by_peer = True
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk

    def pump(self, timeout, until=None):
        """Reads frames until EOF, `until()` is true, or `timeout` seconds pass without a frame."""
        while True:
            if until is not None and until():
                return True
            if self.read_frame(timeout) is None:
                return until is not None and until()

    def drain_nowait(self):
        """Reads whatever is already buffered, without waiting."""
        self.sock.setblocking(False)
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    self.eof = True
                    break
                self.buf += chunk
        except (BlockingIOError, InterruptedError):
            pass
        except ConnectionResetError:
            self.reset_by_peer = True
            self.eof = True
        finally:
            self.sock.setblocking(True)
        while self._parse_and_note():
            pass

    def _parse_and_note(self):
        f = self._parse()
        if f is None:
            return False
        self._note(f)
        return True

    def closed(self):
        return self.eof or self.reset_by_peer or self.send_failed

    def wait_closed(self, timeout):
        """Reads until the server closes (True) or `timeout` seconds pass in all (False)."""
        deadline = time.monotonic() + timeout
        while not (self.eof or self.reset_by_peer) and time.monotonic() < deadline:
            self.read_frame(min(0.5, max(0.01, deadline - time.monotonic())))
        return self.eof or self.reset_by_peer

    def result(self, **extra):
        out = {
            "goaway": None if self.goaway is None else {"code": error_name(self.goaway[0]), "last": self.goaway[1]},
            "closed": self.eof or self.reset_by_peer or self.send_failed,
            "rst": {str(k): error_name(v) for k, v in self.rst.items()},
            "status": {str(k): v for k, v in self.status.items()},
            "ping_acks": self.ping_acks,
            "frames": self.frames,
        }
        out.update(extra)
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def emit(obj):
    print(json.dumps(obj), flush=True)
