/**
 * End to end with the real programs: a server namespace runs Debian's OpenSSH server and
 * rsyslog (configured from `watcher syslog-config rsyslog`, writing into watcher's FIFO) and
 * `watcher start` with the nftables backend; an attacker namespace fails ssh logins. The
 * attacker must be dropped within the limit while a whitelisted neighbour that fails as well
 * still connects. A second variant follows sshd's own log file (-E), rotated during the test, its
 * format found from its lines (no program given).
 * sshd and rsyslog get a private /dev (mount namespace) so their /dev/log is the test's own.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ATTACKER_V4, FRIEND_V4, SERVER_V4, TestNet } from "../helpers/netns";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";
import { WATCHER } from "../helpers/root";
import { positionFileFor } from "../../src/core/layout";

timeoutForHangsOnly();

const SSH_PORT = 22;
/** How long a probe that must get through may take to connect: it ends as soon as it does. */
const OPEN_WITHIN_MS = 10_000;

/**
 * Starts the logger (rsyslogd, or journald with watcher beside it, which must read the same
 * journal) and sshd in a private mount namespace with its own /dev and, for journald, /run.
 * sshd starts once the logger's socket is there (waited for up to 60 s, for a loaded machine).
 */
const LAUNCH = `#!/bin/bash
set -e
R=$1; MODE=$2; shift 2
mkdir -p "$R/hostdev"
mount --bind /dev "$R/hostdev"
mount -t tmpfs -o mode=755 tmpfs /dev
for n in null zero random urandom tty full; do touch /dev/$n; mount --bind "$R/hostdev/$n" /dev/$n; done
mkdir -p /dev/pts /dev/shm; mount --bind "$R/hostdev/pts" /dev/pts; ln -s /proc/self/fd /dev/fd
case "$MODE" in
  rsyslog)
    rsyslogd -n -f "$R/rsyslog.conf" -i "$R/rsyslog.pid" &
    for i in $(seq 1200); do [ -S /dev/log ] && break; sleep 0.05; done ;;
  journal)
    mkdir -p /run/systemd /run/log; mount -t tmpfs tmpfs /run/systemd; mount -t tmpfs tmpfs /run/log
    # ip netns exec mounts a fresh /sys without cgroups, which journald needs
    mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup
    /lib/systemd/systemd-journald 2>"$R/journald.err" & echo $! > "$R/journald.pid"
    for i in $(seq 1200); do [ -S /run/systemd/journal/dev-log ] && break; sleep 0.05; done
    touch /dev/log; mount --bind /run/systemd/journal/dev-log /dev/log
    "$WATCHER" --root "$R" start ;;
esac
exec /usr/sbin/sshd -D -f "$R/sshd_config" "$@"
`;

function setupRoot(extraConfig: string): string {
  const root = mkdtempSync(join(tmpdir(), "watcher-e2e-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "nftables"\n[modules.LG]\nmaxAffairs = 3\nbanTime = "1h"\ndns = false\n${extraConfig}`);
  writeFileSync(join(root, "etc", "whitelist"), `${FRIEND_V4}\n`);
  Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(root, "hostkey")]);
  writeFileSync(
    join(root, "sshd_config"),
    `ListenAddress ${SERVER_V4}:${SSH_PORT}\nHostKey ${join(root, "hostkey")}\nPidFile ${join(root, "sshd.pid")}\nLogLevel VERBOSE\nUsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nStrictModes no\n`,
  );
  writeFileSync(join(root, "launch.sh"), LAUNCH, { mode: 0o755 });
  mkdirSync("/run/sshd", { recursive: true }); /* sshd's privilege separation directory */
  return root;
}

/** One failed login: an invalid user without a key, from `from`. */
function failLogin(net: TestNet, from: string): void {
  const p = Bun.spawnSync(
    ["ip", "netns", "exec", net.attacker, "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
      "-o", "ConnectTimeout=30", "-b", from, `nosuchuser@${SERVER_V4}`, "true"],
    { stdout: "ignore", stderr: "pipe" },
  );
  expect(p.exitCode).toBe(255);
}

function inKernelSet(net: TestNet, address: string): boolean {
  return net.exec(net.server, ["nft", "get", "element", "inet", "watcher", "watcher_LG_v4", `{ ${address} }`]).code === 0;
}

const VARIANTS = {
  rsyslog: "rsyslog into the FIFO",
  file: "its own log file, rotated",
  journal: "journald, followed from a saved cursor",
} as const;

