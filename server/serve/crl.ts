/**
 * The CRLs of `tls.crl`: read from PEM or DER files, each verified against its issuer among the
 * `client_ca` certificates, consulted in the handshake (a revoked serial gets
 * certificate_revoked), and reloaded on SIGHUP and whenever a file changes on disk (its mtime,
 * size or inode, polled every second: this survives editors and `mv` into place, which
 * `Deno.watchFs` on the file itself does not).
 */
import type { CryptoProvider } from "../../protocol/crypto/provider.ts";
import { type Certificate, parseCertificate } from "../../protocol/x509/certificate.ts";
import {
  type Crl,
  CrlError,
  type CrlPolicy,
  CrlSet,
  decodeCrlFile,
  isCurrent,
  verifyCrl,
} from "../../protocol/x509/crl.ts";
import type { RevocationVerdict } from "../../protocol/x509/crl.ts";
import type { CertificateIdentity, VerifiedPeer } from "../../protocol/x509/identity.ts";
import { nameToString } from "../../protocol/x509/name.ts";
import { getLogger } from "../log.ts";

const log = getLogger(["tls", "crl"]);

/** How often the CRL files are looked at for changes. */
export const CRL_POLL_MS = 1000;

/** The files and policy a CRL check is built from. */
export interface CrlSettings {
  readonly files: readonly string[];
  readonly policy: CrlPolicy;
  /** The client CA certificates (DER): the candidates for each CRL's issuer. */
  readonly clientCas: readonly Uint8Array[];
}

/** A loaded, verified set of CRLs with its policy. */
export class CrlCheck {
  readonly set: CrlSet;
  readonly policy: CrlPolicy;
  readonly #now: () => Date;
  /** CRLs already reported as out of date, so the warning comes once per CRL. */
  readonly #reportedStale = new Set<Crl>();

  constructor(set: CrlSet, policy: CrlPolicy, now: () => Date = () => new Date()) {
    this.set = set;
    this.policy = policy;
    this.#now = now;
  }

  /** Logs, once per CRL, that a CRL in use has passed its nextUpdate. */
  reportStale(): void {
    const now = this.#now();
    for (const crl of this.set.crls) {
      if (isCurrent(crl, now) || this.#reportedStale.has(crl)) continue;
      this.#reportedStale.add(crl);
      log.warn(
        "The CRL of {issuer} is out of date (next update {nextUpdate}); {consequence}",
        {
          issuer: nameToString(crl.issuer),
          nextUpdate: crl.nextUpdate?.toISOString() ?? "none",
          consequence: this.policy === "hard"
            ? "its certificates are refused until a new CRL is loaded"
            : "it still revokes what it lists",
        },
      );
    }
  }

  /** Checks a validated path (leaf first, anchor last, which is not checked). */
  checkPeer(peer: VerifiedPeer): RevocationVerdict {
    this.reportStale();
    let path: Certificate[];
    try {
      path = peer.path.slice(0, -1).map((der) => parseCertificate(der));
    } catch {
      return { ok: false, alert: "bad_certificate", reason: "Cannot parse the validated path" };
    }
    if (path.length === 0) {
      // A leaf that is itself a trust anchor has no issuer CRL to consult.
      return { ok: true };
    }
    return this.set.check(path, this.#now(), this.policy);
  }

  /** Checks an open session's leaf (the intermediates of its path are not kept). */
  checkIdentity(identity: CertificateIdentity): RevocationVerdict {
    let leaf: Certificate;
    try {
      leaf = parseCertificate(identity.der);
    } catch {
      return { ok: false, alert: "bad_certificate", reason: "Cannot parse the certificate" };
    }
    const verdict = this.set.check([leaf], this.#now(), this.policy);
    // Only a listed serial ends a session; a CRL that merely aged is for new handshakes.
    return verdict.ok || verdict.alert === "certificate_revoked" ? verdict : { ok: true };
  }
}

/**
 * Reads and verifies the CRL files. Throws `CrlError` naming the file when one cannot be read,
 * holds no CRL, or has a CRL whose signature does not verify against a client CA.
 */
export async function loadCrlCheck(
  settings: CrlSettings,
  provider: CryptoProvider,
): Promise<CrlCheck> {
  const cas = settings.clientCas.map((der) => parseCertificate(der));
  const crls: Crl[] = [];
  for (const file of settings.files) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (e) {
      throw new CrlError(`Cannot read CRL file ${file}: ${e instanceof Error ? e.message : e}`);
    }
    let found: Crl[];
    try {
      found = decodeCrlFile(bytes);
      for (const crl of found) verifyCrl(crl, cas, provider);
    } catch (e) {
      throw new CrlError(`${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
    crls.push(...found);
  }
  const set = new CrlSet(crls);
  for (const crl of set.crls) {
    log.info("CRL of {issuer}: {revoked} revoked, next update {nextUpdate}", {
      issuer: nameToString(crl.issuer),
      revoked: crl.revoked.size,
      nextUpdate: crl.nextUpdate?.toISOString() ?? "none",
    });
  }
  const check = new CrlCheck(set, settings.policy);
  // A CRL that is already out of date is reported now, not at the first handshake.
  check.reportStale();
  return check;
}

/** A stat-based fingerprint of the files, to notice any change. */
async function fileStamp(files: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const f of files) {
    try {
      const s = await Deno.stat(f);
      parts.push(`${f}:${s.mtime?.getTime()}:${s.size}:${s.ino}`);
    } catch {
      parts.push(`${f}:missing`);
    }
  }
  return parts.join("|");
}

/**
 * Calls `onChange` when any of `files` changes on disk (checked every `intervalMs`). Returns a
 * function that stops watching.
 */
export function watchCrlFiles(
  files: readonly string[],
  onChange: () => Promise<void>,
  intervalMs = CRL_POLL_MS,
): () => Promise<void> {
  if (files.length === 0) return () => Promise.resolve();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  let last: string | null = null;
  const tick = () => {
    timer = undefined;
    running = (async () => {
      const stamp = await fileStamp(files);
      if (last !== null && stamp !== last && !stopped) {
        try {
          await onChange();
        } catch (e) {
          log.error("CRL reload failed: {error}", { error: e instanceof Error ? e.message : e });
        }
      }
      last = stamp;
    })().finally(() => {
      if (!stopped) timer = setTimeout(tick, intervalMs);
    });
  };
  void fileStamp(files).then((s) => {
    last = s;
    if (!stopped) timer = setTimeout(tick, intervalMs);
  });
  return async () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    await running;
  };
}
