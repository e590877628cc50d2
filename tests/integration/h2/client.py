"""A well-behaved HTTP/2 client (python3-h2) on ONE connection, driven line by line from stdin.

Usage: python3 client.py PORT. Each stdin line is a JSON request {"method", "path", "body"?, "headers"?}; each
answer is one JSON line {"status", "body", "headers", "trailers", "reset"?, "error"?} on stdout, in order. The
connection stays open between requests (the hostile tests' bystander; the peers tests' trailer check). Every wait
is bounded (5 s per request).
"""

import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def main():
    port = int(sys.argv[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    terminated = None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        if terminated is not None:
            print(json.dumps({"error": f"connection terminated: {terminated}"}), flush=True)
            continue
        sid = conn.get_next_available_stream_id()
        body = req.get("body", "").encode()
        headers = [(":method", req.get("method", "GET")), (":scheme", "http"), (":path", req["path"]),
                   (":authority", "ferry.test")] + [tuple(h) for h in req.get("headers", [])]
        out = {"status": None, "body": "", "headers": {}, "trailers": {}}
        try:
            conn.send_headers(sid, headers, end_stream=not body)
            if body:
                # Respects flow control: sends what the windows allow, then waits for WINDOW_UPDATEs.
                pending = body
                while pending:
                    n = min(len(pending), conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                    if n > 0:
                        conn.send_data(sid, pending[:n], end_stream=len(pending) == n)
                        pending = pending[n:]
                        sock.sendall(conn.data_to_send())
                        continue
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("closed while sending the body")
                    handle(conn, conn.receive_data(data), sid, out)
            sock.sendall(conn.data_to_send())
            deadline = time.monotonic() + 5
            while not out.get("done") and time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    break
                if not data:
                    out["error"] = "connection closed"
                    terminated = "closed"
                    break
                events = conn.receive_data(data)
                for e in events:
                    if isinstance(e, h2.events.ConnectionTerminated):
                        terminated = f"GOAWAY {e.error_code!r}"
                handle(conn, events, sid, out)
                sock.sendall(conn.data_to_send())
            if not out.get("done") and "error" not in out:
                out["error"] = "timeout"
        except (OSError, h2.exceptions.ProtocolError, ConnectionError) as e:
            out["error"] = f"{type(e).__name__}: {e}"
            terminated = terminated or out["error"]
        out.pop("done", None)
        print(json.dumps(out), flush=True)
    try:
        conn.close_connection()
        sock.sendall(conn.data_to_send())
    except OSError:
        pass
    sock.close()


def handle(conn, events, sid, out):
    for e in events:
        if getattr(e, "stream_id", None) != sid:
            if isinstance(e, h2.events.DataReceived):
                conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            continue
        if isinstance(e, h2.events.ResponseReceived):
            out["headers"] = dict(e.headers)
            out["status"] = int(out["headers"].get(":status", 0))
        elif isinstance(e, h2.events.DataReceived):
            out["body"] += e.data.decode("latin-1")
            conn.acknowledge_received_data(e.flow_controlled_length, sid)
        elif isinstance(e, h2.events.TrailersReceived):
            out["trailers"] = dict(e.headers)
        elif isinstance(e, h2.events.StreamEnded):
            out["done"] = True
        elif isinstance(e, h2.events.StreamReset):
            out["reset"] = int(e.error_code)
            out["done"] = True


if __name__ == "__main__":
    main()
