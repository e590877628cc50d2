/**
 * The test control plane, as its own process, driven over a real socket by a `@grpc/grpc-js` ADS client (SotW and
 * delta) speaking `xds/proto.ts`'s codecs.
 */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import {
  ADS_METHODS,
  CLUSTER,
  decodeAny,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  DISCOVERY_CODECS,
  type DiscoveryRequest,
  type DiscoveryResponse,
  ENDPOINT,
  LISTENER,
  ROUTE,
  SECRET,
} from "../../xds/proto.ts";
import { type ControlPlane, type SnapshotInput, startControlPlane } from "./control_plane_client.ts";
import { mustOpenssl } from "../helpers/openssl.ts";

const opts = { sanitizeOps: false, sanitizeResources: false } as const;

/** A bidi ADS stream whose responses queue up; {@link next} takes them in order (bounded wait, not a timing check). */
class Ads<Req, Res> {
  #queue: Res[] = [];
  #waiters: { resolve: (r: Res) => void; reject: (e: Error) => void }[] = [];
  #error: Error | undefined;
  readonly call: grpc.ClientDuplexStream<Req, Res>;

  constructor(call: grpc.ClientDuplexStream<Req, Res>) {
    this.call = call;
    call.on("data", (r: Res) => {
      const w = this.#waiters.shift();
      if (w) w.resolve(r);
      else this.#queue.push(r);
    });
    call.on("error", (e: Error) => this.#fail(e));
    call.on("end", () => this.#fail(new Error("stream ended")));
  }

  #fail(e: Error): void {
    this.#error ??= e;
    for (const w of this.#waiters.splice(0)) w.reject(e);
  }

  send(req: Req): void {
    this.call.write(req);
  }

  next(): Promise<Res> {
    const r = this.#queue.shift();
    if (r !== undefined) return Promise.resolve(r);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise<Res>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no response within 10 s")), 10_000);
      this.#waiters.push({
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /** Responses already received and not taken. */
  get pending(): number {
    return this.#queue.length;
  }

  close(): void {
    this.call.end();
    this.call.cancel();
  }
}

function client(cp: ControlPlane, creds = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}) {
  return new grpc.Client(`127.0.0.1:${cp.grpcPort}`, creds, options);
}

function sotw(c: grpc.Client): Ads<DiscoveryRequest, DiscoveryResponse> {
  return new Ads(
    c.makeBidiStreamRequest(
      ADS_METHODS.sotw,
      DISCOVERY_CODECS.request.serialize,
      DISCOVERY_CODECS.response.deserialize,
    ),
  );
}

function delta(c: grpc.Client): Ads<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  return new Ads(
    c.makeBidiStreamRequest(
      ADS_METHODS.delta,
      DISCOVERY_CODECS.deltaRequest.serialize,
      DISCOVERY_CODECS.deltaResponse.deserialize,
    ),
  );
}

/** Opens a stream on `c` with `open`, runs `body` on it, then closes the stream and the client. */
async function onStream<S extends { close(): void }>(
  c: grpc.Client,
  open: (c: grpc.Client) => S,
  body: (s: S) => Promise<void>,
): Promise<void> {
  const s = open(c);
  try {
    await body(s);
  } finally {
    s.close();
    c.close();
  }
}

/** {@link onStream} on a fresh client of a fresh control plane serving `snapshot("v1")`; both go afterwards. */
async function onV1Stream<S extends { close(): void }>(
  open: (c: grpc.Client) => S,
  body: (s: S, cp: ControlPlane) => Promise<void>,
): Promise<void> {
  await using cp = await startControlPlane({ snapshot: snapshot("v1") });
  await onStream(client(cp), open, (s) => body(s, cp));
}

const cluster = (name: string, timeout = "1s") => ({
  name,
  type: "EDS",
  connect_timeout: timeout,
  eds_cluster_config: { eds_config: { ads: {} } },
});
const cla = (name: string, port: number) => ({
  cluster_name: name,
  endpoints: [{
    lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
  }],
});
const route = (name: string, clusterName: string) => ({
  name,
  virtual_hosts: [{
    name: "vh",
    domains: ["*"],
    routes: [{ match: { prefix: "/" }, route: { cluster: clusterName } }],
  }],
});
const listener = (name: string, port: number) => ({
  name,
  address: { socket_address: { address: "127.0.0.1", port_value: port } },
});

function snapshot(version: string, extra: Partial<SnapshotInput["resources"]> = {}): SnapshotInput {
  return {
    version,
    resources: {
      lds: [listener("l1", 10001)],
      cds: [cluster("c1"), cluster("c2")],
      eds: [cla("c1", 9001), cla("c2", 9002)],
      rds: [route("r1", "c1"), route("r2", "c2")],
      ...extra,
    } as SnapshotInput["resources"],
  };
}

const names = (r: DiscoveryResponse) =>
  r.resources.map((a) => decodeAny(a.type_url, a.value).name ?? decodeAny(a.type_url, a.value).cluster_name);
const node = { id: "ferry-test", cluster: "edge", metadata: { role: "test" } };

Deno.test(
  "control plane SotW: wildcard CDS gets every cluster with a version and nonce; ACK and node recorded",
  opts,
  async () => {
    await onV1Stream(sotw, async (s, cp) => {
      s.send({ node, type_url: CLUSTER, resource_names: [] });
      const r = await s.next();
      assertEquals(r.version_info, "v1");
      assertEquals(r.type_url, CLUSTER);
      assert(r.nonce !== "");
      assertEquals(names(r), ["c1", "c2"]);
      assertEquals(decodeAny(CLUSTER, r.resources[0]!.value).connect_timeout, "1s");
      s.send({ version_info: "v1", type_url: CLUSTER, response_nonce: r.nonce });
      assertEquals(await cp.waitAcked("cds", "v1"), { acked: "v1" });
      const st = await cp.state();
      assertEquals(st.types.cds!.acked_version, "v1");
      assertEquals(st.types.cds!.versions_sent, ["v1"]);
      assertEquals(st.nodes, [node]);
      assertEquals(st.connected_streams, 1);
      assertEquals(st.streams[0]!.types.cds!.subscribed, ["*"]);

      // A new snapshot is pushed with a fresh nonce.
      await cp.setSnapshot(snapshot("v2", { cds: [cluster("c1", "2s")] }));
      const r2 = await s.next();
      assertEquals([r2.version_info, names(r2)], ["v2", ["c1"]]);
      assert(r2.nonce !== r.nonce);
      s.send({ version_info: "v2", type_url: CLUSTER, response_nonce: r2.nonce });
      assertEquals(await cp.waitAcked(CLUSTER, "v2", { node: "ferry-test" }), { acked: "v2" });
    });
  },
);

Deno.test("control plane SotW: a NACK is recorded and the rejected version is not sent again", opts, async () => {
  await onV1Stream(sotw, async (s, cp) => {
    s.send({ node, type_url: LISTENER });
    const r1 = await s.next();
    s.send({ version_info: "v1", type_url: LISTENER, response_nonce: r1.nonce });
    await cp.waitAcked("lds", "v1");

    await cp.setSnapshot(snapshot("v2", { lds: [listener("l1", 10001), listener("l2", 10002)] }));
    const r2 = await s.next();
    assertEquals(r2.version_info, "v2");
    const waiting = cp.waitAcked("lds", "v2");
    s.send({
      version_info: "v1",
      type_url: LISTENER,
      response_nonce: r2.nonce,
      error_detail: { code: 3, message: 'listener "l2": address already in use' },
    });
    assertEquals(await waiting, { nacked: 'listener "l2": address already in use' });
    const st = await cp.state();
    assertEquals(st.types.lds!.nacks, 1);
    assertEquals(st.types.lds!.last_nack!.message, 'listener "l2": address already in use');
    assertEquals(st.types.lds!.last_nack!.nonce, r2.nonce);
    assertEquals(st.types.lds!.last_nack!.version, "v2");
    assertEquals(st.types.lds!.acked_version, "v1");

    // The next response is the next version, not v2 again.
    await cp.setSnapshot(snapshot("v3"));
    const r3 = await s.next();
    assertEquals([r3.version_info, names(r3)], ["v3", ["l1"]]);
    // A stale nonce (the NACKed response's) is ignored: it neither ACKs v3 nor triggers a response.
    s.send({ version_info: "v1", type_url: LISTENER, response_nonce: r2.nonce });
    s.send({ version_info: "v3", type_url: LISTENER, response_nonce: r3.nonce });
    assertEquals(await cp.waitAcked("lds", "v3"), { acked: "v3" });
    assertEquals(s.pending, 0);
  });
});

Deno.test(
  "control plane SotW: RDS and EDS send only the names subscribed, again when the names change",
  opts,
  async () => {
    await onV1Stream(sotw, async (s, cp) => {
      s.send({ node, type_url: ROUTE, resource_names: ["r1"] });
      const r1 = await s.next();
      assertEquals([r1.version_info, names(r1)], ["v1", ["r1"]]);
      s.send({ version_info: "v1", type_url: ROUTE, resource_names: ["r1", "r2"], response_nonce: r1.nonce });
      const r2 = await s.next();
      assertEquals([r2.version_info, names(r2)], ["v1", ["r1", "r2"]]);
      assert(r2.nonce !== r1.nonce);
      s.send({ version_info: "v1", type_url: ROUTE, resource_names: ["r1", "r2"], response_nonce: r2.nonce });
      await cp.waitAcked("rds", "v1");

      // EDS on the same stream, one name that does not exist yet.
      s.send({ type_url: ENDPOINT, resource_names: ["c1", "c9"] });
      const e1 = await s.next();
      assertEquals([e1.type_url, names(e1)], [ENDPOINT, ["c1"]]);
      s.send({ version_info: "v1", type_url: ENDPOINT, resource_names: ["c1", "c9"], response_nonce: e1.nonce });
      await cp.waitAcked("eds", "v1");
      await cp.setSnapshot(snapshot("v2", { eds: [cla("c1", 9001), cla("c9", 9009)], rds: [route("r1", "c1")] }));
      const pushed = [await s.next(), await s.next()].sort((a, b) => a.type_url.localeCompare(b.type_url));
      assertEquals(pushed.map((r) => [r.type_url, r.version_info, names(r)]), [
        [ENDPOINT, "v2", ["c1", "c9"]],
        [ROUTE, "v2", ["r1"]],
      ]);
      const st = await cp.state();
      assertEquals(st.streams[0]!.types.eds!.subscribed, ["c1", "c9"]);
    });
  },
);

Deno.test(
  "control plane SotW: a reconnecting client at the current version gets nothing until the next version",
  opts,
  async () => {
    await onV1Stream(sotw, async (s, cp) => {
      s.send({ node, version_info: "v1", type_url: CLUSTER });
      await cp.setSnapshot(snapshot("v2"));
      const r = await s.next();
      assertEquals(r.version_info, "v2");
    });
  },
);

Deno.test(
  "control plane delta: wildcard CDS, per-resource versions, changes only, removed_resources",
  opts,
  async () => {
    await onV1Stream(delta, async (s, cp) => {
      s.send({ node, type_url: CLUSTER, resource_names_subscribe: ["*"] });
      const r1 = await s.next();
      assertEquals(r1.system_version_info, "v1");
      assertEquals(r1.resources.map((r) => r.name), ["c1", "c2"]);
      assertEquals(r1.removed_resources, []);
      const v = Object.fromEntries(r1.resources.map((r) => [r.name, r.version]));
      assert(v.c1 !== v.c2 && v.c1!.length > 0);
      assertEquals(decodeAny(CLUSTER, r1.resources[1]!.resource!.value).name, "c2");
      s.send({ type_url: CLUSTER, response_nonce: r1.nonce });
      assertEquals(await cp.waitAcked("cds", "v1"), { acked: "v1" });

      // c1 changes, c2 is removed, c3 is new; c1's unchanged twin is not resent.
      await cp.setSnapshot(snapshot("v2", { cds: [cluster("c1", "3s"), cluster("c3")] }));
      const r2 = await s.next();
      assertEquals(r2.system_version_info, "v2");
      assertEquals(r2.resources.map((r) => r.name), ["c1", "c3"]);
      assert(r2.resources[0]!.version !== v.c1);
      assertEquals(r2.removed_resources, ["c2"]);
      s.send({ type_url: CLUSTER, response_nonce: r2.nonce });
      await cp.waitAcked("cds", "v2");

      // Same resources under a new version: nothing to send; the next real change is the next response.
      await cp.setSnapshot(snapshot("v3", { cds: [cluster("c1", "3s"), cluster("c3")] }));
      await cp.setSnapshot(snapshot("v4", { cds: [cluster("c1", "3s")] }));
      const r4 = await s.next();
      assertEquals([r4.system_version_info, r4.resources.length, r4.removed_resources], ["v4", 0, ["c3"]]);
      const st = await cp.state();
      assertEquals(st.types.cds!.versions_sent, ["v1", "v2", "v4"]);
      assertEquals(Object.keys(st.streams[0]!.types.cds!.resource_versions ?? {}), ["c1"]);
    });
  },
);

Deno.test("control plane delta: EDS subscribe and unsubscribe by name; NACK recorded", opts, async () => {
  await onV1Stream(delta, async (s, cp) => {
    s.send({ node, type_url: ENDPOINT, resource_names_subscribe: ["c1"] });
    const r1 = await s.next();
    assertEquals(r1.resources.map((r) => r.name), ["c1"]);
    s.send({ type_url: ENDPOINT, response_nonce: r1.nonce });
    await cp.waitAcked("eds", "v1");

    s.send({ type_url: ENDPOINT, resource_names_subscribe: ["c2"] });
    const r2 = await s.next();
    assertEquals(r2.resources.map((r) => r.name), ["c2"]);
    s.send({ type_url: ENDPOINT, response_nonce: r2.nonce, error_detail: { code: 3, message: "bad c2" } });
    assertEquals((await cp.state()).types.eds!.last_nack!.message, "bad c2");

    // Unsubscribed from c1: a change to c1 is not sent, a change to c2 is.
    s.send({ type_url: ENDPOINT, resource_names_unsubscribe: ["c1"] });
    await cp.setSnapshot(snapshot("v2", { eds: [cla("c1", 7001), cla("c2", 7002)] }));
    const r3 = await s.next();
    assertEquals([r3.system_version_info, r3.resources.map((r) => r.name), r3.removed_resources], ["v2", ["c2"], []]);
    s.send({ type_url: ENDPOINT, response_nonce: r3.nonce });
    await cp.waitAcked("eds", "v2");
    assertEquals((await cp.state()).streams[0]!.types.eds!.subscribed, ["c2"]);

    // c2 leaves the snapshot: removed.
    await cp.setSnapshot(snapshot("v3", { eds: [cla("c1", 7001)] }));
    const r4 = await s.next();
    assertEquals([r4.resources.length, r4.removed_resources], [0, ["c2"]]);
  });
});

Deno.test("control plane delta: a reconnect with initial_resource_versions gets only what changed", opts, async () => {
  await using cp = await startControlPlane({ snapshot: snapshot("v1") });
  const c = client(cp);
  try {
    const s1 = delta(c);
    s1.send({ node, type_url: CLUSTER, resource_names_subscribe: ["*"] });
    const r1 = await s1.next();
    s1.send({ type_url: CLUSTER, response_nonce: r1.nonce });
    await cp.waitAcked("cds", "v1");
    const held = Object.fromEntries(r1.resources.map((r) => [r.name, r.version]));
    s1.close();

    await cp.setSnapshot(snapshot("v2", { cds: [cluster("c1"), cluster("c3")] }));
    const s2 = delta(c);
    s2.send({ node, type_url: CLUSTER, resource_names_subscribe: ["*"], initial_resource_versions: held });
    const r2 = await s2.next();
    // c1 unchanged: not resent; c2 gone: removed; c3 new.
    assertEquals([r2.resources.map((r) => r.name), r2.removed_resources], [["c3"], ["c2"]]);
    s2.close();
  } finally {
    c.close();
  }
});

Deno.test(
  "control plane: PUT /snapshot rejects a bad resource with its path; /disconnect ends streams",
  opts,
  async () => {
    await using cp = await startControlPlane();
    await assertRejects(
      () => cp.setSnapshot({ version: "x", resources: { cds: [{ name: "c", connect_timeout: "soon" }] } }),
      "snapshot.resources.cds[0]: resource of type envoy.config.cluster.v3.Cluster: connect_timeout: invalid duration",
    );
    await assertRejects(() => cp.setSnapshot({ version: "x", resources: { xds: [] } }), 'unknown resource type "xds"');
    await assertRejects(
      () => cp.setSnapshot({ version: "x", resources: { eds: [{ endpoints: [] }] } }),
      "cluster_name is required",
    );
    await cp.setSnapshot({ version: "ok", resources: { [CLUSTER]: [cluster("c1")] } });
    await onStream(client(cp), sotw, async (s) => {
      s.send({ node, type_url: CLUSTER });
      assertEquals((await s.next()).version_info, "ok");
      assertEquals(await cp.disconnect(), 1);
      const e = await s.next().then(() => undefined, (e: unknown) => e as { code?: number });
      assertEquals(e?.code, grpc.status.UNAVAILABLE);
    });
  },
);

Deno.test("control plane restart keeps the port and serves the last snapshot", opts, async () => {
  await using cp = await startControlPlane({ snapshot: snapshot("v1") });
  await cp.setSnapshot(snapshot("v2"));
  const port = cp.grpcPort;
  await cp.restart();
  assertEquals(cp.grpcPort, port);
  assertEquals((await cp.state()).total_streams, 0);
  await onStream(client(cp), sotw, async (s) => {
    s.send({ node, type_url: LISTENER });
    assertEquals((await s.next()).version_info, "v2");
  });
});

/** A P-256 root, a server leaf (localhost, 127.0.0.1) and a client leaf, made by openssl at test time. */
async function makePki(dir: string): Promise<void> {
  await mustOpenssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.crt`,
    "-subj",
    "/CN=xds test root",
    "-days",
    "2",
  ]);
  for (
    const [name, ext] of [["server", "subjectAltName=DNS:localhost,IP:127.0.0.1"], [
      "client",
      "extendedKeyUsage=clientAuth",
    ]] as const
  ) {
    await mustOpenssl([
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${dir}/${name}.key`,
      "-out",
      `${dir}/${name}.csr`,
      "-subj",
      `/CN=xds ${name}`,
    ]);
    await Deno.writeTextFile(`${dir}/${name}.ext`, ext + "\n");
    await mustOpenssl([
      "x509",
      "-req",
      "-in",
      `${dir}/${name}.csr`,
      "-CA",
      `${dir}/ca.crt`,
      "-CAkey",
      `${dir}/ca.key`,
      "-CAcreateserial",
      "-out",
      `${dir}/${name}.crt`,
      "-days",
      "2",
      "-extfile",
      `${dir}/${name}.ext`,
    ]);
  }
}

