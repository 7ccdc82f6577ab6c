/**
 * Ends the sessions of certificates the directory no longer holds, by whichever means the
 * directory allows: changes pushed by the watcher (content sync or persistent search), and the
 * periodic re-check, which runs only while no push search is live. After the watcher
 * (re)connects, every open session is re-checked once, so a change made while the connection
 * was down is not missed.
 *
 * A pushed change to an entry drops the cached answers of every certificate that maps to it;
 * the sessions on that entry are re-checked against the directory at once, or, when the entry
 * left the watched set (deleted, or its last certificate removed), revoked without asking.
 */
import { getLogger } from "@logtape/logtape";
import {
  DENIAL_ALERTS,
  type Directory,
  type DirectoryDenial,
  type RecheckSession,
} from "./directory.ts";
import {
  DirectoryWatcher,
  type EntryChangeKind,
  type RevocationMode,
  type WatcherStatus,
} from "./watcher.ts";

export interface RevocationStatus {
  /** The mode that revokes open sessions now. */
  readonly mode: RevocationMode;
  /** When the directory was last known in sync (push live: now; poll: last round); or null. */
  readonly lastSyncAt: number | null;
  readonly watcher: WatcherStatus;
}

export interface RevokerOptions {
  /**
   * Called for each session revoked, with its certificate's fingerprint, after the cached
   * directory answer is dropped. Session resumption (tickets) must invalidate here.
   */
  readonly onRevoked?: (fingerprint: string) => void;
}

const log = getLogger(["postern", "directory", "revocation"]);

export class SessionRevoker {
  readonly #directory: Directory;
  readonly #sessions: () => Iterable<RecheckSession>;
  readonly #watcher: DirectoryWatcher;
  readonly #options: RevokerOptions;
  #stopPolling: () => Promise<void> = () => Promise.resolve();
  /**
   * Re-checks asked for by pushed changes, coalesced: certificates by fingerprint, or every
   * session. One round runs at a time, so a burst of changes (a bulk import) queues here
   * instead of overflowing the directory's lookup queue, whose refusals would end sessions.
   */
  readonly #pendingFingerprints = new Set<string>();
  #pendingAll = false;
  #pendingUnknown = false;
  #draining: Promise<void> | null = null;
  #stopped = false;

  constructor(
    directory: Directory,
    sessions: () => Iterable<RecheckSession>,
    options: RevokerOptions = {},
  ) {
    this.#directory = directory;
    this.#options = options;
    // pretenured: one per revoker, which lives as long as the server.
    this.#sessions = () => this.#wrap(sessions());
    this.#watcher = new DirectoryWatcher(directory.config, {
      onChange: (dn, kind, previousDn) => this.#onChange(dn, kind, previousDn),
      onResync: () => this.#request("all"),
    });
  }

  start(): void {
    this.#watcher.start();
    this.#stopPolling = this.#directory.startRecheck(this.#sessions, {
      skip: () => this.#watcher.status.live,
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watcher.stop();
    await this.#stopPolling();
    await this.#draining;
  }

  get status(): RevocationStatus {
    const watcher = this.#watcher.status;
    return {
      mode: watcher.mode,
      lastSyncAt: watcher.live ? watcher.lastSyncAt : this.#directory.lastRecheckAt,
      watcher,
    };
  }

  #onChange(dn: string, kind: EntryChangeKind, previousDn: string | null): void {
    if (this.#stopped) return;
    const fingerprints = new Set(this.#directory.invalidateEntry(dn));
    if (previousDn !== null) {
      for (const fp of this.#directory.invalidateEntry(previousDn)) fingerprints.add(fp);
    }
    log.debug("Directory change {kind} of {dn}: {count} certificates concerned", {
      kind,
      dn,
      count: fingerprints.size,
    });
    if (kind === "delete" && fingerprints.size > 0) {
      // The entry left the watched set: its certificates are gone, no need to ask.
      const denial: DirectoryDenial = {
        ok: false,
        alert: DENIAL_ALERTS.not_in_entry,
        reason: "not_in_entry",
        detail: "The directory reported that the entry no longer holds a certificate",
      };
      for (const s of this.#sessions()) {
        if (!fingerprints.has(s.identity.fingerprintSha256)) continue;
        try {
          s.revoke(denial);
        } catch (e) {
          log.error("Revoking a session failed: {error}", { error: e });
        }
      }
      return;
    }
    this.#request(fingerprints);
  }

  /**
   * Queues a re-check of the sessions of `what` (fingerprints) or of every session. Sessions
   * whose entry is not known (evicted from the directory's map) join every round, to be safe.
   */
  #request(what: "all" | Iterable<string>): void {
    if (this.#stopped) return;
    if (what === "all") this.#pendingAll = true;
    else for (const fp of what) this.#pendingFingerprints.add(fp);
    this.#pendingUnknown = true;
    this.#draining ??= this.#drain();
  }

  async #drain(): Promise<void> {
    // Let #request store this promise before the loop can end and clear it.
    await Promise.resolve();
    while (
      !this.#stopped &&
      (this.#pendingAll || this.#pendingUnknown || this.#pendingFingerprints.size > 0)
    ) {
      const all = this.#pendingAll;
      const fingerprints = new Set(this.#pendingFingerprints);
      this.#pendingAll = false;
      this.#pendingUnknown = false;
      this.#pendingFingerprints.clear();
      // The sessions open now: those that closed since the change need no check.
      const sessions = [...this.#sessions()].filter((s) => {
        const fp = s.identity.fingerprintSha256;
        return all || fingerprints.has(fp) || this.#directory.entryOf(fp) === undefined;
      });
      try {
        await this.#directory.recheckNow(sessions);
      } catch (e) {
        log.error("Directory re-check failed: {error}", { error: e });
      }
    }
    // No await between the loop's last test and this: a request cannot slip in unseen.
    this.#draining = null;
  }

  /** The sessions, with revocation also forgetting the certificate and telling the hooks. */
  *#wrap(sessions: Iterable<RecheckSession>): Iterable<RecheckSession> {
    for (const s of sessions) {
      yield {
        identity: s.identity,
        revoke: (denial) => {
          const fp = s.identity.fingerprintSha256;
          this.#directory.forget(fp);
          this.#options.onRevoked?.(fp);
          s.revoke(denial);
        },
      };
    }
  }
}
