/** imapflow (npm), the IMAP library of many Node.js mail tools, as a client of a test server. */
import { ImapFlow } from "imapflow";
import type { RunningPostern } from "./postern.ts";

/** An imapflow client for `postern` over implicit TLS, logging in as `user`; not yet connected. */
export function imapflowClient(
  postern: RunningPostern,
  user: { readonly name: string; readonly password: string },
): ImapFlow {
  return new ImapFlow({
    host: "127.0.0.1",
    port: postern.implicitPort,
    secure: true,
    tls: { ca: [postern.caPem], servername: "localhost" },
    auth: { user: user.name, pass: user.password },
    logger: false,
  });
}
