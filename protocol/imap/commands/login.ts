/** LOGIN (RFC 9051, Section 6.2.3): refused on an unencrypted connection (LOGINDISABLED). */
import type { CommandContext, CommandSpec, Completion } from "../context.ts";
import { ImapError } from "../errors.ts";

export interface LoginArgs {
  readonly user: string;
  readonly password: string;
}

/** Completes a successful authentication: loads the account and moves to authenticated. */
export async function authenticated(ctx: CommandContext, accountName: string): Promise<Completion> {
  const account = await ctx.loadAccount(accountName);
  ctx.setState({ kind: "authenticated", account });
  return { code: `CAPABILITY ${ctx.capabilities().join(" ")}`, text: "Logged in" };
}

/** Runs a password check (LOGIN, AUTHENTICATE PLAIN) with the common refusals. */
export async function passwordLogin(
  ctx: CommandContext,
  user: string,
  password: string,
): Promise<Completion> {
  if (!ctx.tls) {
    throw new ImapError("NO", "Encryption is required to log in", "PRIVACYREQUIRED");
  }
  const result = await ctx.authenticator.login(user, password, ctx.authContext);
  if (result === null) {
    ctx.authFailed();
    ctx.warn("IMAP login failed", { user, peer: ctx.authContext.peer });
    throw new ImapError("NO", "Authentication failed", "AUTHENTICATIONFAILED");
  }
  return await authenticated(ctx, result.accountName);
}

export const loginCommand: CommandSpec = {
  name: "LOGIN",
  states: ["notAuthenticated"],
  allowsExpunge: false,
  async run(ctx, r) {
    r.sp();
    const user = r.astring("user name");
    r.sp();
    const password = r.astring("password");
    r.end();
    return await passwordLogin(ctx, user, password);
  },
};
