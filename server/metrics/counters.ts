/**
 * The key counters `postern stats` prints: plain numbers, no labels, cheap enough to keep
 * whenever the admin socket is open. `teeMetrics` feeds them and the Prometheus registry
 * from the same hooks.
 */
import type {
  AuthMechanism,
  AuthResultLabel,
  CommandResult,
  DirectoryLookupKind,
  HandshakeObservation,
  LmtpDeliveryResult,
  Metrics,
  RevocationPoint,
} from "./metrics.ts";

export class KeyCounters implements Metrics {
  readonly counts = {
    connectionsAccepted: 0,
    connectionsRefused: 0,
    bytesReceived: 0,
    bytesSent: 0,
    handshakesOk: 0,
    handshakesFailed: 0,
    alertsSent: 0,
    alertsReceived: 0,
    authenticationsOk: 0,
    authenticationsFailed: 0,
    commands: 0,
    commandsNo: 0,
    commandsBad: 0,
    directoryLookups: 0,
    directoryCacheHits: 0,
    revocations: 0,
    storeOperations: 0,
    storeErrors: 0,
    lmtpDelivered: 0,
    lmtpRefused: 0,
  };

  connectionOpened(_listener: string): void {
    this.counts.connectionsAccepted++;
  }
  connectionClosed(_listener: string): void {}
  connectionRefused(_listener: string): void {
    this.counts.connectionsRefused++;
  }
  bytesReceived(octets: number): void {
    this.counts.bytesReceived += octets;
  }
  bytesSent(octets: number): void {
    this.counts.bytesSent += octets;
  }
  handshake(o: HandshakeObservation): void {
    if (o.result === "ok") this.counts.handshakesOk++;
    else this.counts.handshakesFailed++;
  }
  tlsAlert(direction: "sent" | "received", description: string): void {
    if (description === "close_notify") return;
    if (direction === "sent") this.counts.alertsSent++;
    else this.counts.alertsReceived++;
  }
  authentication(_mechanism: AuthMechanism, result: AuthResultLabel): void {
    if (result === "ok") this.counts.authenticationsOk++;
    else this.counts.authenticationsFailed++;
  }
  directoryLookup(_kind: DirectoryLookupKind, _result: string, _seconds: number): void {
    this.counts.directoryLookups++;
  }
  directoryCacheHit(): void {
    this.counts.directoryCacheHits++;
  }
  lmtpDelivery(result: LmtpDeliveryResult): void {
    if (result === "ok") this.counts.lmtpDelivered++;
    else this.counts.lmtpRefused++;
  }

  revocation(_point: RevocationPoint): void {
    this.counts.revocations++;
  }
  imapCommand(_name: string, result: CommandResult, _seconds: number): void {
    this.counts.commands++;
    if (result === "no") this.counts.commandsNo++;
    else if (result === "bad") this.counts.commandsBad++;
  }
  storeOperation(_operation: string, ok: boolean, _seconds: number): void {
    this.counts.storeOperations++;
    if (!ok) this.counts.storeErrors++;
  }
}

/** One `Metrics` that feeds both `a` and `b`. */
export function teeMetrics(a: Metrics, b: Metrics): Metrics {
  return {
    connectionOpened: (l) => (a.connectionOpened(l), b.connectionOpened(l)),
    connectionClosed: (l) => (a.connectionClosed(l), b.connectionClosed(l)),
    connectionRefused: (l) => (a.connectionRefused(l), b.connectionRefused(l)),
    bytesReceived: (n) => (a.bytesReceived(n), b.bytesReceived(n)),
    bytesSent: (n) => (a.bytesSent(n), b.bytesSent(n)),
    handshake: (o) => (a.handshake(o), b.handshake(o)),
    tlsAlert: (d, n) => (a.tlsAlert(d, n), b.tlsAlert(d, n)),
    authentication: (m, r) => (a.authentication(m, r), b.authentication(m, r)),
    directoryLookup: (k, r, s) => (a.directoryLookup(k, r, s), b.directoryLookup(k, r, s)),
    directoryCacheHit: () => (a.directoryCacheHit(), b.directoryCacheHit()),
    revocation: (p) => (a.revocation(p), b.revocation(p)),
    lmtpDelivery: (r) => (a.lmtpDelivery(r), b.lmtpDelivery(r)),
    imapCommand: (n, r, s) => (a.imapCommand(n, r, s), b.imapCommand(n, r, s)),
    storeOperation: (o, k, s) => (a.storeOperation(o, k, s), b.storeOperation(o, k, s)),
  };
}
