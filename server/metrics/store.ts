/**
 * Times every call of a `MailStore` method for the store-operation metrics, without touching
 * the store implementations: the store is wrapped once, at assembly, and only when metrics
 * are on. The operation label is the method name, a fixed set.
 */
import type { MailStore } from "../../mailstore/mail_store.ts";
import { type Metrics, secondsSince } from "./metrics.ts";

type Method = (...args: unknown[]) => unknown;

/**
 * A plain object with one wrapper per method of `store` (a Proxy's trap on every access cost
 * more than the timing itself). Every `MailStore` member is a method.
 */
export function instrumentStore(store: MailStore, metrics: Metrics): MailStore {
  const wrapped: Record<string, Method> = {};
  for (const key of methodNames(store)) {
    const original = (store as unknown as Record<string, Method>)[key]!;
    wrapped[key] = (...args: unknown[]): unknown => {
      const started = performance.now();
      const result = original.apply(store, args);
      if (!(result instanceof Promise)) return result;
      // Observed on a side branch: the caller awaits the store's own promise, with no
      // extra hop, and still sees its rejection.
      result.then(
        () => metrics.storeOperation(key, true, secondsSince(started)),
        () => metrics.storeOperation(key, false, secondsSince(started)),
      );
      return result;
    };
  }
  return wrapped as unknown as MailStore;
}

/** The methods of an object and its prototypes, up to Object.prototype. */
function methodNames(object: object): string[] {
  const names = new Set<string>();
  for (
    let proto: object | null = object;
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (name !== "constructor" && typeof descriptor?.value === "function") names.add(name);
    }
  }
  return [...names];
}
