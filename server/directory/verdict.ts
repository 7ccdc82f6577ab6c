/**
 * What the directory answers: a certificate accepted for a user or refused with the TLS alert
 * its reason calls for, a password login's verdict, and an LMTP recipient lookup.
 */
/** Why a certificate was refused, as log lines name it. */
export type DirectoryDenialReason =
  /** The entry exists but no longer holds this certificate: it counts as revoked. */
  | "not_in_entry"
  /** No entry maps to the certificate. */
  | "no_entry"
  /** More than one entry maps to the certificate; which user it is, is ambiguous. */
  | "several_entries"
  /** The certificate lacks the field the lookup needs (e.g. no email for `{cert.san.email}`). */
  | "no_lookup_value"
  /** The entry has no value for the username attribute. */
  | "no_username"
  /** The directory could not be reached, or did not answer in time. */
  | "directory_unavailable"
  /** The directory answered with an error (e.g. the service bind was refused). */
  | "directory_error"
  /** Too many lookups are already waiting. */
  | "directory_busy";

/** The TLS alert each refusal is sent with (RFC 8446, Section 6.2). */
export const DENIAL_ALERTS = {
  not_in_entry: "certificate_revoked",
  no_entry: "access_denied",
  several_entries: "access_denied",
  no_lookup_value: "access_denied",
  no_username: "access_denied",
  // The failure lies with us, not with the peer's certificate: RFC 8446 defines internal_error
  // for "an internal error unrelated to the peer". access_denied would tell a valid user that
  // the server decided against them, which it did not.
  directory_unavailable: "internal_error",
  directory_error: "internal_error",
  directory_busy: "internal_error",
} as const satisfies Record<DirectoryDenialReason, string>;

export type DirectoryAlert = (typeof DENIAL_ALERTS)[DirectoryDenialReason];

/** A refused certificate: the alert to send, and the case and detail for the log. */
export interface DirectoryDenial {
  readonly ok: false;
  readonly alert: DirectoryAlert;
  readonly reason: DirectoryDenialReason;
  /** For the log, never for the peer. Holds no secrets. */
  readonly detail: string;
}

/** An accepted certificate and the user it maps to. */
export interface DirectoryAcceptance {
  readonly ok: true;
  readonly username: string;
  readonly entryDn: string;
  /** Whether the answer came from the cache rather than from the directory just now. */
  readonly cached: boolean;
  /** The entry's quota attribute (`DirectoryConfig.quotaAttribute`), when read just now. */
  readonly quota?: EntryQuota;
  /** The MESSAGE quota of the entry, when `messageQuotaAttribute` is set. */
  readonly messageQuota?: EntryQuota;
}

/** An entry's STORAGE quota in octets, or null when the entry has no usable value. */
export type EntryQuota = number | null;

export type DirectoryVerdict = DirectoryAcceptance | DirectoryDenial;

/** Why a password login was refused. */
export type PasswordDenialReason =
  | "empty_password"
  | "invalid_username"
  | "no_entry"
  | "several_entries"
  | "invalid_credentials"
  | "directory_unavailable"
  | "directory_error"
  | "directory_busy";

export type PasswordVerdict =
  | {
    readonly ok: true;
    readonly username: string;
    readonly quota?: EntryQuota;
    readonly messageQuota?: EntryQuota;
  }
  | { readonly ok: false; readonly reason: PasswordDenialReason; readonly detail: string };

/** Who receives mail for an address (LMTP RCPT), as the directory answers. */
export type RecipientLookup =
  | {
    readonly kind: "found";
    readonly username: string;
    readonly quota?: EntryQuota;
    readonly messageQuota?: EntryQuota;
  }
  | { readonly kind: "none" }
  | { readonly kind: "failed"; readonly detail: string };

/** A refusal of a certificate for `reason`, sent with that reason's alert. */
export function denial<R extends DirectoryDenialReason>(
  reason: R,
  detail: string,
): DirectoryDenial & { readonly reason: R } {
  return { ok: false, alert: DENIAL_ALERTS[reason], reason, detail };
}

/** Whether a refusal means the directory, not the certificate, is at fault. */
export function isDirectoryFailure(reason: DirectoryDenialReason): reason is FailureReason {
  return reason === "directory_unavailable" || reason === "directory_error" ||
    reason === "directory_busy";
}

/** The refusals that mean the directory, not the certificate, is at fault. */
export type FailureReason = "directory_unavailable" | "directory_error" | "directory_busy";
