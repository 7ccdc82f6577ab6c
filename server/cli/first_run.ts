/**
 * The first run without a config file: a demo account with a password and a client certificate
 * (PEM and PKCS#12), so a newcomer can read mail in a real client within minutes. A second
 * start reuses what the first one made and prints the same instructions.
 */
import { join } from "node:path";
import { hashPassword } from "../../mailstore/password.ts";
import { openConfiguredStore } from "../serve/store.ts";
import type { Config } from "../config/mod.ts";
import { type DevCa, issueClientCertificate } from "./dev_pki.ts";

export const DEMO_USER = "demo";

export interface DemoAccount {
  readonly user: string;
  readonly password: string;
  readonly p12Password: string;
  readonly certificate: string;
  readonly key: string;
  readonly p12: string;
  readonly created: boolean;
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, "x");
}

/** Creates the demo account and its certificate once; later calls return the saved ones. */
export async function ensureDemoAccount(
  config: Config,
  certsDir: string,
  ca?: DevCa,
): Promise<DemoAccount> {
  const secretsFile = join(config.dataDir, "demo-credentials.json");
  const paths = {
    certificate: join(certsDir, `${DEMO_USER}.pem`),
    key: join(certsDir, `${DEMO_USER}.key`),
    p12: join(certsDir, `${DEMO_USER}.p12`),
  };
  try {
    const saved = JSON.parse(await Deno.readTextFile(secretsFile)) as {
      password: string;
      p12Password: string;
    };
    await Deno.stat(paths.p12);
    return { user: DEMO_USER, ...saved, ...paths, created: false };
  } catch {
    // Not made yet (or incomplete): make it now.
  }
  const password = randomSecret();
  const p12Password = randomSecret();
  const store = await openConfiguredStore(config);
  try {
    const hash = hashPassword(password);
    if (await store.getAccount(DEMO_USER)) await store.setPasswordHash(DEMO_USER, hash);
    else await store.createAccount(DEMO_USER, hash);
    const inbox = await store.getMailbox((await store.getAccount(DEMO_USER))!.id, "INBOX");
    if (inbox && inbox.messages === 0) {
      await store.append(inbox.id, { raw: new TextEncoder().encode(welcomeMessage()) });
    }
  } finally {
    await store.close();
  }
  await issueClientCertificate(certsDir, DEMO_USER, {
    p12Password,
    force: true,
    ...(ca ? { ca } : {}),
  });
  await Deno.writeTextFile(secretsFile, JSON.stringify({ password, p12Password }), { mode: 0o600 });
  await Deno.chmod(secretsFile, 0o600);
  return { user: DEMO_USER, password, p12Password, ...paths, created: true };
}

function welcomeMessage(): string {
  return [
    "From: Postern <postmaster@localhost>",
    "To: demo@localhost",
    "Subject: Welcome to Postern",
    `Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
    "Message-ID: <welcome@postern.localhost>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "This message was delivered by Postern's first run. Your demo account works.",
    "",
  ].join("\r\n");
}

/** How to connect, for the terminal. */
export function connectInstructions(
  demo: DemoAccount,
  caPath: string,
  implicitPort: number,
  starttlsPort: number | null,
): string {
  return [
    "",
    `Postern is running. Demo account: ${demo.user} / ${demo.password}`,
    "",
    "Read mail with curl:",
    `  curl --cacert ${caPath} -u '${demo.user}:${demo.password}' 'imaps://127.0.0.1:${implicitPort}/INBOX;UID=1'`,
    "Or log in with the demo client certificate:",
    `  curl --cacert ${caPath} --cert ${demo.certificate} --key ${demo.key} --login-options AUTH=EXTERNAL -u ${demo.user}: 'imaps://127.0.0.1:${implicitPort}/'`,
    ...(starttlsPort === null ? [] : [`STARTTLS is offered on 127.0.0.1:${starttlsPort}.`]),
    "",
    "Thunderbird:",
    `  1. Settings > Privacy & Security > Certificates > Manage Certificates > Authorities > Import: ${caPath}`,
    '     and tick "This certificate can identify websites".',
    `  2. Your Certificates > Import: ${demo.p12} (password: ${demo.p12Password}).`,
    `  3. Add a mail account: IMAP server 127.0.0.1, port ${implicitPort}, SSL/TLS, user ${demo.user},`,
    '     authentication "Normal password" (the password above) or "TLS Certificate".',
    "",
  ].join("\n");
}
