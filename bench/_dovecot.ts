/**
 * Dovecot as the benches' reference: mdbox, long-lived login processes, and Postern's
 * development certificate (made in the Postern test server's folder), so that both servers do
 * the same TLS work.
 */
import { join } from "node:path";
import { ensureDevPki } from "../server/cli/dev_pki.ts";
import { type RunningDovecot, startDovecot } from "../tests/_support/dovecot.ts";

/** Starts the reference Dovecot with one account; stop it with `stop()`. */
export async function startReferenceDovecot(
  posternDir: string,
  user: string,
  password: string,
  maxConnections = 10,
): Promise<RunningDovecot> {
  const pki = await ensureDevPki(join(posternDir, "certs"));
  return await startDovecot({
    user,
    password,
    certificatePath: pki.serverCertificate,
    keyPath: pki.serverKey,
    maxConnections,
    format: "mdbox",
    loginProcesses: "long-lived",
  });
}
