/**
 * The gRPC upstream of bench/grpc.sh: a @grpc/grpc-js server with one unary method, `bench.Echo/Call`, answering
 * every request with its own bytes (messages are raw bytes: no protobuf library needed). Prints its port.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- bench-only peer; not in the import map
import * as grpc from "npm:@grpc/grpc-js@^1.12.0";

const id = (b: Buffer) => b;
const server = new grpc.Server();
server.addService({
  Call: {
    path: "/bench.Echo/Call",
    requestStream: false,
    responseStream: false,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id,
  },
}, {
  Call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request),
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(port);
});
