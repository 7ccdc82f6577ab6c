/** `imap:` — protocol behaviour. */
import type * as v from "valibot";
import { bool, optional, section } from "./_schema.ts";

export const imapSchema = section({
  preauth_with_certificate: optional(bool(), false),
}, "IMAP protocol behaviour");

export interface ImapConfig {
  /**
   * Greet a client with a valid certificate as PREAUTH (RFC 9051, Section 7.1.4) instead of
   * waiting for AUTHENTICATE EXTERNAL. Default false.
   */
  readonly preauthWithCertificate: boolean;
}

export function readImap(file: v.InferOutput<typeof imapSchema>): ImapConfig {
  return { preauthWithCertificate: file.preauth_with_certificate };
}
