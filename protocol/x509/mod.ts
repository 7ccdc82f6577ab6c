/**
 * X.509 for Postern: DER/PEM codecs, certificate parsing and writing, key encodings, and
 * RFC 5280 path validation.
 */
export * from "./identity.ts";
export * from "./der.ts";
export * from "./pem.ts";
export * from "./oid.ts";
export * from "./name.ts";
export * from "./certificate.ts";
export * from "./keys.ts";
export * from "./writer.ts";
export * from "./path.ts";
export * from "./client_verifier.ts";
export * from "./pkcs12.ts";
export * from "./hostname.ts";
