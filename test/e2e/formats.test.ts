/**
 * The servers' own log files, read as a user would start watcher: without --program. In a
 * server namespace run Debian's OpenSSH (`sshd -E FILE`), nginx (error and access logs, basic
 * auth) and Dovecot (`log_path = FILE`); an attacker namespace fails logins against each.
 * `watcher module LG --file <sshd's log>` must ban the attacker (dry-run firewall), and `watcher
 * rules test` must find the format of nginx's and Dovecot's files and count their failures.
 * Then vsftpd (`vsftpd_log_file`) and BIND (a logging channel to a file) the same way: `watcher
 * module FT --file <vsftpd's log>` bans, `rules test` reads named's. (ProFTPD's SystemLog is read
 * from a capture, test/fixtures/formats: Debian's proftpd-core and vsftpd conflict, one machine
 * holds one of them.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { positionFileFor } from "../../src/core/layout";
import { ATTACKER_V4, SERVER_V4, TestNet } from "../helpers/netns";
import { makeRoot, WATCHER, watcher } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const NGINX_PORT = 8080;
const IMAP_PORT = 143;
const SSH_PORT = 22;

/** One request or login from the attacker's address; curl speaks HTTP and IMAP. */
function curl(net: TestNet, ...args: string[]): number {
  return net.exec(net.attacker, ["curl", "-s", "-o", "/dev/null", "--max-time", "30", "--interface", ATTACKER_V4, ...args]).code;
}

