/**
 * The discovery messages as the xDS sources use them, and the {@link XdsWire} that turns them into protobuf bytes
 * and back (built on `proto.ts`). Field names are the protos' (snake_case); resources stay undecoded `Any`s in a
 * response so that one bad resource is reported by name.
 *
 * @module
 */

/** A `google.protobuf.Any` on the wire. */
export interface WireAny {
  readonly type_url: string;
  readonly value: Uint8Array;
}

/** `google.rpc.Status` as a NACK carries it. */
export interface WireStatus {
  readonly code: number;
  readonly message: string;
}

/** `envoy.service.discovery.v3.DiscoveryRequest`. */
export interface DiscoveryRequest {
  readonly version_info?: string;
  readonly node?: Record<string, unknown>;
  readonly resource_names?: readonly string[];
  readonly type_url: string;
  readonly response_nonce?: string;
  readonly error_detail?: WireStatus;
}

/** `envoy.service.discovery.v3.DiscoveryResponse`. */
export interface DiscoveryResponse {
  readonly version_info: string;
  readonly resources: readonly WireAny[];
  readonly type_url: string;
  readonly nonce: string;
}

/** `envoy.service.discovery.v3.DeltaDiscoveryRequest`. */
export interface DeltaDiscoveryRequest {
  readonly node?: Record<string, unknown>;
  readonly type_url: string;
  readonly resource_names_subscribe?: readonly string[];
  readonly resource_names_unsubscribe?: readonly string[];
  readonly initial_resource_versions?: Readonly<Record<string, string>>;
  readonly response_nonce?: string;
  readonly error_detail?: WireStatus;
}

/** One `envoy.service.discovery.v3.Resource` of a delta response. */
export interface WireResource {
  readonly name: string;
  readonly version: string;
  readonly resource: WireAny | undefined;
}

/** `envoy.service.discovery.v3.DeltaDiscoveryResponse`. */
export interface DeltaDiscoveryResponse {
  readonly system_version_info: string;
  readonly resources: readonly WireResource[];
  readonly type_url: string;
  readonly removed_resources: readonly string[];
  readonly nonce: string;
}

/** Encoders and decoders of the discovery messages and of resources. */
export interface XdsWire {
  encodeRequest(m: DiscoveryRequest): Uint8Array;
  decodeResponse(b: Uint8Array): DiscoveryResponse;
  encodeDeltaRequest(m: DeltaDiscoveryRequest): Uint8Array;
  decodeDeltaResponse(b: Uint8Array): DeltaDiscoveryResponse;
  /** Decodes one resource into Envoy JSON; throws a one-line error for bad bytes. */
  decodeResource(typeUrl: string, bytes: Uint8Array): Record<string, unknown>;
}
