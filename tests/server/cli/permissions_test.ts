import assert from "node:assert/strict";
import { parseConfig } from "../../../server/config/mod.ts";
import { permissionFlags, servePermissions } from "../../../server/cli/permissions.ts";
import { workerCount } from "../../../server/config/server.ts";

const SOURCE = new URL("../../..", import.meta.url).pathname.replace(/\/$/, "");
const CODE = ["mailstore", "protocol", "server"].map((f) => `${SOURCE}/${f}`);

/** The quick-yield sockets of every server thread (`server.workers: auto` on this machine). */
function wakeups(dataDir: string): string {
  const threads = workerCount({ server: { workers: "auto" } });
  return Array.from({ length: threads + 1 }, (_, i) => `,unix:${dataDir}/wakeup-${i}.sock`).join(
    "",
  );
}

function flagsFor(yaml: string): string[] {
  return permissionFlags(
    servePermissions(parseConfig(yaml, "/etc/postern/config.yaml", { checkFiles: false })),
  );
}

Deno.test("permissions name the config, its certificates, data folder, LDAP server and listeners", () => {
  const flags = flagsFor(`
data_dir: /var/lib/postern
listen:
  - { address: 0.0.0.0:993, tls: implicit }
  - { address: "[::1]:143", tls: starttls }
tls:
  certificate: /etc/ssl/postern/server.pem
  private_key: /etc/ssl/private/postern.key
  client_auth: required
  client_ca: [ca/clients.pem]
  crl: [/var/cache/crl/clients.crl]
directory:
  url: ldaps://ldap.example.org
  ca: /etc/ssl/ldap-ca.pem
  bind_dn: cn=postern,dc=example,dc=org
  bind_password_file: secrets/ldap.pw
  base_dn: ou=people,dc=example,dc=org
`);
  assert.deepEqual(flags, [
    `--allow-read=${
      [
        "/etc/postern/ca/clients.pem",
        "/etc/postern/config.yaml",
        "/etc/postern/secrets/ldap.pw",
        "/etc/ssl/ldap-ca.pem",
        "/etc/ssl/postern/server.pem",
        "/etc/ssl/private/postern.key",
        "/var/cache/crl/clients.crl",
        "/var/lib/postern",
        ...CODE,
      ].sort().join(",")
    }`,
    "--allow-write=/var/lib/postern",
    "--allow-net=0.0.0.0:993,[::1]:143,ldap.example.org:636,unix:/var/lib/postern/admin.sock" +
    wakeups("/var/lib/postern"),
    "--allow-env=LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM",
    "--allow-sys=uid,setPriority",
  ]);
});

Deno.test("permissions for LMTP cover its Unix sockets and their folders, the owner lookup and the host name", () => {
  const flags = flagsFor(`
data_dir: /srv/postern
tls: { client_auth: none }
lmtp:
  listen: [unix:/srv/postern/lmtp.sock, unix:/run/postern/lmtp.sock, 127.0.0.1:2424]
  socket_owner: postfix
`);
  const read = flags.find((f) => f.startsWith("--allow-read="))!;
  assert.ok(!read.includes("ca.pem"), "client_auth: none reads no client CA");
  for (const path of ["/etc/passwd", "/etc/group", "/run/postern", "/srv/postern"]) {
    assert.ok(read.split(/[=,]/).includes(path), `${path} in ${read}`);
  }
  assert.ok(flags.includes("--allow-write=/run/postern,/srv/postern"), flags.join(" "));
  assert.ok(
    flags.includes(
      "--allow-net=127.0.0.1:9993,127.0.0.1:9143,unix:/srv/postern/lmtp.sock," +
        "unix:/run/postern/lmtp.sock,127.0.0.1:2424,unix:/srv/postern/admin.sock" +
        wakeups("/srv/postern"),
    ),
    flags.join(" "),
  );
  assert.ok(flags.includes("--allow-sys=hostname,uid,setPriority"), flags.join(" "));
});

Deno.test("only tls.signing: auto asks for setPriority, which its handshake thread uses", () => {
  const sys = (signing: string) =>
    flagsFor(`
data_dir: /var/lib/postern
admin: { enabled: false }
tls: { client_auth: none, signing: ${signing} }
`).find((f) => f.startsWith("--allow-sys="));
  assert.equal(sys("auto"), "--allow-sys=setPriority");
  assert.equal(sys("sync"), undefined);
  assert.equal(sys("async"), undefined);
});

Deno.test("the CA key beside a readable certificate folder stays unreadable", () => {
  const config = {
    ...parseConfig("", "/srv/postern/config.yaml", { checkFiles: false }),
    source: null,
  };
  const permissions = servePermissions(config);
  assert.deepEqual(permissions.denyRead, ["/srv/postern/certs/ca.key"]);
  assert.ok(permissions.read.includes("/srv/postern/certs"));
  assert.deepEqual(permissions.write, ["/srv/postern/certs", "/srv/postern/data"]);
  assert.ok(permissions.read.includes("/srv/postern/config.yaml"), "to see that there is none");
});

Deno.test("permissions read every certificate and key of tls.certificates", () => {
  const flags = flagsFor(`
data_dir: /var/lib/postern
tls:
  client_auth: none
  certificates:
    - { certificate: /etc/ssl/mail.pem, private_key: /etc/ssl/private/mail.key, names: [mail.example.org] }
    - { certificate: /etc/ssl/imap.pem, private_key: /etc/ssl/private/imap.key, names: [imap.example.org] }
`);
  const read = flags.find((f) => f.startsWith("--allow-read="))!.slice("--allow-read=".length);
  for (
    const path of [
      "/etc/ssl/mail.pem",
      "/etc/ssl/private/mail.key",
      "/etc/ssl/imap.pem",
      "/etc/ssl/private/imap.key",
    ]
  ) {
    assert.ok(read.split(",").includes(path), `${path} in ${read}`);
  }
});

Deno.test("the example systemd unit grants what postern permissions prints for its configuration", () => {
  // The configuration postern.service describes, on a machine of 2 cores (server.workers: auto).
  const flags = flagsFor(`
data_dir: /var/lib/postern
listen:
  - { address: 0.0.0.0:993, tls: implicit }
  - { address: 0.0.0.0:143, tls: starttls }
tls:
  certificate: certs/server.pem
  private_key: certs/server.key
  client_ca: [certs/ca.pem]
server: { workers: 2 }
`).map((flag) => sortedList(flag.replaceAll(SOURCE, "/opt/postern")));
  const unit = Deno.readTextFileSync(`${SOURCE}/postern.service`);
  const execStart = unit.match(/^ExecStart=((?:.*\\\n)*.*)$/m)?.[1]?.replaceAll(/\\\n\s*/g, "");
  assert.ok(execStart !== undefined, "postern.service has an ExecStart line");
  const granted = execStart.split(/\s+/).filter((word) => word.startsWith("--allow-"))
    .map(sortedList);
  assert.deepEqual(granted, flags.filter((flag) => flag.startsWith("--allow-")));
});

/** A path list flag with its paths sorted (the checkout's place changes their order). */
function sortedList(flag: string): string {
  const [name, list] = flag.split("=");
  return flag.startsWith("--allow-read=") ? `${name}=${list!.split(",").sort().join(",")}` : flag;
}