for (const variant of ["rsyslog", "file", "journal"] as const) {
  describe(`sshd through ${VARIANTS[variant]}`, () => {
    let net: TestNet;
    let root: string;
    const pid = (name: string) => Number(readFileSync(join(root, name), "utf8").trim());

    beforeAll(async () => {
      net = new TestNet().setup();
      const sshdLog = () => join(root, "sshd.log");
      if (variant === "rsyslog") {
        root = setupRoot("");
        const snippet = Bun.spawnSync([WATCHER, "--root", root, "syslog-config", "rsyslog"]).stdout.toString();
        writeFileSync(join(root, "rsyslog.conf"), `global(workDirectory="${root}")\nmodule(load="imuxsock")\n${snippet}`);
      } else if (variant === "file") {
        root = setupRoot(`sources = [{ type = "file", path = "${join(tmpdir(), "placeholder")}" }]\n`);
        writeFileSync(join(root, "etc", "watcher.toml"), readFileSync(join(root, "etc", "watcher.toml"), "utf8").replace(join(tmpdir(), "placeholder"), sshdLog()));
        writeFileSync(sshdLog(), "");
      } else {
        root = setupRoot('sources = [{ type = "journal" }]\n');
      }
      if (variant !== "journal") expect(net.exec(net.server, [WATCHER, "--root", root, "start"]).code).toBe(0);
      const launch = ["unshare", "--mount", "--propagation", "private", "env", `WATCHER=${WATCHER}`, join(root, "launch.sh"), root, variant];
      net.spawn(net.server, [...launch, ...(variant === "file" ? ["-E", sshdLog()] : [])]);
      await waitFor("sshd", () => net.reachable(ATTACKER_V4, 500, SSH_PORT), undefined, 5);
      if (variant === "journal") await waitFor("watcher", () => existsSync(join(root, "var", "run", "LG.json")), undefined, 5);
      /* a file is read from where it ends when first opened: sshd's lines count once it is open */
      if (variant === "file") await waitFor("watcher to open sshd's log", () => existsSync(positionFileFor(join(root, "var", "run"), "LG", sshdLog())), undefined, 5);
    });

    afterAll(() => {
      net.exec(net.server, [WATCHER, "--root", root, "stop"]);
      for (const f of ["sshd.pid", "rsyslog.pid", "journald.pid"]) if (existsSync(join(root, f))) Bun.spawnSync(["kill", String(pid(f))]);
      net.cleanup();
    });

    test("failed logins get the attacker dropped within the limit; the whitelisted neighbour still connects", async () => {
      if (variant === "journal") {
        /* journalctl follows from the end of the journal: the attacker's first try counts once it follows, which its cursor file shows */
        await waitFor("watcher to follow the journal", () => {
          if (existsSync(join(root, "var", "run", "LG.journal-cursor"))) return true;
          failLogin(net, FRIEND_V4); /* an sshd entry of the whitelisted neighbour */
          return false;
        });
      }
      for (let i = 0; i < 5; i++) failLogin(net, FRIEND_V4);
      failLogin(net, ATTACKER_V4);
      if (variant === "file") {
        /* logrotate's way: move the file, have the daemon open a new one */
        renameSync(join(root, "sshd.log"), join(root, "sshd.log.1"));
        Bun.spawnSync(["kill", "-HUP", String(pid("sshd.pid"))]);
        await waitFor("sshd after SIGHUP", () => existsSync(join(root, "sshd.log")) && net.reachable(FRIEND_V4, 500, SSH_PORT), undefined, 5);
      }
      expect(inKernelSet(net, ATTACKER_V4)).toBe(false);
      failLogin(net, ATTACKER_V4);
      if (variant !== "file") failLogin(net, ATTACKER_V4); /* one affair per connection; from a file without pids, two */
      const sent = performance.now();
      await waitFor("the ban", () => inKernelSet(net, ATTACKER_V4), undefined, 5);
      const ms = performance.now() - sent;
      console.log(`e2e ${variant}: the failed login that crossed the limit to the element in the kernel set: ${ms.toFixed(1)} ms (client exit to nft seeing it)`);
      expect(net.reachable(ATTACKER_V4, 500, SSH_PORT)).toBe(false);
      expect(net.reachable(FRIEND_V4, OPEN_WITHIN_MS, SSH_PORT)).toBe(true);
      expect(inKernelSet(net, FRIEND_V4)).toBe(false);
      if (variant === "journal") expect(readFileSync(join(root, "var", "run", "LG.journal-cursor"), "utf8")).toMatch(/^s=[0-9a-f]+;i=/);
    });
  });
}