function failSsh(net: TestNet): void {
  const p = net.exec(net.attacker, ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=30", "-b", ATTACKER_V4, `nosuchuser@${SERVER_V4}`, "true"]);
  expect(p.code).toBe(255);
}

interface RuleTestJson {
  formats: Record<string, number>;
  matches: { line: number; rule: string; host: string | null; action: string }[];
}

function rulesTest(root: string, module: string, file: string, ...more: string[]): RuleTestJson {
  const r = watcher(root, "rules", "test", module, file, "--json", ...more);
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as RuleTestJson;
}

const counted = (r: RuleTestJson) => r.matches.filter((m) => m.action === "count" || m.action === "ban").map((m) => m.host);

/** A namespace for the daemons, a directory their workers (www-data, dovenull, ftp) can read, and a dry-run root where `module` bans at 3 affairs. */
function workplace(name: string, module: string): { net: TestNet; dir: string; root: string } {
  const net = new TestNet().setup();
  const dir = mkdtempSync(join(tmpdir(), `watcher-${name}-`));
  chmodSync(dir, 0o755);
  const root = makeRoot(name, { "etc/watcher.toml": `firewall = "dryrun"\n[modules.${module}]\nmaxAffairs = 3\nbanTime = "1h"\ndns = false\n` });
  return { net, dir, root };
}

describe("the servers' own logs, without --program", () => {
  let net: TestNet;
  let dir: string;
  let root: string;
  let module: Bun.Subprocess | null = null;

  beforeAll(async () => {
    ({ net, dir, root } = workplace("formats", "LG"));

    /* sshd writing its own log */
    Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(dir, "hostkey")]);
    writeFileSync(
      join(dir, "sshd_config"),
      `ListenAddress ${SERVER_V4}:${SSH_PORT}\nHostKey ${join(dir, "hostkey")}\nPidFile ${join(dir, "sshd.pid")}\nLogLevel VERBOSE\nUsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nStrictModes no\n`,
    );
    mkdirSync("/run/sshd", { recursive: true });
    writeFileSync(join(dir, "sshd.log"), "");
    net.spawn(net.server, ["/usr/sbin/sshd", "-D", "-f", join(dir, "sshd_config"), "-E", join(dir, "sshd.log")]);

    /* nginx: basic auth on /private/ */
    const salted = Bun.spawnSync(["openssl", "passwd", "-apr1", "secret"], { stdout: "pipe" }).stdout.toString().trim();
    writeFileSync(join(dir, "htpasswd"), `x:${salted}\n`, { mode: 0o644 });
    mkdirSync(join(dir, "nginx-tmp"));
    writeFileSync(
      join(dir, "nginx.conf"),
      `daemon off;\nuser www-data;\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx-error.log;\nevents {}\nhttp {\n` +
        `  access_log ${dir}/nginx-access.log;\n  client_body_temp_path ${dir}/nginx-tmp/body;\n  proxy_temp_path ${dir}/nginx-tmp/proxy;\n` +
        `  fastcgi_temp_path ${dir}/nginx-tmp/fastcgi;\n  uwsgi_temp_path ${dir}/nginx-tmp/uwsgi;\n  scgi_temp_path ${dir}/nginx-tmp/scgi;\n` +
        `  server {\n    listen ${SERVER_V4}:${NGINX_PORT};\n    server_name www.example.test;\n    root ${dir};\n` +
        `    location /private/ { auth_basic "private"; auth_basic_user_file ${dir}/htpasswd; }\n  }\n}\n`,
    );
    net.spawn(net.server, ["nginx", "-p", dir, "-c", join(dir, "nginx.conf")]);

    /* Dovecot logging to its own file */
    writeFileSync(join(dir, "users"), "alice:{PLAIN}secret::::::\n", { mode: 0o644 });
    mkdirSync(join(dir, "dovecot-run"));
    writeFileSync(
      join(dir, "dovecot.conf"),
      `base_dir = ${dir}/dovecot-run\nlog_path = ${dir}/dovecot.log\nprotocols = imap\nlisten = ${SERVER_V4}\nssl = no\n` +
        `disable_plaintext_auth = no\nauth_mechanisms = plain login\nauth_verbose = yes\nmail_location = maildir:${dir}/mail/%u\n` +
        `service imap-login {\n  inet_listener imap {\n    port = ${IMAP_PORT}\n  }\n}\n` +
        `passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u ${dir}/users\n}\n` +
        `userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=${dir}/mail/%u\n}\n`,
    );
    net.spawn(net.server, ["dovecot", "-F", "-c", join(dir, "dovecot.conf")]);

    for (const port of [SSH_PORT, NGINX_PORT, IMAP_PORT]) await waitFor(`the server on port ${port}`, () => net.reachable(ATTACKER_V4, 500, port), undefined, 5);
  });

  afterAll(() => {
    module?.kill();
    net.cleanup();
  });

  test("watcher module LG --file <sshd -E log> bans the attacker", async () => {
    const log = join(dir, "sshd.log");
    module = Bun.spawn([WATCHER, "--root", root, "module", "LG", "--file", log], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    /* a file is read from where it ends when first opened: lines count once it is open */
    await waitFor("watcher to open sshd's log", () => existsSync(positionFileFor(join(root, "var", "run"), "LG", log)), undefined, 5);
    failSsh(net);
    failSsh(net);
    const banned = join(root, "var", "log", "firewall-dryrun.log");
    await waitFor("the ban in the dry-run firewall", () => existsSync(banned) && readFileSync(banned, "utf8").includes(ATTACKER_V4));
    expect(readFileSync(log, "utf8")).toContain(`Invalid user nosuchuser from ${ATTACKER_V4}`);
    /* and `rules test` reads the same file the same way */
    const r = rulesTest(root, "LG", log);
    expect(r.formats).toEqual({ "sshd -E": expect.any(Number) });
    expect(counted(r).length).toBeGreaterThanOrEqual(3);
    expect(new Set(counted(r))).toEqual(new Set([ATTACKER_V4]));
  });

  test("watcher rules test WB <nginx's error and access logs>: found and counted", async () => {
    expect(curl(net, "-u", "x:wrong", `http://${SERVER_V4}:${NGINX_PORT}/private/`)).toBe(0);
    expect(curl(net, "-u", "nobody:x", `http://${SERVER_V4}:${NGINX_PORT}/private/`)).toBe(0);
    expect(curl(net, `http://${SERVER_V4}:${NGINX_PORT}/.env`)).toBe(0);
    const errors = join(dir, "nginx-error.log");
    await waitFor("nginx's error lines", () => existsSync(errors) && readFileSync(errors, "utf8").includes("was not found in"));
    const e = rulesTest(root, "WB", errors);
    expect(Object.keys(e.formats)).toEqual(["nginx error"]);
    /* nginx's own file is forgeable (rules/WB/nginx-error.rule): read, and counted in aggressive mode only */
    expect(counted(e)).toEqual([]);
    expect(e.matches.length).toBeGreaterThanOrEqual(3);
    expect(counted(rulesTest(root, "WB", errors, "--mode", "aggressive")).filter((h) => h === ATTACKER_V4).length).toBeGreaterThanOrEqual(3); /* two auth failures, the /.env probe */
    const a = rulesTest(root, "WB", join(dir, "nginx-access.log"));
    expect(Object.keys(a.formats)).toEqual(["access (CLF/combined)"]);
    expect(counted(a)).toEqual([ATTACKER_V4]); /* the /.env probe; the 401s are the error log's */
  });

  test("watcher rules test MB <Dovecot's log_path file>: found and counted", async () => {
    expect(curl(net, "-u", "alice:wrong", `imap://${SERVER_V4}:${IMAP_PORT}/`)).not.toBe(0);
    const log = join(dir, "dovecot.log");
    await waitFor("Dovecot's summary of the failed login", () => existsSync(log) && readFileSync(log, "utf8").includes("auth failed"));
    const r = rulesTest(root, "MB", log);
    expect(Object.keys(r.formats)).toEqual(["dovecot log_path"]);
    expect(counted(r).length).toBeGreaterThan(0);
    expect(new Set(counted(r))).toEqual(new Set([ATTACKER_V4]));
  });
});

