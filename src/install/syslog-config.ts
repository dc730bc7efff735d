/**
 * The system logger's side of the FIFOs: a snippet for rsyslog or syslog-ng that sends each
 * enabled module the lines of the programs its rules listen to, in the module's FIFO.
 * `watcher syslog-config rsyslog > /etc/rsyslog.d/30-watcher.conf`
 */
import type { LoadedConfig, ModuleName } from "../core/config";
import { enabledModules, moduleConfig } from "../core/config";
import { loadRules } from "../modules/registry";
import { fifoPath } from "../core/layout";

export const LOGGERS = ["rsyslog", "syslog-ng"] as const;
export type Logger = (typeof LOGGERS)[number];

/** Programs named in rule files that only ever come from a web server's own files */
const FILE_ONLY = new Set(["apache-access", "nginx-access", "apache-error", "nginx-error"]);

function moduleFeeds(loaded: LoadedConfig): { module: ModuleName; fifo: string; programs: string[] }[] {
  return enabledModules(loaded.config).filter((m) => moduleConfig(loaded.config, m).sources.some((s) => s.type === "fifo")).map((m) => ({
    module: m,
    fifo: fifoPath(loaded.paths.fifoBase, m),
    programs: loadRules(m, loaded.paths.rulesDir, "aggressive").programs.filter((p) => !FILE_ONLY.has(p)),
  }));
}

/** POSIX ERE for a program name (rule programs hold letters, digits, / - _ .), or a family's (postfix-NAME/smtpd) */
function ere(program: string): string {
  return program.replace(/[.]/g, "\\\\.").replace("*", "[A-Za-z0-9_.-]+");
}

export function syslogConfig(logger: Logger, loaded: LoadedConfig): string {
  const feeds = moduleFeeds(loaded);
  const head = `# watcher: each module's lines into its FIFO (made by \`watcher syslog-config ${logger}\`; root ${loaded.paths.root})\n`;
  if (logger === "rsyslog") {
    return (
      head +
      feeds
        .map(
          (f) =>
            `if re_match($syslogtag, '^(${f.programs.map(ere).join("|")})(\\\\[[0-9]+\\\\])?:$') then {\n` +
            `  action(type="ompipe" pipe="${f.fifo}" template="RSYSLOG_FileFormat")\n}\n`,
        )
        .join("")
    );
  }
  return (
    head +
    "# `s_src` is Debian's default source; use yours elsewhere\n" +
    feeds
      .map(
        (f) =>
          `filter f_watcher_${f.module} { program("^(${f.programs.map(ere).join("|")})$"); };\n` +
          `destination d_watcher_${f.module} { pipe("${f.fifo}" flush_lines(0)); };\n` +
          `log { source(s_src); filter(f_watcher_${f.module}); destination(d_watcher_${f.module}); };\n`,
      )
      .join("")
  );
}
