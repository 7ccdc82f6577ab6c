/**
 * Times every call of a `MailStore` method for the store-operation metrics, without touching
 * the store implementations: the store is wrapped once, at assembly, and only when metrics
 * are on. The operation label is the method name, a fixed set.
 */
import type { MailStore } from "../../mailstore/mail_store.ts";
import { type Metrics, secondsSince } from "./metrics.ts";

type Method = (...args: unknown[]) => unknown;

export function instrumentStore(store: MailStore, metrics: Metrics): MailStore {
  const wrapped = new Map<string, Method>();
  return new Proxy(store, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== "function" || typeof key !== "string") return value;
      let method = wrapped.get(key);
      if (method === undefined) {
        const original = value as Method;
        method = (...args: unknown[]): unknown => {
          const started = performance.now();
          const result = original.apply(target, args);
          if (!(result instanceof Promise)) return result;
          // Observed on a side branch: the caller awaits the store's own promise, with no
          // extra hop, and still sees its rejection.
          result.then(
            () => metrics.storeOperation(key, true, secondsSince(started)),
            () => metrics.storeOperation(key, false, secondsSince(started)),
          );
          return result;
        };
        wrapped.set(key, method);
      }
      return method;
    },
  });
}
