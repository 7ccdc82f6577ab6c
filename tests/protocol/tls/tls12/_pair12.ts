/** In-memory TLS 1.2 pairs: our 1.2 test client against the version-selecting server. */
import {
  acceptTls,
  type ServerConnection,
  type ServerOptions,
} from "../../../../protocol/tls/acceptor.ts";
import {
  type Client12Config,
  Tls12ClientConnection,
} from "../../../../protocol/tls/tls12/client12.ts";
import type { TlsEvent } from "../../../../protocol/tls/mod.ts";
import { type KeyFixture, keyFixture, provider } from "../_pair.ts";

export interface Pair12 {
  client: Tls12ClientConnection;
  server: ServerConnection;
  clientEvents: TlsEvent[];
  serverEvents: TlsEvent[];
}

export function makePair12(
  serverOptions: Partial<ServerOptions> = {},
  clientOptions: Partial<Client12Config> = {},
  serverKey: KeyFixture = keyFixture("P-256"),
): Pair12 {
  const server = acceptTls({
    provider,
    certificateChain: serverKey.chain,
    privateKey: serverKey.privateKey,
    minVersion: "1.2",
    ...serverOptions,
  });
  const client = new Tls12ClientConnection({
    provider,
    verifyServer: () => serverKey.publicKey,
    ...clientOptions,
  });
  return { client, server, clientEvents: [], serverEvents: [] };
}
