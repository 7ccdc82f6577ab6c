/**
 * The re-check of live certificate sessions: a round asks the directory again about every
 * distinct certificate among the sessions (bypassing the cache) and revokes the sessions of
 * those refused; a timer runs a round every `recheckIntervalMs` unless a live push search makes
 * it unnecessary.
 */
import { getLogger } from "@logtape/logtape";
import type { CertificateIdentity } from "../../protocol/x509/identity.ts";
import type { DirectoryDenial, DirectoryVerdict } from "./verdict.ts";

const log = getLogger(["postern", "directory"]);

/** A live certificate session, as the re-check sees it. */
export interface RecheckSession {
  readonly identity: CertificateIdentity;
  /** Ends the session; called at most once per re-check round. */
  revoke(denial: DirectoryDenial): void;
}

/**
 * One round: `check` each distinct certificate of `sessions` with at most `concurrency` in
 * flight (so a round never floods the lookup queue and turns into directory_busy refusals of
 * its own making), revoking every session of a refused one. Stops early once `stopped()`.
 */
export async function recheckRound(
  sessions: () => Iterable<RecheckSession>,
  check: (identity: CertificateIdentity) => Promise<DirectoryVerdict>,
  concurrency: number,
  stopped: () => boolean,
): Promise<void> {
  const byFingerprint = new Map<string, RecheckSession[]>();
  try {
    for (const s of sessions()) {
      const fp = s.identity.fingerprintSha256;
      const group = byFingerprint.get(fp);
      if (group === undefined) byFingerprint.set(fp, [s]);
      else group.push(s);
    }
  } catch (e) {
    log.error("Cannot list sessions for the directory re-check: {error}", { error: e });
    return;
  }
  const groups = [...byFingerprint.values()];
  let next = 0;
  const worker = async () => {
    for (;;) {
      const group = groups[next++];
      if (group === undefined || stopped()) return;
      const first = group[0];
      if (first === undefined) continue;
      const verdict = await check(first.identity);
      if (verdict.ok || stopped()) continue;
      for (const s of group) {
        try {
          s.revoke(verdict);
        } catch (e) {
          log.error("Revoking a session failed: {error}", { error: e });
        }
      }
    }
  };
  const workers = Math.min(concurrency, groups.length);
  await Promise.all(Array.from({ length: workers }, worker));
}

/**
 * Runs `round` every `intervalMs` (0: never), skipping it while `skip()` holds, until the
 * returned function is called; that function resolves once a round in progress has finished.
 */
export function scheduleRechecks(
  intervalMs: number,
  round: (stopped: () => boolean) => Promise<void>,
  skip?: () => boolean,
): () => Promise<void> {
  if (intervalMs === 0) return () => Promise.resolve();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    timer = setTimeout(() => {
      timer = undefined;
      // A live push search makes the round unnecessary: changes arrive as they happen.
      const run = skip?.() === true ? Promise.resolve() : round(() => stopped);
      running = run.finally(() => {
        if (!stopped) schedule();
      });
    }, intervalMs);
  };
  schedule();
  return async () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    await running;
  };
}
