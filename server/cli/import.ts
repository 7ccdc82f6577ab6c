/** `postern import`: an mbox file or a Maildir into a user's mailbox. */
import { resolve } from "node:path";
import { importMail } from "./import_mail.ts";
import { type Command, resolveConfig, withStore } from "./command.ts";

export const importCommand: Command = {
  name: "import",
  uses: ["write", "store"],
  summary: "Import an mbox file or a Maildir folder into a user's mailbox.",
  details: 'An mbox file starts with a "From " line; a Maildir is a folder with cur/ and new/.\n' +
    "Flags come from Status/X-Status headers (mbox) or the :2,FRS suffix (Maildir).",
  positionals: [{ name: "NAME" }, { name: "FILE" }],
  options: {
    mailbox: { type: "string", value: "MAILBOX", description: "target mailbox (default INBOX)" },
  },
  async run({ values, positionals, io }) {
    const config = await resolveConfig(io, values, { checkFiles: false });
    const result = await withStore(io, values, (store) =>
      importMail(store, {
        user: positionals[0]!,
        source: resolve(io.cwd, positionals[1]!),
        mailbox: typeof values.mailbox === "string" ? values.mailbox : "INBOX",
        maxMessageSize: config.limits.maxMessageSize,
      }), config);
    const skipped = result.oversized === 0
      ? ""
      : ` (${result.oversized} skipped: larger than limits.max_message_size)`;
    io.out(
      `imported ${result.imported} messages into ${positionals[0]}/${result.mailbox}${skipped}\n`,
    );
    return 0;
  },
};
