/**
 * Object identifiers (RFC 8474): MAILBOXID, EMAILID and THREADID. An `objectid` is 1 to 255
 * characters of ALPHA, DIGIT, "-" and "_" (RFC 8474, Section 4); ours start with a letter
 * naming the kind (F for a folder, M for a message, T for a thread), as Section 8 advises, so
 * that an id never reads as a number.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { MailStoreError } from "./mail_store.ts";

/** The syntax of an `objectid` (RFC 8474, Section 9). */
export const OBJECT_ID = /^[A-Za-z0-9_-]{1,255}$/;

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/**
 * A fresh random id: 96 bits, so that it is never reused for another mailbox or message and
 * reveals nothing about the content (RFC 8474, Section 8).
 */
export function newObjectId(prefix: "F" | "M" | "T"): string {
  return prefix + hex(crypto.getRandomValues(new Uint8Array(12)));
}

/**
 * The THREADID of a thread whose first message has the Message-ID `root` (without angle
 * brackets): every message naming the same root in its References (or In-Reply-To) gets the
 * same id, whatever mailbox it lands in, without a lookup of the account's other messages.
 */
export function threadIdOf(root: string): string {
  return "T" + hex(sha256(new TextEncoder().encode("postern-thread\0" + root)).subarray(0, 12));
}

/** Returns `id` when it is a valid `objectid`; a copied store must not smuggle in others. */
export function checkObjectId(id: string): string {
  if (!OBJECT_ID.test(id)) throw new MailStoreError("cannot", "Invalid object id");
  return id;
}
