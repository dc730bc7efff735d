/**
 * The servers' own log files, read as a user would start watcher: without --program. In a
 * server namespace run Debian's OpenSSH (`sshd -E FILE`), nginx (error and access logs, basic
 * auth) and Dovecot (`log_path = FILE`); an attacker namespace fails logins against each.
 * `watcher module LG --file <sshd's log>` must ban the attacker (dry-run firewall), and `watcher
 * rules test` must find the format of nginx's and Dovecot's files and count their failures.
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

function rulesTest(root: string, module: string, file: string): RuleTestJson {
  const r = watcher(root, "rules", "test", module, file, "--json");
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as RuleTestJson;
}

const counted = (r: RuleTestJson) => r.matches.filter((m) => m.action === "count" || m.action === "ban").map((m) => m.host);

describe("the servers' own logs, without --program", () => {
  let net: TestNet;
  let dir: string;
  let root: string;
  let module: Bun.Subprocess | null = null;

  beforeAll(async () => {
    net = new TestNet().setup();
    /* the daemons' workers (www-data, dovenull) read their files here */
    dir = mkdtempSync(join(tmpdir(), "watcher-daemons-"));
    chmodSync(dir, 0o755);
    root = makeRoot("formats", { "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG]\nmaxAffairs = 3\nbanTime = "1h"\ndns = false\n' });

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
    expect(counted(e)).toEqual([ATTACKER_V4, ATTACKER_V4]);
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
