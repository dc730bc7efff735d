/**
 * End to end with Debian's Dropbear: a server namespace runs dropbear and rsyslog (configured
 * from `watcher syslog-config rsyslog`, so the snippet must name dropbear) and `watcher start`
 * with the nftables backend; an attacker namespace tries an unknown user, whose line carries no
 * address ("Login attempt for nonexistent user"): the address must come from the connection's
 * own "Child connection from" line. The attacker is dropped within the limit; a whitelisted
 * neighbour that fails as well still connects. Private /dev (mount namespace): /dev/log is the test's.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ATTACKER_V4, FRIEND_V4, SERVER_V4, TestNet } from "../helpers/netns";
import { makeRoot, WATCHER } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const SSH_PORT = 22;
const MAX_AFFAIRS = 3;

/** rsyslogd (waited for its socket), then dropbear in the foreground, logging to syslog */
const LAUNCH = `#!/bin/bash
set -e
R=$1
mkdir -p "$R/hostdev"
mount --bind /dev "$R/hostdev"
mount -t tmpfs -o mode=755 tmpfs /dev
for n in null zero random urandom tty full; do touch /dev/$n; mount --bind "$R/hostdev/$n" /dev/$n; done
mkdir -p /dev/pts /dev/shm; mount --bind "$R/hostdev/pts" /dev/pts; ln -s /proc/self/fd /dev/fd
rsyslogd -n -f "$R/rsyslog.conf" -i "$R/rsyslog.pid" &
for i in $(seq 1200); do [ -S /dev/log ] && break; sleep 0.05; done
exec dropbear -F -p ${SERVER_V4}:${SSH_PORT} -r "$R/hostkey" -P "$R/dropbear.pid"
`;

/** One connection as a user that does not exist, without a key or password to offer. */
function unknownUser(net: TestNet, from: string): void {
  const p = net.exec(net.attacker, [
    "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=30",
    "-b", from, `nosuchuser@${SERVER_V4}`, "true",
  ]);
  expect(p.code).toBe(255);
}

function inKernelSet(net: TestNet, address: string): boolean {
  return net.exec(net.server, ["nft", "get", "element", "inet", "watcher", "watcher_LG_v4", `{ ${address} }`]).code === 0;
}

describe("Dropbear through rsyslog into the FIFO", () => {
  let net: TestNet;
  let root: string;

  beforeAll(async () => {
    net = new TestNet().setup();
    root = makeRoot("e2e-dropbear", {
      "etc/watcher.toml": `firewall = "nftables"\n[modules.LG]\nmaxAffairs = ${MAX_AFFAIRS}\nbanTime = "1h"\ndns = false\n`,
      "etc/whitelist": `${FRIEND_V4}\n`,
      "launch.sh": LAUNCH,
    });
    const snippet = Bun.spawnSync([WATCHER, "--root", root, "syslog-config", "rsyslog"]).stdout.toString();
    expect(snippet).toContain("dropbear");
    writeFileSync(join(root, "rsyslog.conf"), `global(workDirectory="${root}")\nmodule(load="imuxsock")\n${snippet}`);
    expect(Bun.spawnSync(["dropbearkey", "-t", "ed25519", "-f", join(root, "hostkey")], { stdout: "ignore", stderr: "ignore" }).exitCode).toBe(0);
    expect(net.exec(net.server, [WATCHER, "--root", root, "start"]).code).toBe(0);
    net.spawn(net.server, ["unshare", "--mount", "--propagation", "private", "bash", join(root, "launch.sh"), root]);
    await waitFor("dropbear", () => net.reachable(ATTACKER_V4, 500, SSH_PORT), undefined, 5);
  });

  afterAll(() => {
    net.exec(net.server, [WATCHER, "--root", root, "stop"]);
    net.cleanup(); /* dropbear, its children and rsyslogd, by the pids of the namespace */
  });

  test("unknown users get the attacker dropped within the limit; the whitelisted neighbour still connects", async () => {
    for (let i = 0; i < MAX_AFFAIRS + 2; i++) unknownUser(net, FRIEND_V4);
    for (let i = 0; i < MAX_AFFAIRS - 1; i++) unknownUser(net, ATTACKER_V4);
    expect(inKernelSet(net, ATTACKER_V4)).toBe(false);
    unknownUser(net, ATTACKER_V4);
    await waitFor("the ban", () => inKernelSet(net, ATTACKER_V4), undefined, 5);
    expect(net.reachable(ATTACKER_V4, 500, SSH_PORT)).toBe(false);
    expect(net.reachable(FRIEND_V4, 10_000, SSH_PORT)).toBe(true);
    expect(inKernelSet(net, FRIEND_V4)).toBe(false);
    /* the affairs are the address-less lines, attributed through their connections */
    expect(net.exec(net.server, [WATCHER, "--root", root, "report"]).out).toContain("dropbear-nonexistent-user-session");
  });
});
