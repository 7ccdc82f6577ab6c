/**
 * TLS alerts (RFC 8446, Section 6) and the single place where failures become alert descriptions.
 */
import { CertificateError } from "../x509/identity.ts";
import { AlertDescription, type AlertName } from "./wire.ts";

export type { AlertName };

/**
 * A fatal protocol condition. Thrown anywhere inside the engine; the connection edge sends the
 * carried alert and closes. The message is for the log only, never for the peer.
 */
export class TlsAlert extends Error {
  readonly alert: AlertName;
  constructor(alert: AlertName, message: string) {
    super(message);
    this.name = "TlsAlert";
    this.alert = alert;
  }
}

/**
 * Error kinds (by `Error.name`) whose alert is fixed. `TlsAlert` and `CertificateError` carry
 * their own; everything unknown becomes `internal_error` so that no stack trace reaches a peer.
 */
const ERROR_KIND_ALERTS: Readonly<Record<string, AlertName>> = {
  CryptoError: "illegal_parameter",
  RangeError: "internal_error",
  TypeError: "internal_error",
};

/** Maps any thrown value to the alert to send and a reason for the log. */
export function alertFromError(error: unknown): { alert: AlertName; reason: string } {
  if (error instanceof TlsAlert) return { alert: error.alert, reason: error.message };
  if (error instanceof CertificateError) {
    // The log names the certificate at fault; the peer only ever sees the alert.
    const at = [
      error.subject !== undefined ? `subject ${error.subject}` : "",
      error.serial !== undefined ? `serial ${error.serial}` : "",
    ].filter(Boolean).join(", ");
    return { alert: error.alert, reason: at ? `${error.message} (${at})` : error.message };
  }
  if (error instanceof Error) {
    return { alert: ERROR_KIND_ALERTS[error.name] ?? "internal_error", reason: error.message };
  }
  return { alert: "internal_error", reason: "Unknown failure" };
}

/**
 * Alert names by wire code, built once: every connection that ends cleanly receives a
 * close_notify, and walking `Object.entries` for each one built some 30 arrays.
 */
const ALERT_NAMES = new Map<number, AlertName>(
  Object.entries(AlertDescription).map(([name, code]) => [code, name as AlertName]),
);

/** Looks up an alert name by its wire code, or null for an unknown code. */
export function alertNameOf(code: number): AlertName | null {
  return ALERT_NAMES.get(code) ?? null;
}
