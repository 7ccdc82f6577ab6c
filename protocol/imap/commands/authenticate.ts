/**
 * AUTHENTICATE (RFC 9051, Section 6.2.2) with PLAIN (RFC 4616) and EXTERNAL (RFC 4422,
 * Appendix A), with an initial response (SASL-IR, RFC 4959) or after a `+` continuation.
 * EXTERNAL is offered only when the TLS layer verified a client certificate; Thunderbird sends
 * its initial response even without SASL-IR, and curl sends `=` for an empty one.
 */
import type { CommandContext, CommandSpec, Completion, Pending } from "../context.ts";
import { ImapError } from "../errors.ts";
import { authenticated, passwordLogin } from "./login.ts";

type Mechanism = "PLAIN" | "EXTERNAL";

/** Longest decoded SASL response accepted. */
const MAX_RESPONSE = 4096;

/** Decodes a SASL response: `=` is empty, otherwise strict base64 (RFC 4959, Section 3). */
export function decodeSaslResponse(text: string): Uint8Array {
  if (text === "=") return new Uint8Array(0);
  if (text.length > (MAX_RESPONSE * 4) / 3 + 4 || text.length % 4 !== 0) {
    throw new ImapError("BAD", "Invalid base64 in SASL response");
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new ImapError("BAD", "Invalid base64 in SASL response");
  }
  const bin = atob(text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ImapError("BAD", "SASL response is not UTF-8");
  }
}

async function finishPlain(ctx: CommandContext, response: Uint8Array): Promise<Completion> {
  const first = response.indexOf(0);
  const second = first < 0 ? -1 : response.indexOf(0, first + 1);
  if (first < 0 || second < 0) throw new ImapError("BAD", "Malformed PLAIN response");
  const authzid = decodeText(response.subarray(0, first));
  const authcid = decodeText(response.subarray(first + 1, second));
  const password = decodeText(response.subarray(second + 1));
  if (authzid !== "" && authzid !== authcid) {
    ctx.authFailed();
    throw new ImapError("NO", "Authorization identity not permitted", "AUTHORIZATIONFAILED");
  }
  return await passwordLogin(ctx, authcid, password);
}

async function finishExternal(ctx: CommandContext, response: Uint8Array): Promise<Completion> {
  const identity = ctx.identity;
  const external = ctx.authenticator.external?.bind(ctx.authenticator);
  if (identity === null || external === undefined) {
    throw new ImapError("NO", "No verified client certificate", "AUTHENTICATIONFAILED");
  }
  const authzid = decodeText(response);
  const result = await external(identity, authzid, ctx.authContext);
  if (result === null) {
    ctx.authFailed();
    ctx.warn("IMAP certificate login failed", {
      subject: identity.subject,
      authzid,
      peer: ctx.authContext.peer,
    });
    throw new ImapError("NO", "Certificate is not valid for this account", "AUTHENTICATIONFAILED");
  }
  return await authenticated(ctx, result.accountName);
}

function finish(ctx: CommandContext, mechanism: Mechanism, response: Uint8Array) {
  return mechanism === "PLAIN" ? finishPlain(ctx, response) : finishExternal(ctx, response);
}

export const authenticateCommand: CommandSpec = {
  name: "AUTHENTICATE",
  states: ["notAuthenticated"],
  allowsExpunge: false,
  async run(ctx, r) {
    r.sp();
    const name = r.keyword("SASL mechanism");
    let initial: string | null = null;
    if (r.trySp()) initial = r.chars((c) => c > 0x20 && c < 0x7f);
    r.end();
    let mechanism: Mechanism;
    if (name === "PLAIN") {
      if (!ctx.tls) {
        throw new ImapError("NO", "Encryption is required to log in", "PRIVACYREQUIRED");
      }
      mechanism = "PLAIN";
    } else if (name === "EXTERNAL") {
      if (ctx.identity === null || ctx.authenticator.external === undefined) {
        throw new ImapError("NO", "No verified client certificate", "AUTHENTICATIONFAILED");
      }
      mechanism = "EXTERNAL";
    } else {
      throw new ImapError("NO", "Unsupported authentication mechanism", "CANNOT");
    }
    if (initial !== null) return await finish(ctx, mechanism, decodeSaslResponse(initial));
    ctx.awaitInput({ kind: "sasl", tag: ctx.tag, mechanism });
    ctx.out.line("+ ");
    return null;
  },
};

/** Handles the client's line after the `+` continuation; `*` cancels (RFC 9051, 6.2.2). */
export async function continueAuthenticate(
  ctx: CommandContext,
  pending: Extract<Pending, { kind: "sasl" }>,
  line: string,
): Promise<Completion> {
  if (line === "*") throw new ImapError("BAD", "Authentication cancelled");
  const response = line === "" ? new Uint8Array(0) : decodeSaslResponse(line);
  return await finish(ctx, pending.mechanism, response);
}
