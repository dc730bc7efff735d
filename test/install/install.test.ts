/**
 * What an operator installs: the logger snippets in scripts/ (the same as `watcher syslog-config`
 * prints for the default prefix, and accepted by rsyslogd), and install.sh / uninstall.sh, run
 * in a private mount and network namespace so that neither /usr/local/bin nor the host's
 * firewall is touched.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WATCHER } from "../helpers/root";
import { timeoutForHangsOnly } from "../helpers/wait";

timeoutForHangsOnly();

const REPO = join(import.meta.dir, "..", "..");

function rootWithMailModules(): string {
  const root = mkdtempSync(join(tmpdir(), "watcher-install-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "watcher.toml"), "[modules.MX]\nenabled = true\n[modules.MB]\nenabled = true\n");
  return root;
}

describe("logger snippets", () => {
  for (const [logger, file] of [["rsyslog", "scripts/rsyslog/30-watcher.conf"], ["syslog-ng", "scripts/syslog-ng/watcher.conf"]] as const) {
    test(`${file} is what \`watcher syslog-config ${logger}\` prints for /opt/watcher`, () => {
      const root = rootWithMailModules();
      const printed = Bun.spawnSync([WATCHER, "--root", root, "syslog-config", logger]).stdout.toString();
      expect(printed.replaceAll(root, "/opt/watcher")).toBe(readFileSync(join(REPO, file), "utf8"));
    });
  }
  test("rsyslogd accepts the snippet", () => {
    const root = rootWithMailModules();
    const conf = join(root, "rsyslog.conf");
    writeFileSync(conf, `module(load="imuxsock" SysSock.Use="off")\n${readFileSync(join(REPO, "scripts/rsyslog/30-watcher.conf"), "utf8")}`);
    const check = Bun.spawnSync(["rsyslogd", "-N1", "-f", conf], { stderr: "pipe" });
    expect(check.stderr.toString()).toContain("End of config validation run");
    expect(check.exitCode).toBe(0);
  });
});

describe("install.sh and uninstall.sh", () => {
  test("install under a prefix, run from the link, uninstall leaves nothing", () => {
    const prefix = join(mkdtempSync(join(tmpdir(), "watcher-prefix-")), "opt");
    const script = `set -e
mount -t tmpfs tmpfs /usr/local/bin
${REPO}/scripts/install.sh --prefix ${prefix} > /dev/null
readlink /usr/local/bin/watcher
/usr/local/bin/watcher status --json > ${prefix}.status || true
${REPO}/scripts/uninstall.sh --prefix ${prefix} > /dev/null
ls /usr/local/bin | wc -l`;
    const run = Bun.spawnSync(["unshare", "--mount", "--net", "--propagation", "private", "bash", "-c", script], { stdout: "pipe", stderr: "pipe" });
    expect(run.stderr.toString()).toBe("");
    expect(run.stdout.toString().split("\n")).toEqual([`${prefix}/bin/watcher`, "0", ""]);
    const status = JSON.parse(readFileSync(`${prefix}.status`, "utf8"));
    expect(status).toMatchObject({ running: false, root: prefix });
    expect(existsSync(prefix)).toBe(false);
  });
});