describe("vsftpd's and BIND's own logs, without --program", () => {
  const FTP_PORT = 21;
  const DNS_PORT = 53;
  let net: TestNet;
  let dir: string;
  let root: string;
  let module: Bun.Subprocess | null = null;

  beforeAll(async () => {
    ({ net, dir, root } = workplace("formats-ftp", "FT"));

    /* vsftpd writing its own log only (syslog_enable=NO) */
    mkdirSync("/var/run/vsftpd/empty", { recursive: true });
    writeFileSync(
      join(dir, "vsftpd.conf"),
      `listen=YES\nlisten_address=${SERVER_V4}\nlisten_port=${FTP_PORT}\nbackground=NO\nanonymous_enable=NO\nlocal_enable=YES\n` +
        `xferlog_enable=YES\ndual_log_enable=YES\nxferlog_file=${dir}/xferlog\nvsftpd_log_file=${dir}/vsftpd.log\nsyslog_enable=NO\n` +
        `pam_service_name=vsftpd\nsecure_chroot_dir=/var/run/vsftpd/empty\nseccomp_sandbox=NO\n`,
    );
    writeFileSync(join(dir, "vsftpd.log"), "");
    net.spawn(net.server, ["/usr/sbin/vsftpd", join(dir, "vsftpd.conf")]);

    /* BIND: a zone of its own, transfers for nobody, its security and xfer-out lines in a file */
    writeFileSync(join(dir, "example.org.zone"), "$TTL 300\n@ IN SOA ns1.example.org. hostmaster.example.org. 1 3600 600 86400 300\n@ IN NS ns1.example.org.\nns1 IN A 192.0.2.53\n");
    writeFileSync(
      join(dir, "named.conf"),
      `options {\n  directory "${dir}";\n  pid-file "${dir}/named.pid";\n  listen-on port ${DNS_PORT} { ${SERVER_V4}; };\n  listen-on-v6 { none; };\n  recursion no;\n};\n` +
        `zone "example.org" { type primary; file "example.org.zone"; allow-transfer { none; }; };\n` +
        `logging {\n  channel file { file "${dir}/named.log"; print-time yes; print-category yes; print-severity yes; severity info; };\n` +
        `  category security { file; };\n  category xfer-out { file; };\n  category default { file; };\n};\n`,
    );
    net.spawn(net.server, ["/usr/sbin/named", "-f", "-c", join(dir, "named.conf")]);

    for (const port of [FTP_PORT, DNS_PORT]) await waitFor(`the server on port ${port}`, () => net.reachable(ATTACKER_V4, 500, port), undefined, 5);
  });

  afterAll(() => {
    module?.kill();
    net.cleanup();
  });

  test("watcher module FT --file <vsftpd's own log> bans the attacker", async () => {
    const log = join(dir, "vsftpd.log");
    module = Bun.spawn([WATCHER, "--root", root, "module", "FT", "--file", log], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    await waitFor("watcher to open vsftpd's log", () => existsSync(positionFileFor(join(root, "var", "run"), "FT", log)), undefined, 5);
    for (const user of ["nosuchuser", "root", "admin"]) expect(curl(net, "-u", `${user}:wrong`, `ftp://${SERVER_V4}:${FTP_PORT}/`)).not.toBe(0);
    const banned = join(root, "var", "log", "firewall-dryrun.log");
    await waitFor("the ban in the dry-run firewall", () => existsSync(banned) && readFileSync(banned, "utf8").includes(ATTACKER_V4));
    expect(readFileSync(log, "utf8")).toContain(`[nosuchuser] FAIL LOGIN: Client "${ATTACKER_V4}"`);
    const r = rulesTest(root, "FT", log);
    expect(r.formats).toEqual({ "vsftpd log": expect.any(Number) });
    expect(counted(r)).toEqual([ATTACKER_V4, ATTACKER_V4, ATTACKER_V4]);
  });

  test("watcher rules test NS <named's own log>: found, and counted in aggressive mode only", async () => {
    /* an AXFR over TCP, as a zone scraper asks for it */
    const axfr = [
      "import socket, struct",
      "q = struct.pack('>HHHHHH', 4242, 0, 1, 0, 0, 0) + b'\\x07example\\x03org\\x00' + struct.pack('>HH', 252, 1)",
      `s = socket.create_connection(('${SERVER_V4}', ${DNS_PORT}), 10, ('${ATTACKER_V4}', 0))`,
      "s.sendall(struct.pack('>H', len(q)) + q)",
      "s.recv(512)",
    ].join("\n");
    expect(net.exec(net.attacker, ["python3", "-c", axfr]).code).toBe(0);
    const log = join(dir, "named.log");
    await waitFor("named's refusal", () => existsSync(log) && readFileSync(log, "utf8").includes("zone transfer 'example.org/AXFR/IN' denied"));
    const normal = rulesTest(root, "NS", log);
    expect(Object.keys(normal.formats)).toEqual(["named log"]);
    expect(counted(normal)).toEqual([]);
    const r = watcher(root, "rules", "test", "NS", log, "--json", "--mode", "aggressive");
    expect(r.code).toBe(0);
    expect(counted(JSON.parse(r.out) as RuleTestJson)).toEqual([ATTACKER_V4]);
  });
});
