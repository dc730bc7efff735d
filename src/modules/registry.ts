/**
 * The modules watcher knows, and the rule files each ships. Rule files are embedded in the
 * binary; a file of the same name under `<root>/rules/<MODULE>/` overrides the shipped one,
 * and any other `*.rule` file there is added. Files apply in name order, rules in file order;
 * the first rule that matches a line wins.
 */
import { join } from "node:path";
import cockpitRule from "../../rules/AD/cockpit.rule" with { type: "text" };
import giteaRule from "../../rules/AD/gitea.rule" with { type: "text" };
import proxmoxRule from "../../rules/AD/proxmox.rule" with { type: "text" };
import mssqlRule from "../../rules/DB/mssql.rule" with { type: "text" };
import mysqlRule from "../../rules/DB/mysql.rule" with { type: "text" };
import proftpdRule from "../../rules/FT/proftpd.rule" with { type: "text" };
import pureFtpdRule from "../../rules/FT/pure-ftpd.rule" with { type: "text" };
import vsftpdRule from "../../rules/FT/vsftpd.rule" with { type: "text" };
import dropbearRule from "../../rules/LG/dropbear.rule" with { type: "text" };
import sshdRule from "../../rules/LG/sshd.rule" with { type: "text" };
import courierRule from "../../rules/MB/courier.rule" with { type: "text" };
import cucipopRule from "../../rules/MB/cucipop.rule" with { type: "text" };
import cyrusRule from "../../rules/MB/cyrus.rule" with { type: "text" };
import dbmailRule from "../../rules/MB/dbmail.rule" with { type: "text" };
import dovecotPamRule from "../../rules/MB/dovecot-pam.rule" with { type: "text" };
import dovecotRule from "../../rules/MB/dovecot.rule" with { type: "text" };
import eximAuthRule from "../../rules/MB/exim-auth.rule" with { type: "text" };
import opensmtpdAuthRule from "../../rules/MB/opensmtpd-auth.rule" with { type: "text" };
import postfixSaslRule from "../../rules/MB/postfix-sasl.rule" with { type: "text" };
import sendmailAuthRule from "../../rules/MB/sendmail-auth.rule" with { type: "text" };
import uwImapRule from "../../rules/MB/uw-imap.rule" with { type: "text" };
import courierEsmtpdRule from "../../rules/MX/courier-esmtpd.rule" with { type: "text" };
import eximRule from "../../rules/MX/exim.rule" with { type: "text" };
import opensmtpdRule from "../../rules/MX/opensmtpd.rule" with { type: "text" };
import postfixRule from "../../rules/MX/postfix.rule" with { type: "text" };
import sendmailRule from "../../rules/MX/sendmail.rule" with { type: "text" };
import bindRule from "../../rules/NS/bind.rule" with { type: "text" };
import openvpnRule from "../../rules/VP/openvpn.rule" with { type: "text" };
import accessProbesRule from "../../rules/WB/access-probes.rule" with { type: "text" };
import accessRule from "../../rules/WB/access.rule" with { type: "text" };
import apacheErrorRule from "../../rules/WB/apache-error.rule" with { type: "text" };
import nginxErrorRule from "../../rules/WB/nginx-error.rule" with { type: "text" };
import { type BUILTIN_MODULES, type Config, type ModuleName, moduleConfig } from "../core/config";
import { type ConfigFiles, diskFiles } from "../core/config-files";
import { ConfigError } from "../core/errors";
import { type Mode, type RuleSource, RuleSet } from "../core/rules";

export interface ModuleInfo {
  readonly name: ModuleName;
  readonly title: string;
  /** shipped rule files: name → text */
  readonly rules: Readonly<Record<string, string>>;
}

