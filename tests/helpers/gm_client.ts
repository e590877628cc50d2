/**
 * Our GM TLS client (TLS 1.3-SM or TLCP) for tests: connects, and sends HTTP/1.1 GETs on the connection.
 *
 * @module
 */
import { connectTcp } from "../../lib/network/connection.ts";
import type { SecureConnection } from "../../lib/tls/provider.ts";
import { parseClientTransportSocket } from "../../lib/tls/transport_socket.ts";

const GM_TYPE = "type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext";
const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Our GM client over `version`, and a function sending one HTTP/1.1 request on that connection. `extra`: more
 * client config fields, e.g. a client certificate (`certificate` for TLS 1.3, `sign_certificate` and
 * `enc_certificate` for TLCP).
 */
export async function gmConnect(port: number, version: "TLSv1.3" | "TLCP", extra: Record<string, unknown> = {}) {
  const ts = parseClientTransportSocket({
    name: "ferry.transport_sockets.gm",
    typed_config: { "@type": GM_TYPE, versions: [version], sni: "localhost", ...extra },
  }, "client")!;
  if (ts.kind !== "gm") throw new Error("not a GM transport socket");
  const conn: SecureConnection = await ts.provider.connect(await connectTcp("127.0.0.1", port, 2000), ts.context, {
    timeoutMs: 3000,
  });
  let text = "";
  let wake: (() => void) | undefined;
  conn.setHandler({
    onData: (d) => {
      text += dec.decode(d);
      wake?.();
    },
    onEof: () => wake?.(),
    onClose: () => wake?.(),
  });
  conn.start();
  const get = async (): Promise<string> => {
    text = "";
    conn.write(enc.encode("GET / HTTP/1.1\r\nhost: localhost\r\n\r\n"));
    const deadline = Date.now() + 3000;
    for (;;) {
      const end = text.indexOf("\r\n\r\n");
      const len = Number(text.slice(0, Math.max(0, end)).match(/content-length:\s*(\d+)/i)?.[1] ?? "0");
      if (end >= 0 && text.length >= end + 4 + len) return text.slice(end + 4, end + 4 + len);
      if (Date.now() > deadline) throw new Error(`no response: ${JSON.stringify(text)}`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
  };
  return { conn, peer: conn.handshake.peerCertificates[0]!, get };
}