Deno.test(
  "control plane over mTLS: a client with a certificate gets the snapshot, one without is refused",
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "ferry-xds-pki-" });
    try {
      await makePki(dir);
      const read = async (n: string) => Buffer.from(await Deno.readFile(`${dir}/${n}`));
      await using cp = await startControlPlane({
        snapshot: snapshot("tls1"),
        tls: { cert: `${dir}/server.crt`, key: `${dir}/server.key`, ca: `${dir}/ca.crt` },
      });
      const sni = { "grpc.ssl_target_name_override": "localhost" };
      await onStream(
        client(
          cp,
          grpc.credentials.createSsl(await read("ca.crt"), await read("client.key"), await read("client.crt")),
          sni,
        ),
        sotw,
        async (s) => {
          s.send({ node, type_url: CLUSTER });
          const r = await s.next();
          assertEquals([r.version_info, names(r)], ["tls1", ["c1", "c2"]]);
        },
      );
      await onStream(client(cp, grpc.credentials.createSsl(await read("ca.crt")), sni), sotw, async (s2) => {
        s2.send({ node, type_url: CLUSTER });
        const e = await s2.next().then(() => undefined, (e: unknown) => e as { code?: number });
        assertEquals(e?.code, grpc.status.UNAVAILABLE);
        assertEquals((await cp.state()).total_streams, 1);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("control plane --snapshot reads a YAML file: every type served at its version", opts, async () => {
  await using cp = await startControlPlane({
    snapshotFile: new URL("../../xds/testdata/snapshot.yaml", import.meta.url).pathname,
  });
  await onStream(client(cp), sotw, async (s) => {
    const got: string[] = [];
    for (
      const [t, want] of [[LISTENER, []], [ROUTE, ["local"]], [CLUSTER, []], [ENDPOINT, ["backend"]], [SECRET, [
        "server_cert",
      ]]] as const
    ) {
      s.send({ node, type_url: t, resource_names: [...want] });
      const r = await s.next();
      assertEquals(r.version_info, "y1");
      got.push(...names(r) as string[]);
    }
    assertEquals(got, ["ingress", "local", "backend", "backend", "server_cert"]);
  });
});