export const MODULES: Readonly<Record<(typeof BUILTIN_MODULES)[number], ModuleInfo>> = {
  LG: { name: "LG", title: "logins (OpenSSH, Dropbear)", rules: { "sshd.rule": sshdRule, "dropbear.rule": dropbearRule } },
  MX: { name: "MX", title: "mail transport (Postfix, Exim, Sendmail, OpenSMTPD, Courier)", rules: { "postfix.rule": postfixRule, "exim.rule": eximRule, "sendmail.rule": sendmailRule, "opensmtpd.rule": opensmtpdRule, "courier-esmtpd.rule": courierEsmtpdRule } },
  MB: { name: "MB", title: "mailboxes (Dovecot, Cyrus, Courier, UW IMAP, DBmail, cucipop, SMTP AUTH)", rules: { "dovecot.rule": dovecotRule, "dovecot-pam.rule": dovecotPamRule, "postfix-sasl.rule": postfixSaslRule, "dbmail.rule": dbmailRule, "exim-auth.rule": eximAuthRule, "sendmail-auth.rule": sendmailAuthRule, "opensmtpd-auth.rule": opensmtpdAuthRule, "uw-imap.rule": uwImapRule, "cyrus.rule": cyrusRule, "courier.rule": courierRule, "cucipop.rule": cucipopRule } },
  WB: { name: "WB", title: "web (Apache, nginx)", rules: { "access-probes.rule": accessProbesRule, "access.rule": accessRule, "apache-error.rule": apacheErrorRule, "nginx-error.rule": nginxErrorRule } },
  FT: { name: "FT", title: "FTP (vsftpd, ProFTPD, Pure-FTPd)", rules: { "vsftpd.rule": vsftpdRule, "proftpd.rule": proftpdRule, "pure-ftpd.rule": pureFtpdRule } },
  VP: { name: "VP", title: "VPN (OpenVPN)", rules: { "openvpn.rule": openvpnRule } },
  NS: { name: "NS", title: "name server (BIND)", rules: { "bind.rule": bindRule } },
  DB: { name: "DB", title: "databases (MariaDB, MySQL, SQL Server)", rules: { "mysql.rule": mysqlRule, "mssql.rule": mssqlRule } },
  AD: { name: "AD", title: "admin and forge logins (Cockpit, Proxmox VE, Gitea)", rules: { "cockpit.rule": cockpitRule, "proxmox.rule": proxmoxRule, "gitea.rule": giteaRule } },
};

function builtin(module: ModuleName): ModuleInfo | undefined {
  return (MODULES as Readonly<Record<string, ModuleInfo>>)[module];
}

/** What the module watches: its [modules.XX] title, else the built-in module's, else "module XX". */
export function moduleTitle(config: Config, module: ModuleName): string {
  return moduleConfig(config, module).title ?? builtin(module)?.title ?? `module ${module}`;
}

/** The module's rule sources: shipped files, overridden or extended by `<rulesDir>/<MODULE>/*.rule`. */
export function ruleSources(module: ModuleName, rulesDir: string, files: ConfigFiles = diskFiles): RuleSource[] {
  const byName = new Map<string, RuleSource>();
  for (const [name, text] of Object.entries(builtin(module)?.rules ?? {})) {
    byName.set(name, { file: `rules/${module}/${name} (built in)`, text });
  }
  const dir = join(rulesDir, module);
  for (const name of (readRuleDir(dir, files) ?? []).filter((n) => n.endsWith(".rule")).sort()) {
    const file = join(dir, name);
    byName.set(name, { file, text: readRuleFile(file, files) });
  }
  if (byName.size === 0) throw new ConfigError(`module ${module} has no rule files: a module of your own reads ${join(dir, "*.rule")} (see "Modules of your own" in README.md)`);
  /* name order, like a conf.d: an operator's 00-local.rule comes before the shipped sshd.rule */
  return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, source]) => source);
}

function readRuleDir(dir: string, files: ConfigFiles): string[] | null {
  try {
    return files.list(dir);
  } catch (e) {
    throw new ConfigError(`${dir}: cannot list the rule files: ${(e as Error).message}`);
  }
}

function readRuleFile(file: string, files: ConfigFiles): string {
  try {
    const text = files.read(file);
    if (text === null) throw new Error("it is gone");
    return text;
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the rule file: ${(e as Error).message}`);
  }
}

export function loadRules(module: ModuleName, rulesDir: string, mode: Mode, files: ConfigFiles = diskFiles): RuleSet {
  return new RuleSet(ruleSources(module, rulesDir, files), mode);
}
