/**
 * Crypto providers. `defaultProvider` is the one the server uses; see the benchmark figures
 * below for why each primitive comes from where it does.
 */
export * from "./provider.ts";
export { nobleProvider } from "./noble.ts";
import { nobleProvider } from "./noble.ts";
import type { CryptoProvider } from "./provider.ts";

/** The provider the server uses by default. */
export const defaultProvider: CryptoProvider = nobleProvider;
