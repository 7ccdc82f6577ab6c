/** LMTP delivery (RFC 2033): the listener and the backend that resolves and stores. */
export {
  deliveredTo,
  LmtpDelivery,
  type LmtpDeliveryOptions,
  type LmtpRecipient,
  rfc5322Date,
} from "./delivery.ts";
export { type LmtpBoundAddress, LmtpServer, type LmtpServerOptions } from "./listener.ts";
