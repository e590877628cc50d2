/**
 * A hand-driven TLS 1.3 client for negative tests: it sends a real ClientHello (x25519, AES-128-GCM or a chosen
 * suite), follows the server's flight with the engine's own key schedule, and then lets the test send whatever
 * it likes under the client handshake or application keys — a wrong Finished, a ClientHello after the
 * handshake, mutated messages.
 *
 * @module
 */

import type { TlsEngineCallbacks } from "../../../../api/tls.ts";
import { ContentType, ExtensionType, handshakeMessage, HandshakeType } from "../_codec.ts";
import { Transcript } from "../_engine.ts";
import { TLS13_SIGNATURE_SCHEMES } from "../credentials.ts";
import { TLS13_GROUPS } from "../groups.ts";
import { finishedVerifyData, KeySchedule, trafficKeys } from "../key_schedule.ts";
import { encodeClientHello, parseServerHello } from "../messages.ts";
import { RecordReader, RecordWriter } from "../record.ts";
import { TLS13_CIPHER_SUITES, type Tls13CipherSuiteName } from "../suites.ts";
import { createTls13Server, type Tls13ServerOptions } from "../server.ts";
import { type Endpoint, endpoint } from "./harness.ts";
import { testPki } from "./pki.ts";

/** The scripted client after the server's first flight. */
export interface Scripted {
  readonly server: Endpoint;
  /** Handshake messages the server sent (type, raw). */
  readonly serverMessages: readonly [number, Uint8Array][];
  /** The correct client Finished message (header included). */
  readonly finished: Uint8Array;
  /** Records of `type` protected under the client handshake keys (or application keys after `useAppKeys`). */
  protect(type: number, data: Uint8Array): Uint8Array;
  /** Switches the writer to the client application keys. */
  useAppKeys(): void;
  /** Delivers bytes to the server. */
  deliver(bytes: Uint8Array): void;
  /** Application data the client can read from the server after the handshake. */
  readonly appData: Uint8Array[];
  /** Alerts (level, description) the server sent. */
  readonly alerts: [number, number][];
}

/** Runs a ClientHello against a fresh server and processes its flight. */
export function scriptedClient(
  serverOptions: Partial<Tls13ServerOptions> = {},
  suiteName: Tls13CipherSuiteName = "TLS_AES_128_GCM_SHA256",
  earlyData?: readonly Uint8Array[],
): Scripted {
  const pki = testPki();
  const suite = TLS13_CIPHER_SUITES[suiteName];
  const server = endpoint((cb: TlsEngineCallbacks) =>
    createTls13Server({ certificates: [pki.ecdsaServer, pki.sm2Server], ...serverOptions }, cb)
  );
  server.engine.start();
  const key = TLS13_GROUPS.x25519.generate();
  const transcript = new Transcript();
  const ch = handshakeMessage(
    HandshakeType.clientHello,
    encodeClientHello({
      random: crypto.getRandomValues(new Uint8Array(32)),
      sessionId: new Uint8Array(0),
      cipherSuites: [suite.id],
      serverName: "localhost",
      supportedGroups: [TLS13_GROUPS.x25519.id],
      signatureAlgorithms: [TLS13_SIGNATURE_SCHEMES.ecdsa_secp256r1_sha256, TLS13_SIGNATURE_SCHEMES.sm2sig_sm3],
      keyShares: [{ group: TLS13_GROUPS.x25519.id, key: key.publicKey }],
      ...(earlyData ? { extraExtensions: [{ type: ExtensionType.earlyData, data: new Uint8Array(0) }] } : {}),
    }),
  );
  transcript.add(ch);
  transcript.setHash(suite.hash);
  const writer = new RecordWriter();
  const serverMessages: [number, Uint8Array][] = [];
  const appData: Uint8Array[] = [];
  const alerts: [number, number][] = [];
  const schedule = new KeySchedule(suite.hash);
  let cHs: Uint8Array | undefined;
  let cAp: Uint8Array | undefined;
  let finished: Uint8Array | undefined;
  let hs = new Uint8Array(0);
  const reader: RecordReader = new RecordReader((type, fragment) => {
    if (type === ContentType.alert) alerts.push([fragment[0]!, fragment[1]!]);
    if (type === ContentType.applicationData) appData.push(fragment.slice());
    if (type !== ContentType.handshake) return;
    const joined = new Uint8Array(hs.length + fragment.length);
    joined.set(hs);
    joined.set(fragment, hs.length);
    hs = joined;
    while (hs.length >= 4) {
      const len = (hs[1]! << 16) | (hs[2]! << 8) | hs[3]!;
      if (hs.length < 4 + len) break;
      const raw = hs.slice(0, 4 + len);
      hs = hs.slice(4 + len);
      serverMessages.push([raw[0]!, raw]);
      if (raw[0] === HandshakeType.serverHello) {
        const sh = parseServerHello(raw.subarray(4));
        transcript.add(raw);
        schedule.handshakeSecret(key.deriveShared(sh.keyShare!.key));
        const [c, s] = schedule.handshakeTrafficSecrets(transcript.digest());
        cHs = c;
        const sk = trafficKeys(suite.hash, s, suite.keyLength, 12);
        reader.setKeys(suite.createAead(sk.key), sk.iv);
        const ck = trafficKeys(suite.hash, c, suite.keyLength, 12);
        writer.setKeys(suite.createAead(ck.key), ck.iv);
      } else if (raw[0] === HandshakeType.finished) {
        transcript.add(raw);
        const [c, s] = schedule.applicationTrafficSecrets(transcript.digest());
        cAp = c;
        const sk = trafficKeys(suite.hash, s, suite.keyLength, 12);
        reader.setKeys(suite.createAead(sk.key), sk.iv);
        finished = handshakeMessage(HandshakeType.finished, finishedVerifyData(suite.hash, cHs!, transcript.digest()));
      } else {
        transcript.add(raw);
      }
    }
  });
  const drain = () => {
    for (const chunk of server.outbox.splice(0)) reader.feed(chunk);
  };
  server.engine.receive(writer.seal(ContentType.handshake, ch));
  // 0-RTT records as a client would send them (under keys the server does not have): opaque to it.
  for (const r of earlyData ?? []) server.engine.receive(r);
  drain();
  return {
    server,
    serverMessages,
    get finished() {
      if (!finished) throw new Error("scripted: the server sent no Finished");
      return finished;
    },
    protect: (type, data) => writer.seal(type, data),
    useAppKeys: () => {
      const k = trafficKeys(suite.hash, cAp!, suite.keyLength, 12);
      writer.setKeys(suite.createAead(k.key), k.iv);
    },
    deliver: (bytes) => {
      server.engine.receive(bytes);
      try {
        drain();
      } catch {
        // The server's output after a failure may be an alert under keys we do not track; ignore.
      }
    },
    appData,
    alerts,
  };
}
