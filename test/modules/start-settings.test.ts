/** What a module reads only at start, so that a SIGHUP changing it starts the module again (loop.ts). */
import { describe, expect, test } from "bun:test";
import { moduleConfig, parseConfig } from "../../src/core/config";
import { changedAtStart, startSettings } from "../../src/modules/start-settings";

const settings = (toml: string, programs: readonly string[] = ["sshd"], ownSources = true) => {
  const config = parseConfig("watcher.toml", toml);
  return startSettings("LG", config, moduleConfig(config, "LG"), programs, ownSources);
};
const changed = (before: string, after: string, o: { programs?: [string[], string[]]; ownSources?: boolean } = {}) =>
  changedAtStart(settings(before, o.programs?.[0], o.ownSources), settings(after, o.programs?.[1], o.ownSources));

describe("the settings a module reads only at start", () => {
  test("sources, and the programs a journal source without matches follows", () => {
    expect(changed('[modules.LG]\nsources = [{ type = "file", path = "/a" }]\n', '[modules.LG]\nsources = [{ type = "file", path = "/b" }]\n')).toEqual(["sources"]);
    const journal = '[modules.LG]\nsources = [{ type = "journal" }]\n';
    expect(changed(journal, journal, { programs: [["sshd"], ["sshd", "dropbear"]] })).toEqual(["sources"]);
    /* a FIFO does not depend on the rules' programs */
    expect(changed("[modules.LG]\n", "[modules.LG]\n", { programs: [["sshd"], ["sshd", "dropbear"]] })).toEqual([]);
    /* --stdin or --file: the configured sources are not what it reads */
    expect(changed('[modules.LG]\nsources = [{ type = "file", path = "/a" }]\n', "[modules.LG]\n", { ownSources: false })).toEqual([]);
  });

  test("the DNS client: dns, dnsAllow and [dns], which count only while dns is on", () => {
    expect(changed("[modules.LG]\ndns = false\n", "[modules.LG]\ndns = true\n")).toEqual(["dns"]);
    expect(changed('[dns]\nservers = ["192.0.2.53"]\n[modules.LG]\ndns = true\n', '[dns]\nservers = ["192.0.2.54"]\n[modules.LG]\ndns = true\n')).toEqual(["dns"]);
    expect(changed("[modules.LG]\ndns = true\n", '[modules.LG]\ndns = true\ndnsAllow = ["googlebot.com"]\n')).toEqual(["dns"]);
    expect(changed('[dns]\nservers = ["192.0.2.53"]\n[modules.LG]\ndns = false\n', '[dns]\nservers = ["192.0.2.54"]\n[modules.LG]\ndns = false\n')).toEqual([]);
  });

  test("[[actions]] that run on this module's decisions; what SIGHUP changes in place is none of them", () => {
    const action = (modules: string) => `[[actions]]\nname = "mail"\ncommand = ["/bin/true"]\nmodules = [${modules}]\n`;
    expect(changed("[modules.LG]\n", `${action('"LG"')}[modules.LG]\n`)).toEqual(["[[actions]]"]);
    expect(changed("[modules.LG]\n", `${action('"MX"')}[modules.LG]\n`)).toEqual([]);
    expect(changed("[modules.LG]\nmaxAffairs = 5\n", '[modules.LG]\nmaxAffairs = 3\nmode = "aggressive"\n')).toEqual([]);
  });
});
