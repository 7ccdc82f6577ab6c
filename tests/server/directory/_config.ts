/** Directory settings for the tests' throwaway slapd, bound as its read-only service account. */
import {
  type DirectoryConfig,
  type DirectoryConfigInput,
  resolveDirectoryConfig,
} from "../../../server/directory/mod.ts";
import type { Slapd } from "../../_support/slapd.ts";

/** Settings for `ldap` with a 3 s lookup budget and no periodic re-check, then `over`. */
export function configFor(ldap: Slapd, over: Partial<DirectoryConfigInput> = {}): DirectoryConfig {
  return resolveDirectoryConfig({
    url: ldap.url,
    bindDn: ldap.serviceDn,
    bindPassword: ldap.servicePassword,
    baseDn: ldap.baseDn,
    timeoutMs: 3000,
    recheckIntervalMs: 0,
    ...over,
  });
}
