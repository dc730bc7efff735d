import type { CommandModule } from "yargs";
import { formatDuration, nowSeconds } from "../src/core/duration";
import { gatherStatus, SET_NEARLY_FULL, type StatusReport } from "../src/master/control";
import { describeProcesses } from "../src/master/leftovers";
import { count } from "../src/ops/check";
import { type GlobalArgs, isoTime, jsonTime, printJson, table, outputWidth } from "./common";

interface Args extends GlobalArgs {
  json?: boolean;
}

/** The status with every time in JSON's one form (isoTime). */
function statusJson(s: StatusReport) {
  return {
    ...s,
    startedAt: jsonTime(s.startedAt),
    modules: s.modules.map((m) => ({ ...m, startedAt: jsonTime(m.startedAt), updatedAt: jsonTime(m.updatedAt), lastLineAt: jsonTime(m.lastLineAt) })),
    jobs: s.jobs.map((j) => ({ ...j, next: j.next && isoTime(Date.parse(j.next) / 1000) })),
    fleet: s.fleet && { ...s.fleet, updatedAt: jsonTime(s.fleet.updatedAt) },
  };
}

/** LSB: status of a service that is not running */
const EXIT_NOT_RUNNING = 3;
/** the master runs but a module's process does not (crashed, between restarts): its detection has stopped, which monitoring must learn */
const EXIT_MODULE_DOWN = 1;

/** A module that is down, said with what the master knows of its last process. */
function moduleDownWarning(m: StatusReport["modules"][number]): string {
  const exit = m.lastExit !== null ? `exited with status ${m.lastExit}` : "its process is gone";
  return `warning: module ${m.module} is not running (${exit}, restarted ${count(m.restarts, "time")}): its log lines wait, nothing is counted or banned`;
}

export const statusCommand: CommandModule<GlobalArgs, Args> = {
  command: "status",
  describe: "is watcher running: modules (pid, up since, lines, affairs, bans), firewall sets, next jobs; exit 3 when stopped, 1 when a module is not running (read from the run files, whatever the configuration says)",
  builder: (y) => y.option("json", { type: "boolean", describe: "one JSON document, stable for scripts" }),
  handler: async (argv) => {
    const s = await gatherStatus(argv.root);
    if (argv.json) printJson(statusJson(s));
    else {
      const now = nowSeconds();
      console.log(s.running ? `watcher is running (pid ${s.pid}, up ${formatDuration(now - (s.startedAt ?? now))}, ${s.backend} firewall, root ${s.root})` : `watcher is not running (root ${s.root})`);
      if (s.configError) console.log(`warning: the configuration does not load (${s.running ? "what runs is what loaded when it started" : "start will refuse"}):\n${s.configError}`);
      if (s.strayModules.length) console.log(`warning: module processes of this root run without a master: ${describeProcesses(s.strayModules)}; "watcher stop" ends them`);
      if (s.modules.length) {
        const t = table(["module", "pid", "up", "lines", "matched", "affairs", "bans", "restarts"], outputWidth(argv));
        for (const m of s.modules) t.push([m.module, m.running ? m.pid : "-", !m.running ? "down" : m.startedAt ? formatDuration(now - m.startedAt) : "-", m.lines, m.matched, m.affairs, m.bans, m.restarts]);
        console.log(t.toString());
      }
      for (const m of s.modules) {
        if (!m.running) console.log(moduleDownWarning(m));
        if (m.configError) console.log(`warning: module ${m.module} runs on its last good configuration: ${m.configError}`);
        if (m.pending.error) console.log(`module ${m.module}: its database cannot be written (${m.pending.error}); ${m.pending.hosts} hosts and ${m.pending.events} events wait in memory, bans go on`);
      }
      if (s.firewall) {
        const t = table(["set", "entries"], outputWidth(argv));
        for (const f of s.firewall) t.push([f.set, f.entries]);
        console.log(t.toString());
        for (const f of s.firewall) {
          if (f.full !== null && f.full >= SET_NEARLY_FULL) console.log(`warning: ${f.set} is ${Math.round(f.full * 100)} % full; bans beyond its limit are refused by the kernel (logged, not in force)`);
        }
      }
      if (s.fleet) {
        const f = s.fleet;
        console.log(`fleet node ${f.node}: ${f.connected ? `connected, lag ${f.lagMs ?? "-"} ms` : `not connected (${f.lastError ?? "connecting"}), banning locally`}; ${f.applied} bans of other nodes applied, ${f.protected} refused by local policy`);
      }
      for (const j of s.jobs) console.log(`job ${j.name} (${j.schedule}): next ${j.next ? isoTime(Date.parse(j.next) / 1000) : "-"}`);
    }
    if (!s.running) process.exitCode = EXIT_NOT_RUNNING;
    else if (s.modulesDown.length) process.exitCode = EXIT_MODULE_DOWN;
  },
};
