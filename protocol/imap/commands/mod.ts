/** The command table: every command the session accepts, by upper-cased name. */
import type { CommandSpec } from "../context.ts";
import { appendCommand } from "./append.ts";
import { authenticateCommand } from "./authenticate.ts";
import { capabilityCommand } from "./capability.ts";
import { closeCommand, unselectCommand } from "./close.ts";
import { compressCommand } from "./compress.ts";
import { copyCommand, moveCommand, uidCopyCommand, uidMoveCommand } from "./copy.ts";
import { enableCommand } from "./enable.ts";
import { expungeCommand, uidExpungeCommand } from "./expunge.ts";
import { fetchCommand, uidFetchCommand } from "./fetch.ts";
import { getQuotaCommand } from "./getquota.ts";
import { getQuotaRootCommand } from "./getquotaroot.ts";
import { idCommand } from "./id.ts";
import { idleCommand } from "./idle.ts";
import { listCommand, lsubCommand } from "./list.ts";
import { loginCommand } from "./login.ts";
import { logoutCommand } from "./logout.ts";
import { createCommand } from "./create.ts";
import { deleteCommand } from "./delete.ts";
import { renameCommand } from "./rename.ts";
import { subscribeCommand, unsubscribeCommand } from "./subscribe.ts";
import { namespaceCommand } from "./namespace.ts";
import { checkCommand, noopCommand } from "./noop.ts";
import { searchCommand, uidSearchCommand } from "./search.ts";
import { examineCommand, selectCommand } from "./select.ts";
import { sortCommand, uidSortCommand } from "./sort.ts";
import { cancelUpdateCommand } from "./cancelupdate.ts";
import { starttlsCommand } from "./starttls.ts";
import { statusCommand } from "./status.ts";
import { storeCommand, uidStoreCommand } from "./store.ts";
import { threadCommand, uidThreadCommand } from "./thread.ts";

const ALL: readonly CommandSpec[] = [
  capabilityCommand,
  noopCommand,
  logoutCommand,
  starttlsCommand,
  loginCommand,
  authenticateCommand,
  enableCommand,
  idCommand,
  namespaceCommand,
  selectCommand,
  examineCommand,
  createCommand,
  deleteCommand,
  renameCommand,
  subscribeCommand,
  unsubscribeCommand,
  listCommand,
  lsubCommand,
  statusCommand,
  appendCommand,
  checkCommand,
  closeCommand,
  unselectCommand,
  expungeCommand,
  uidExpungeCommand,
  searchCommand,
  uidSearchCommand,
  sortCommand,
  uidSortCommand,
  threadCommand,
  uidThreadCommand,
  fetchCommand,
  uidFetchCommand,
  storeCommand,
  uidStoreCommand,
  copyCommand,
  uidCopyCommand,
  moveCommand,
  uidMoveCommand,
  idleCommand,
  getQuotaCommand,
  getQuotaRootCommand,
  compressCommand,
  cancelUpdateCommand,
];

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(ALL.map((c) => [c.name, c]));
