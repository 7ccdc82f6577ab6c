import assert from "node:assert/strict";
import { errorsOf, parse } from "./_parse.ts";

Deno.test("parseConfig() reads proxy_protocol and trusted_proxies of a listener", () => {
  const config = parse(
    [
      "listen:",
      "  - { address: 0.0.0.0:993, tls: implicit, proxy_protocol: true,",
      "      trusted_proxies: [10.0.0.0/8, 192.0.2.7, '2001:db8::/32'] }",
      "  - { address: 0.0.0.0:143, tls: starttls }",
    ].join("\n"),
  );
  assert.equal(config.listen[0]!.proxyProtocol, true);
  assert.deepEqual(config.listen[0]!.trustedProxies, ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]);
  assert.equal(config.listen[1]!.proxyProtocol, false);
  assert.deepEqual(config.listen[1]!.trustedProxies, []);
  assert.equal(parse("data_dir: /x\n").listen[0]!.proxyProtocol, false);
});

Deno.test("parseConfig() reports PROXY settings that cannot work, with line and column", () => {
  assert.deepEqual(
    errorsOf("listen:\n  - { address: 0.0.0.0:993, tls: implicit, proxy_protocol: true }\n"),
    [
      "config.yaml:2:60: listen[0].proxy_protocol: needs trusted_proxies, the addresses of the balancers (such as [10.0.0.0/8])",
    ],
  );
  assert.deepEqual(
    errorsOf("listen:\n  - { address: 0.0.0.0:993, tls: implicit, trusted_proxies: [10.0.0.1] }\n"),
    ["config.yaml:2:61: listen[0].trusted_proxies: applies only with proxy_protocol: true"],
  );
  assert.deepEqual(
    errorsOf(
      [
        "listen:",
        "  - address: 0.0.0.0:993",
        "    tls: implicit",
        "    proxy_protocol: yes",
        "    trusted_proxies: [10.0.0.0/33, lb.example.org, 10.1.0.0/16]",
      ].join("\n"),
    ),
    [
      'config.yaml:4:21: listen[0].proxy_protocol: expected true or false, got "yes"',
      'config.yaml:5:23: listen[0].trusted_proxies[0]: expected an IP address or CIDR such as 10.0.0.0/8, got "10.0.0.0/33"',
      'config.yaml:5:36: listen[0].trusted_proxies[1]: expected an IP address or CIDR such as 10.0.0.0/8, got "lb.example.org"',
    ],
  );
  assert.deepEqual(
    errorsOf(
      [
        "listen:",
        "  - address: 0.0.0.0:993",
        "    tls: implicit",
        "    proxy_protocol: true",
        "    trusted_proxies: [10.0.0.0/33, lb.example.org, 10.1.0.0/16]",
      ].join("\n"),
    ),
    [
      'config.yaml:5:23: listen[0].trusted_proxies[0]: expected an IP address or CIDR such as 10.0.0.0/8, got "10.0.0.0/33"',
      'config.yaml:5:36: listen[0].trusted_proxies[1]: expected an IP address or CIDR such as 10.0.0.0/8, got "lb.example.org"',
    ],
  );
  assert.deepEqual(
    errorsOf(
      "listen:\n  - {address: 0.0.0.0:993, tls: implicit, proxy_protocol: true, trusted_proxies: []}\n",
    ),
    ["config.yaml:2:82: listen[0].trusted_proxies: expected a list of addresses or CIDRs, got an empty list"],
  );
});
