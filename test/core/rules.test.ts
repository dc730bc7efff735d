import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/core/errors";
import { compileTemplate, type RuleMatch, RuleSet } from "../../src/core/rules";
import { HeaderScan, scanSyslog } from "../../src/core/syslog";

function ruleSet(text: string, mode: "normal" | "aggressive" = "normal"): RuleSet {
  return new RuleSet([{ file: "test.rule", text }], mode);
}

function match(rules: RuleSet, line: string): RuleMatch | null {
  const h = new HeaderScan();
  if (!scanSyslog(line, 0, line.length, h)) throw new Error(`not a syslog line: ${line}`);
  return rules.match(line, h, line.length);
}

function loadError(text: string): string {
  try {
    ruleSet(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected the rule file to be refused");
}

describe("template lint", () => {
  test("an unanchored template is refused: the address could come from anywhere", () => {
    expect(compileTemplate("from <HOST> port <PORT>")).toContain("must be anchored");
  });
  test("<HOST> exactly once", () => {
    expect(compileTemplate("^from <PORT>$")).toContain("<HOST> exactly once");
    expect(compileTemplate("^<HOST> <HOST>$")).toContain("more than once");
  });
  test("a wildcard before the host needs $, after it needs ^", () => {
    expect(compileTemplate("^Invalid user <USER> from <HOST> port <PORT>")).toContain("must end with $");
    expect(compileTemplate("rhost=<HOST> user=<USER>$")).toContain("must start with ^");
    expect(typeof compileTemplate("^Invalid user <USER> from <HOST> port <PORT>$")).toBe("object");
    expect(typeof compileTemplate("from <HOST> port <PORT>$")).toBe("object");
  });
  test("at most one wildcard on each side, one <ANY> and one <USER>, both anchors when both", () => {
    expect(compileTemplate("^<ANY> from <HOST> says <ANY>$")).toContain("<ANY> more than once");
    expect(compileTemplate("^<USER> <ANY> from <HOST>$")).toContain("at most one <ANY> or <USER> on each side");
    expect(compileTemplate("auth(<USER>,<HOST>): mismatch<ANY>$")).toContain("must start with ^");
    expect(typeof compileTemplate("^auth(<USER>,<HOST>): mismatch<ANY>$")).toBe("object");
  });
  test("<USER> before the address and <ANY> after it: the server's address wins whatever the user wrote", () => {
    const t = compileTemplate("^auth(<USER>,<HOST>)<<SESSION>>: Password mismatch<ANY>$");
    if (typeof t === "string") throw new Error(t);
    const m = t.regex.exec("auth(x,192.0.2.9)<a>: Password mismatch (hint),203.0.113.5)<s1>: Password mismatch (SHA1 of given password: 5baa)")!;
    expect(m[t.groups.HOST]).toBe("203.0.113.5");
    expect(m[t.groups.USER]).toBe("x,192.0.2.9)<a>: Password mismatch (hint)");
    expect(m[t.groups.SESSION]).toBe("s1");
  });
  test("regex syntax in a template is literal text", () => {
    const t = compileTemplate("^a.b (x)? [y] <HOST>$");
    if (typeof t === "string") throw new Error(t);
    expect(t.regex.test("a.b (x)? [y] 192.0.2.1")).toBe(true);
    expect(t.regex.test("aXb (x)? [y] 192.0.2.1")).toBe(false);
  });
});

describe("rule file errors name the file, the rule and the field", () => {
  test("bad TOML", () => {
    expect(loadError('programs = ["sshd"]\n[[rule]]\nname = \n')).toMatch(/^test.rule:3:\d+: not valid TOML: /);
  });
  test("missing, unknown and invalid fields", () => {
    expect(loadError('programs = ["sshd"]\n[[rule]]\nname = "x"\nhost = "^<HOST>$"\n')).toStartWith('test.rule: rule "x", field pattern: ');
    expect(loadError('programs = ["sshd"]\n[[rule]]\nname = "x"\npattern = "a"\nhots = "^<HOST>$"\n')).toStartWith('test.rule: rule "x": ');
    expect(loadError('programs = ["sshd"]\n[[rule]]\nname = "x"\npattern = "a"\naction = "drop"\n')).toStartWith('test.rule: rule "x", field action: ');
    expect(loadError('[[rule]]\nname = "x"\npattern = "a"\n')).toStartWith("test.rule: field programs: ");
    expect(loadError('programs = ["sshd"]\n[[rule]]\npattern = "a"\n')).toStartWith("test.rule: rule #1, field name: ");
  });
  test("a bad template names its index", () => {
    expect(loadError('programs = ["sshd"]\n[[rule]]\nname = "x"\npattern = "a"\nhost = ["^a <HOST>$", "a <HOST>"]\n')).toContain(
      'rule "x", field host[1]: template "a <HOST>" must be anchored',
    );
  });
  test("duplicate names, stream without group, ban without host", () => {
    const two = 'programs = ["sshd"]\n[[rule]]\nname = "x"\npattern = "a"\n[[rule]]\nname = "x"\npattern = "b"\n';
    expect(loadError(two)).toContain('rule "x": name already used');
    expect(loadError('programs = ["sshd"]\n[[rule]]\nname = "x"\npattern = "a"\nstream = "s"\n')).toContain("needs a group");
    expect(loadError('programs = ["sshd"]\n[[rule]]\nname = "x"\npattern = "a"\naction = "ban"\n')).toContain('action "ban" needs a host template');
  });
});

const MATCHING_RULES = `
programs = ["sshd", "sshd-session"]
[[rule]]
name = "invalid-user"
pattern = "Invalid user "
host = "^Invalid user <USER> from <HOST> port <PORT>$"
[[rule]]
name = "summary"
pattern = "PAM "
host = "^PAM <COUNT> more authentication failures; rhost=<HOST><ANY>$"
[[rule]]
name = "anywhere"
pattern = "needle"
[[rule]]
name = "probe"
pattern = "^Connection closed by "
mode = "aggressive"
`;

describe("matching", () => {
  const rules = ruleSet(MATCHING_RULES);

  test("dispatch by program: other programs never match", () => {
    expect(match(rules, "Nov 25 10:00:00 srv CRON[1]: Invalid user a from 192.0.2.1 port 1")).toBeNull();
    expect(match(rules, "Nov 25 10:00:00 srv sshd-sessionx[1]: Invalid user a from 192.0.2.1 port 1")).toBeNull();
    expect(match(rules, "Nov 25 10:00:00 srv sshd-session[1]: Invalid user a from 192.0.2.1 port 1")?.host?.text).toBe("192.0.2.1");
  });
  test("extracts user and count", () => {
    expect(match(rules, "Nov 25 10:00:00 srv sshd[1]: Invalid user r oot from 192.0.2.1 port 1")?.user).toBe("r oot");
    expect(match(rules, "Nov 25 10:00:00 srv sshd[1]: PAM 3 more authentication failures; rhost=198.51.100.3  user=x")?.count).toBe(3);
  });
  test("the server-written address wins over one in the user name", () => {
    const m = match(rules, "Nov 25 10:00:00 srv sshd[1]: Invalid user a from 192.0.2.9 port 22 from 203.0.113.5 port 5555");
    expect(m?.host?.text).toBe("203.0.113.5");
  });
  test("an address that does not parse is no match, never a guess", () => {
    expect(match(rules, "Nov 25 10:00:00 srv sshd[1]: Invalid user a from 300.1.1.1 port 22")).toBeNull();
  });
  test("a rule without a template matches its pattern anywhere and leaves the address to the session", () => {
    const m = match(rules, "Nov 25 10:00:00 srv sshd[1]: a haystack with a needle in it");
    expect(m?.rule.name).toBe("anywhere");
    expect(m?.host).toBeNull();
  });
  test("aggressive rules are inactive in normal mode", () => {
    const line = "Nov 25 10:00:00 srv sshd[1]: Connection closed by 192.0.2.1 port 2 [preauth]";
    expect(match(rules, line)).toBeNull();
    expect(match(ruleSet(MATCHING_RULES, "aggressive"), line)?.rule.name).toBe("probe");
  });
  test("the first matching rule in file order wins", () => {
    const ordered = ruleSet(`
programs = ["sshd"]
[[rule]]
name = "first"
pattern = "needle"
[[rule]]
name = "second"
pattern = "Invalid user "
host = "^Invalid user <USER> from <HOST> port <PORT>$"
`);
    expect(match(ordered, "Nov 25 10:00:00 srv sshd[1]: Invalid user needle from 192.0.2.1 port 1")?.rule.name).toBe("first");
    expect(match(ordered, "Nov 25 10:00:00 srv sshd[1]: Invalid user hay from 192.0.2.1 port 1")?.rule.name).toBe("second");
  });
  test('a pattern "text$" lets through the lines whose message ends with it, and only those', () => {
    const ends = ruleSet(`
programs = ["httpd"]
[[rule]]
name = "probe"
pattern = ["/pma$", "/pma/$"]
host = "^[client <HOST>] File does not exist: <NOCOLON>$"
[[rule]]
name = "other"
pattern = "File does not exist: "
host = "^[client <HOST>] File does not exist: <ANY>$"
`);
    const line = (message: string) => match(ends, `Nov 25 10:00:00 srv httpd[1]: ${message}`)?.rule.name ?? null;
    expect(line("[client 203.0.113.5] File does not exist: /var/www/pma")).toBe("probe");
    expect(line("[client 203.0.113.5] File does not exist: /var/www/pma/")).toBe("probe");
    /* the name inside the message, not at its end: the pattern turns the line away */
    expect(line("[client 203.0.113.5] File does not exist: /usr/share/pma/favicon.ico")).toBe("other");
    expect(line("[client 203.0.113.5] File does not exist: /var/www/pma/x, referer: http://x/")).toBe("other");
    expect(loadError('programs = ["sshd"]\n[[rule]]\nname = "x"\npattern = ["^a", "b$"]\n')).toContain("either every pattern starts with ^ or none does");
  });
  /* a backtracking blow-up would hang here for minutes: the timeout is the guard */
  test("a line built to make templates backtrack does not hang the engine", () => {
    const long = `Nov 25 10:00:00 srv sshd[1]: Invalid user ${"from 192.0.2.1 port 1 ".repeat(2500)}x`;
    expect(match(rules, long)).toBeNull();
  });
});

describe("the shipped rules against a hostile line", () => {
  /* 64 KiB of "a: a: a: ..." under every program of every module: no template may backtrack on it */
  test("every module turns it down without hanging", () => {
    const { loadRules } = require("../../src/modules/registry") as typeof import("../../src/modules/registry");
    const { BUILTIN_MODULES } = require("../../src/core/config") as typeof import("../../src/core/config");
    const junk = "a: ".repeat(21845);
    for (const module of BUILTIN_MODULES) {
      const rules = loadRules(module, "/nonexistent", "aggressive");
      for (const program of rules.programs) {
        const line = `Nov 25 10:00:00 srv ${program}[1]: ${junk}`;
        expect(match(rules, line)).toBeNull();
        expect(rules.matchRaw(program, junk, 0, junk.length)).toBeNull();
      }
    }
  });
});

describe("program families (Postfix multi-instance: postfix-NAME/smtpd)", () => {
  const rules = ruleSet(`programs = ["postfix/smtpd", "postfix-*/smtpd"]
[[rule]]
name = "too-many-errors"
pattern = "too many errors after "
host = "^too many errors after <WORD> from <WORD>[<HOST>]$"
`);
  const line = (program: string) => `Nov 25 13:00:10 mx ${program}[4001]: too many errors after RCPT from unknown[203.0.113.80]`;
  test("a `*` stands for one name part of letters, digits, _ . -", () => {
    for (const p of ["postfix/smtpd", "postfix-in/smtpd", "postfix-out_2.x/smtpd"]) expect([p, match(rules, line(p))?.host?.text]).toEqual([p, "203.0.113.80"]);
    for (const p of ["postfix-/smtpd", "postfix-a/b/smtpd", "postfix-in/smtpd2", "xpostfix-in/smtpd", "postfix-i+n/smtpd"]) expect([p, match(rules, line(p))]).toEqual([p, null]);
    expect(rules.programs).toEqual(["postfix/smtpd", "postfix-*/smtpd"]);
  });
  test("at most one `*`, beside other text", () => {
    for (const p of ["*", "postfix-*/*"]) expect(loadError(`programs = ["${p}"]\n[[rule]]\nname = "x"\npattern = "x"\n`)).toContain('at most one "*"');
  });
});

describe("a word that is no address where a template searched for one", () => {
  /* sshd with UseDNS writes the client's name; a user name carrying "from A port N ssh2: " then
     gave the auth-info template an address the client wrote (found by test/hardening/properties.test.ts) */
  const rules = ruleSet(`programs = ["sshd"]
[[rule]]
name = "failed-auth"
pattern = "Failed "
host = ["^Failed <WORD> for <USER> from <HOST> port <PORT> ssh2$", "^Failed <WORD> for <USER> from <HOST> port <PORT> ssh2: <ANY>$"]
`);
  const line = (msg: string) => `Nov 25 10:00:00 srv sshd[4242]: ${msg}`;
  test("elsewhere than the address read: the line reads two ways", () => {
    for (const name of ["host.attacker.example", "2001:db8::1.attacker.example", "fe80::1%eth0"]) {
      const m = match(rules, line(`Failed password for x from 192.0.2.7 port 22 ssh2: from ${name} port 1 ssh2`));
      expect([name, m?.host, m?.ambiguous]).toEqual([name, null, true]);
    }
  });
  test("a name alone yields nothing; an address alone is read", () => {
    expect(match(rules, line("Failed password for root from host.example.net port 22 ssh2"))).toBeNull();
    expect(match(rules, line("Failed hostbased for root from 203.0.113.5 port 22 ssh2: RSA SHA256:abc, client user \"r\", client host \"h.example\""))?.host?.text).toBe("203.0.113.5");
  });
});

describe("templates that read the service's session id instead of an address", () => {
  const SESSIONS = `programs = ["smtpd"]
[[rule]]
name = "connected"
pattern = " connected "
host = "^<SESSION> connected address=<HOST> host=<ANY>$"
action = "ignore"
session = "start"
[[rule]]
name = "refused"
pattern = " refused"
host = ["^<SESSION> refused <ANY>$", "^<ANY> by session <SESSION>$"]
`;
  test("linted like an address: anchored, a wildcard before it needs $, after it ^", () => {
    expect(typeof compileTemplate("^<SESSION> failed <ANY>$")).toBe("object");
    expect(compileTemplate("<SESSION> failed <ANY>")).toContain("must be anchored");
    expect(compileTemplate("^<ANY> failed <SESSION>")).toContain("before <SESSION>, so it must end with $");
    expect(compileTemplate("<SESSION> failed <USER>$")).toContain("after <SESSION>, so it must start with ^");
    expect(compileTemplate("^failed <PORT>$")).toContain("or, to take the address of the service's session, <SESSION>");
  });
  test("a rule's templates all read an address, or none does", () => {
    const text = `programs = ["smtpd"]\n[[rule]]\nname = "mixed"\npattern = "x"\nhost = ["^<SESSION> x$", "^x <HOST>$"]\n`;
    expect(loadError(text)).toContain('rule "mixed", field host: either every template holds <HOST> or none does');
  });
  test("such a line yields its session id and no address of its own", () => {
    const m = match(ruleSet(SESSIONS), "Dec  6 09:19:26 srv smtpd[833]: f13850eb0cd9dc99 refused RCPT");
    expect(m?.rule.name).toBe("refused");
    expect(m?.rule.sessionOnly).toBe(true);
    expect(m?.rule.connections).toBe(true);
    expect(m?.host).toBeNull();
    expect(m?.session).toBe("f13850eb0cd9dc99");
  });
  test("an id read at two places (a client's text holding ' by session X') is no id: the line reads two ways", () => {
    const m = match(ruleSet(SESSIONS), "Dec  6 09:19:26 srv smtpd[833]: f13850eb0cd9dc99 refused x by session 00000000000000aa");
    expect(m?.ambiguous).toBe(true);
    expect(m?.session).toBeNull();
  });
});
