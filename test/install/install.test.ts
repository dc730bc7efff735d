/**
 * What an operator installs: the logger snippets in scripts/ (the same as `watcher syslog-config`
 * prints for the default prefix, and accepted by rsyslogd), and install.sh / uninstall.sh, run
 * in a private mount and network namespace so that neither /usr/local/bin, /etc nor the host's
 * firewall is touched; logrotate run on the installed snippet under a running master.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SAFE_CONFIG, WATCHER } from "../helpers/root";
import { timeoutForHangsOnly } from "../helpers/wait";

timeoutForHangsOnly();

const REPO = join(import.meta.dir, "..", "..");

function rootWithSyslogModules(): string {
  const root = mkdtempSync(join(tmpdir(), "watcher-install-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "watcher.toml"), "[modules.MX]\nenabled = true\n[modules.MB]\nenabled = true\n[modules.FT]\nenabled = true\n[modules.VP]\nenabled = true\n[modules.NS]\nenabled = true\n[modules.DB]\nenabled = true\n[modules.AD]\nenabled = true\n");
  return root;
}

describe("logger snippets", () => {
  for (const [logger, file] of [["rsyslog", "scripts/rsyslog/30-watcher.conf"], ["syslog-ng", "scripts/syslog-ng/watcher.conf"]] as const) {
    test(`${file} is what \`watcher syslog-config ${logger}\` prints for /opt/watcher`, () => {
      const root = rootWithSyslogModules();
      const printed = Bun.spawnSync([WATCHER, "--root", root, "syslog-config", logger]).stdout.toString();
      expect(printed.replaceAll(root, "/opt/watcher")).toBe(readFileSync(join(REPO, file), "utf8"));
    });
  }
  test("rsyslogd accepts the snippet", () => {
    const root = rootWithSyslogModules();
    const conf = join(root, "rsyslog.conf");
    writeFileSync(conf, `module(load="imuxsock" SysSock.Use="off")\n${readFileSync(join(REPO, "scripts/rsyslog/30-watcher.conf"), "utf8")}`);
    const check = Bun.spawnSync(["rsyslogd", "-N1", "-f", conf], { stderr: "pipe" });
    expect(check.stderr.toString()).toContain("End of config validation run");
    expect(check.exitCode).toBe(0);
  });
});

describe("install.sh and uninstall.sh", () => {
  test("--prefix alone writes nothing outside the prefix; uninstall leaves nothing", () => {
    const prefix = join(mkdtempSync(join(tmpdir(), "watcher-prefix-")), "opt");
    const script = `set -e
for d in /usr/local/bin /etc/logrotate.d /etc/systemd/system /etc/rsyslog.d; do mkdir -p $d; mount -t tmpfs tmpfs $d; done
${REPO}/scripts/install.sh --prefix ${prefix} > ${prefix}.out
${prefix}/bin/watcher --root ${prefix} status --json > ${prefix}.status || true
ls -A /usr/local/bin /etc/logrotate.d /etc/systemd/system | grep -v '^/\\|^$' | wc -l
${REPO}/scripts/uninstall.sh --prefix ${prefix} > /dev/null`;
    const run = Bun.spawnSync(["unshare", "--mount", "--net", "--propagation", "private", "bash", "-c", script], { stdout: "pipe", stderr: "pipe" });
    expect(run.stderr.toString()).toBe("");
    expect(run.stdout.toString()).toBe("0\n");
    expect(readFileSync(`${prefix}.out`, "utf8")).toContain(`nothing written outside ${prefix}`);
    /* no unit was installed: the next step it names is the binary's own start */
    expect(readFileSync(`${prefix}.out`, "utf8")).toContain(`3. start it: ${prefix}/bin/watcher start\n`);
    expect(JSON.parse(readFileSync(`${prefix}.status`, "utf8"))).toMatchObject({ running: false, root: prefix });
    expect(existsSync(prefix)).toBe(false);
  });

  test("--link: the link and the logrotate snippet; logrotate rotates watcher.log under a running master; uninstall takes them back", () => {
    const prefix = join(mkdtempSync(join(tmpdir(), "watcher-prefix-")), "opt");
    mkdirSync(join(prefix, "etc"), { recursive: true });
    writeFileSync(join(prefix, "etc", "watcher.toml"), SAFE_CONFIG); /* kept by install.sh: the dry-run firewall */
    const log = `${prefix}/var/log/watcher.log`;
    const script = `set -e
for d in /usr/local/bin /etc/logrotate.d /etc/systemd/system /etc/rsyslog.d; do mkdir -p $d; mount -t tmpfs tmpfs $d; done
${REPO}/scripts/install.sh --prefix ${prefix} --link > /dev/null
readlink /usr/local/bin/watcher
# should a step below fail, the master started here stops all the same
trap '${prefix}/bin/watcher --root ${prefix} stop > /dev/null 2>&1 || true' EXIT
/usr/local/bin/watcher --root ${prefix} start > /dev/null
logrotate -f -s ${prefix}.state /etc/logrotate.d/watcher
# the master writes the next line into the new file (a condition, polled)
for i in $(seq 600); do grep -q "SIGUSR1: ${log} opened again" ${log} 2>/dev/null && break; sleep 0.05; done
/usr/local/bin/watcher --root ${prefix} stop > /dev/null
cp ${log} ${prefix}.new; cp ${log}.1 ${prefix}.old
${REPO}/scripts/uninstall.sh --prefix ${prefix} --link > /dev/null
ls -A /usr/local/bin /etc/logrotate.d | grep -v '^/\\|^$' | wc -l`;
    const run = Bun.spawnSync(["unshare", "--mount", "--net", "--propagation", "private", "bash", "-c", script], { stdout: "pipe", stderr: "pipe" });
    expect(run.stderr.toString()).toBe("");
    expect(run.stdout.toString().split("\n")).toEqual([`${prefix}/bin/watcher`, "0", ""]);
    const [fresh, old] = [readFileSync(`${prefix}.new`, "utf8"), readFileSync(`${prefix}.old`, "utf8")];
    expect(fresh).toContain(`watcher: SIGUSR1: ${log} opened again`);
    expect(fresh).toContain("watcher: stopped");
    expect(old).toContain("watcher: running: LG");
    expect(old).not.toContain("stopped");
    expect(existsSync(prefix)).toBe(false);
  });
});
