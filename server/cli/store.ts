/** `postern store …`: moving mail between stores (SQLite, PostgreSQL). */
import { resolve } from "node:path";
import { loadConfig } from "../config/mod.ts";
import { openConfiguredStore } from "../serve/store.ts";
import { copyStore } from "../../mailstore/transfer.ts";
import { UsageError } from "./args.ts";
import type { Command } from "./command.ts";

export const storeCommands: readonly Command[] = [
  {
    name: "store copy",
    uses: ["net", "write"],
    summary: "Copy every account from one configuration's store to another's, exactly.",
    details: "UIDVALIDITY, UIDs, MODSEQs, flags, dates, subscriptions, addresses and expunge\n" +
      "records are kept, so clients synchronised before the move do not resync. Works both\n" +
      "ways between SQLite and PostgreSQL. The destination must hold no account; stop the\n" +
      "servers on the source first.",
    positionals: [],
    options: {
      from: { type: "string", value: "CONFIG", description: "configuration of the source" },
      to: { type: "string", value: "CONFIG", description: "configuration of the destination" },
    },
    async run({ values, io }) {
      if (typeof values.from !== "string" || typeof values.to !== "string") {
        throw new UsageError("store copy needs --from CONFIG and --to CONFIG", "store copy");
      }
      const load = (path: string) =>
        loadConfig(resolve(io.cwd, path), { checkFiles: false, displayName: path });
      const [fromConfig, toConfig] = [await load(values.from), await load(values.to)];
      const from = await openConfiguredStore(fromConfig);
      try {
        const to = await openConfiguredStore(toConfig);
        try {
          const summary = await copyStore(from, to, (line) => io.err(`${line}\n`));
          io.out(
            `copied ${summary.accounts} accounts, ${summary.mailboxes} mailboxes, ` +
              `${summary.messages} messages (${summary.bytes} bytes)\n`,
          );
        } finally {
          await to.close();
        }
      } finally {
        await from.close();
      }
      return 0;
    },
  },
];
