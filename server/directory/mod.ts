/**
 * The LDAP directory check: is this client certificate still stored in its user's entry, and
 * password logins against the directory.
 */
export {
  type CheckOptions,
  DENIAL_ALERTS,
  Directory,
  type DirectoryAcceptance,
  type DirectoryAlert,
  type DirectoryDenial,
  type DirectoryDenialReason,
  type DirectoryOptions,
  type DirectoryStats,
  type DirectoryVerdict,
  type PasswordDenialReason,
  type PasswordVerdict,
  type RecheckSession,
  recipientFilter,
  type RecipientLookup,
} from "./directory.ts";
export {
  DIRECTORY_DEFAULTS,
  type DirectoryConfig,
  DirectoryConfigError,
  type DirectoryConfigInput,
  type DirectoryMapping,
  type DirectoryOnError,
  loadCaPem,
  parseCertificateLookup,
  resolveDirectoryConfig,
} from "./config.ts";
export {
  type CertificateField,
  certificateField,
  fillFilterTemplate,
  type FilterTemplate,
  FilterTemplateError,
  parseFilterTemplate,
} from "./filter_template.ts";
export { DirectoryAuthenticator } from "./authenticator.ts";
