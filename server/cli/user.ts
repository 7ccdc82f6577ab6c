/** `postern user …`: local accounts, their passwords and mail addresses. */
import { resolve } from "node:path";
import { hashPassword } from "../../mailstore/password.ts";
import { CliError } from "./args.ts";
import { readPassword } from "./password_prompt.ts";
import { importUsers, readImportFile } from "./user_import.ts";
import { type Command, requireAccount, resolveConfig, withStore } from "./command.ts";

export const userCommands: readonly Command[] = [
  {
    name: "user add",
    uses: ["write", "store"],
    summary: "Add a local account. The password is read from stdin when it is not a terminal.",
    positionals: [{ name: "NAME" }],
    options: {
      "no-password": {
        type: "boolean",
        description: "no password: the user logs in with a certificate only",
      },
      address: {
        type: "string",
        value: "ADDRESS",
        description: "a mail address delivered to this user over LMTP (repeatable)",
      },
    },
    async run({ values, positionals, lists, io }) {
      const name = positionals[0]!;
      const config = await resolveConfig(io, values, { checkFiles: false });
      const addresses = lists.address ?? [];
      await withStore(io, values, async (store) => {
        if ((await store.getAccount(name)) !== null) {
          throw new CliError(`user "${name}" already exists`);
        }
        for (const address of addresses) {
          const owner = await store.findAccountByAddress(address);
          if (owner !== null) {
            throw new CliError(`address "${address}" already belongs to user "${owner.name}"`);
          }
          if (!/^[^@\s<>]+@[^@\s<>]+$/.test(address)) {
            throw new CliError(`"${address}" is not a mail address (local@domain)`);
          }
        }
        const hash = values["no-password"] === true ? null : hashPassword(
          await readPassword(`Password for ${name}: `, true, io.stdin),
          config.auth.scryptCost,
        );
        const account = await store.createAccount(name, hash);
        for (const address of addresses) await store.addAddress(account.id, address);
      }, config);
      io.out(`user "${name}" added\n`);
      return 0;
    },
  },
  {
    name: "user address",
    uses: ["write", "store"],
    summary: "Add or remove a local account's mail addresses (LMTP recipients); list them.",
    positionals: [{ name: "NAME" }],
    options: {
      add: { type: "string", value: "ADDRESS", description: "address to add (repeatable)" },
      remove: { type: "string", value: "ADDRESS", description: "address to remove (repeatable)" },
    },
    async run({ values, positionals, lists, io }) {
      const name = positionals[0]!;
      const addresses = await withStore(io, values, async (store) => {
        const account = await store.getAccount(name);
        if (account === null) throw new CliError(`no user "${name}"`);
        for (const address of lists.add ?? []) {
          if (!/^[^@\s<>]+@[^@\s<>]+$/.test(address)) {
            throw new CliError(`"${address}" is not a mail address (local@domain)`);
          }
          const owner = await store.findAccountByAddress(address);
          if (owner !== null && owner.id !== account.id) {
            throw new CliError(`address "${address}" already belongs to user "${owner.name}"`);
          }
          await store.addAddress(account.id, address);
        }
        const own = new Set(await store.listAddresses(account.id));
        for (const address of lists.remove ?? []) {
          if (!own.has(address.trim().toLowerCase())) {
            throw new CliError(`user "${name}" has no address "${address}"`);
          }
          await store.removeAddress(address);
        }
        return await store.listAddresses(account.id);
      });
      for (const address of addresses) io.out(`${address}\n`);
      return 0;
    },
  },
  {
    name: "user passwd",
    uses: ["write", "store"],
    summary: "Set a local account's password (read from stdin when it is not a terminal).",
    positionals: [{ name: "NAME" }],
    options: {},
    async run({ values, positionals, io }) {
      const name = positionals[0]!;
      const config = await resolveConfig(io, values, { checkFiles: false });
      // A running server notices the new hash at the user's next login: its cache entries are
      // stamped with the hash they were checked against.
      await withStore(io, values, async (store) => {
        await requireAccount(store, name);
        const hash = hashPassword(
          await readPassword(`New password for ${name}: `, true, io.stdin),
          config.auth.scryptCost,
        );
        await store.setPasswordHash(name, hash);
      }, config);
      io.out(`password of "${name}" changed\n`);
      return 0;
    },
  },
  {
    name: "user remove",
    uses: ["write", "store"],
    summary: "Remove a local account and all its mail.",
    positionals: [{ name: "NAME" }],
    options: {},
    async run({ values, positionals, io }) {
      const name = positionals[0]!;
      await withStore(io, values, async (store) => {
        await requireAccount(store, name);
        await store.deleteAccount(name);
      });
      io.out(`user "${name}" removed\n`);
      return 0;
    },
  },
  {
    name: "user import",
    uses: ["write", "store"],
    summary: "Add or update local accounts from a Dovecot passwd-file.",
    details: "Each line is user:{SCHEME}hash[:uid:gid:gecos:home:shell:extra], or user:hash.\n" +
      "Schemes kept as they are: {SHA512-CRYPT}, {SHA256-CRYPT}, {BLF-CRYPT}, {ARGON2ID},\n" +
      "and bare $6$, $5$, $2y$/$2b$/$2a$ and $argon2id$ hashes; each is replaced by scrypt at\n" +
      "the user's first successful login. {PLAIN} passwords are hashed with scrypt now.\n" +
      "Existing accounts get the new password hash; their mail is kept.",
    positionals: [{ name: "FILE" }],
    options: {},
    async run({ values, positionals, io }) {
      const config = await resolveConfig(io, values, { checkFiles: false });
      const path = resolve(io.cwd, positionals[0]!);
      const text = await readImportFile(path);
      const result = await withStore(
        io,
        values,
        (store) => importUsers(store, text, config.auth.scryptCost),
        config,
      );
      for (const problem of result.problems) {
        io.err(`${positionals[0]}:${problem.line}: ${problem.message}\n`);
      }
      io.out(
        `${result.added} added, ${result.updated} updated, ${result.problems.length} skipped\n`,
      );
      return result.problems.length === 0 ? 0 : 1;
    },
  },
  {
    name: "user list",
    uses: ["write", "store"],
    summary: "List the local accounts.",
    positionals: [],
    options: {},
    async run({ values, io }) {
      const rows = await withStore(io, values, async (store) => {
        const out: [string, string, string[]][] = [];
        for (const account of await store.listAccounts()) {
          const kind = account.passwordHash === null ? "certificate only" : "password";
          out.push([account.name, kind, await store.listAddresses(account.id)]);
        }
        return out;
      });
      for (const [name, kind, addresses] of rows) {
        io.out(`${name}\t${kind}${addresses.length === 0 ? "" : `\t${addresses.join(",")}`}\n`);
      }
      return 0;
    },
  },
];
