/**
 * The PROXY protocol (HAProxy's doc/proxy-protocol.txt, versions 1 and 2): a sans-IO reader of
 * the header a load balancer sends before the relayed bytes, and the address forms it needs.
 *
 * Driver contract: before anything else on a connection from a trusted balancer, keep reading
 * and pass all bytes received so far to `readProxyHeader()` until it completes or throws; the
 * bytes after `length` belong to the application protocol (a TLS ClientHello, an IMAP command).
 */
export {
  DEFAULT_MAX_PROXY_HEADER,
  MAX_V1_LENGTH,
  PROXY_V2_SIGNATURE,
  ProxyCommand,
  type ProxyEndpoint,
  type ProxyFamily,
  type ProxyHeader,
  ProxyHeaderError,
  type ProxyHeaderResult,
  readProxyHeader,
  writeProxyV2,
} from "./proxy_header.ts";
export {
  type Cidr,
  formatIpAddress,
  inRanges,
  parseCidr,
  parseIpAddress,
  unmapIpv4,
} from "./ip_address.ts";
