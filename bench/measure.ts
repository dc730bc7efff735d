// One whole process, timed: wall time measured around it, CPU (user+sys) from its rusage, and
// its peak RSS through GNU time.
//
// Why GNU time for the RSS: Linux keeps a process's memory high-water mark across exec, and a
// child forked from this benchmark starts as a copy of it, so the ru_maxrss Bun hands back for
// a direct child is never less than the benchmark's own RSS at the fork (every tool then reads
// as "201 MiB"). /usr/bin/time is small when it forks, so the figure it reports is the tool's.

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const GNU_TIME = "/usr/bin/time";

export interface ProcessRun {
  wall: number; // s
  cpu: number; // s, user+sys (wait4 counts what the child reaped, so the tool's own time is in it)
  rssMiB: number; // the tool's peak resident set; NaN without GNU time (Debian package "time")
  code: number;
  stdout: string;
  stderr: string;
}

export async function runTimed(cmd: string[], options: { cwd?: string; stdinFile?: string; env?: Record<string, string | undefined> } = {}): Promise<ProcessRun> {
  const withTime = existsSync(GNU_TIME);
  const dir = withTime ? mkdtempSync(join(tmpdir(), "watcher-bench-time-")) : "";
  const rssFile = join(dir, "maxrss");
  try {
    const t0 = performance.now();
    const p = Bun.spawn(withTime ? [GNU_TIME, "-f", "%M", "-o", rssFile, ...cmd] : cmd, {
      cwd: options.cwd,
      env: options.env,
      stdin: options.stdinFile === undefined ? "ignore" : Bun.file(options.stdinFile),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    const wall = (performance.now() - t0) / 1000;
    const ru = p.resourceUsage();
    const cpu = ru === undefined ? Number.NaN : Number(ru.cpuTime.user + ru.cpuTime.system) / 1e6;
    /* GNU time writes "Command exited with non-zero status N" before the figure when the tool fails */
    const kib = withTime && existsSync(rssFile) ? Number(readFileSync(rssFile, "utf8").trim().split("\n").at(-1)) : Number.NaN;
    return { wall, cpu, rssMiB: kib / 1024, code, stdout, stderr };
  } finally {
    if (withTime) rmSync(dir, { recursive: true, force: true });
  }
}
