/**
 * The IMAP ENVELOPE structure (RFC 9051, Section 7.5.2; RFC 3501, Section 7.4.2), built from the
 * raw (not RFC 2047-decoded) header values of a message.
 */

import { type Address, type Mailbox, parseAddressList } from "./header.ts";
import { nstring } from "./imap_string.ts";
import { headerValue, type MimePart } from "./parse.ts";

/**
 * Returns the ENVELOPE s-expression of a message part (the root, or the `message` of a
 * message/rfc822 part): `(date subject from sender reply-to to cc bcc in-reply-to message-id)`.
 * Sender and Reply-To default to From when absent or empty.
 */
export function envelope(part: MimePart): string {
  const get = (k: string): string | null => headerValue(part, k);
  const from = addressList(get("from"));
  const sender = addressList(get("sender"));
  const replyTo = addressList(get("reply-to"));
  return "(" + [
    nstring(get("date")),
    nstring(get("subject")),
    from,
    sender === "NIL" ? from : sender,
    replyTo === "NIL" ? from : replyTo,
    addressList(get("to")),
    addressList(get("cc")),
    addressList(get("bcc")),
    nstring(get("in-reply-to")),
    nstring(get("message-id")),
  ].join(" ") + ")";
}

/** Encodes an address list; an absent or empty list is NIL. */
function addressList(value: string | null): string {
  if (value === null) return "NIL";
  const list = parseAddressList(value);
  if (list.length === 0) return "NIL";
  return "(" + list.map(addressEntries).join("") + ")";
}

function addressEntries(a: Address): string {
  if (a.kind === "mailbox") return mailbox(a);
  // Group syntax: a start marker with the group name as mailbox, then its members, then an
  // end marker (RFC 9051, Section 7.5.2).
  return "(NIL NIL " + nstring(a.name) + " NIL)" + a.members.map(mailbox).join("") +
    "(NIL NIL NIL NIL)";
}

function mailbox(m: Mailbox): string {
  return "(" + nstring(m.name) + " " + nstring(m.route) + " " + nstring(m.local) + " " +
    nstring(m.domain) + ")";
}
