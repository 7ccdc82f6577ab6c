/**
 * `postern import NAME FILE`: appends the messages of an mbox file or a Maildir folder to a
 * user's mailbox through the `MailStore`, each with its flags, date and append-time summary.
 */
import { derivedData, mimeSupport } from "../../protocol/imap/mime_support.ts";
import type { MailStore } from "../../mailstore/mail_store.ts";
import { CliError } from "./args.ts";
import {
  ImportFormatError,
  type ImportItem,
  isMaildir,
  readMaildir,
  readMbox,
} from "./mail_import.ts";
import { ProgressBar } from "./progress.ts";

export interface ImportRequest {
  readonly user: string;
  /** Path of an mbox file or a Maildir folder. */
  readonly source: string;
  /** Default INBOX. */
  readonly mailbox?: string;
  readonly maxMessageSize: number;
  /** Draw a progress bar on stderr (default: when stderr is a terminal). */
  readonly progress?: boolean;
}

export interface ImportResult {
  readonly imported: number;
  /** Messages skipped for exceeding `maxMessageSize`. */
  readonly oversized: number;
  /** The mailbox name as stored. */
  readonly mailbox: string;
}

/** Imports `request.source` into the user's mailbox. Throws `CliError` on unusable input. */
export async function importMail(store: MailStore, request: ImportRequest): Promise<ImportResult> {
  const account = await store.getAccount(request.user);
  if (account === null) {
    throw new CliError(
      `no user "${request.user}" (add it with "postern user add ${request.user}")`,
    );
  }
  const mailbox = await store.getMailbox(account.id, request.mailbox ?? "INBOX");
  if (mailbox === null) {
    throw new CliError(`user "${request.user}" has no mailbox "${request.mailbox ?? "INBOX"}"`);
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(request.source);
  } catch {
    throw new CliError(`cannot read ${request.source}: no such file or folder`);
  }
  const bar = new ProgressBar(
    "Importing",
    request.progress === undefined ? {} : { enabled: request.progress },
  );
  let imported = 0;
  let oversized = 0;
  let file: Deno.FsFile | undefined;
  try {
    let items: AsyncIterable<ImportItem>;
    if (info.isDirectory) {
      if (!(await isMaildir(request.source))) {
        throw new CliError(`${request.source} is not a Maildir (no cur/ or new/ folder)`);
      }
      items = readMaildir(request.source, request.maxMessageSize, (done, total) => {
        bar.update(done, total, `${done}/${total} messages`);
      });
    } else {
      file = await Deno.open(request.source);
      const total = info.size;
      items = readMbox(file.readable, request.maxMessageSize, (bytes) => {
        bar.update(bytes, total, `${imported} messages`);
      });
    }
    for await (const item of items) {
      if (item.kind === "oversized") {
        oversized++;
        continue;
      }
      const { raw, flags, internalDate } = item.message;
      await store.append(mailbox.id, {
        raw,
        flags,
        ...(internalDate === undefined ? {} : { internalDate }),
        ...derivedData(mimeSupport, raw),
      });
      imported++;
    }
  } catch (error) {
    if (error instanceof ImportFormatError) throw new CliError(error.message);
    throw error;
  } finally {
    bar.finish();
    try {
      file?.close();
    } catch {
      // The readable stream closes the file when it is read to the end.
    }
  }
  return { imported, oversized, mailbox: mailbox.name };
}
