//! Every key a Lua script touches is declared in `KEYS` (Redis Cluster,
//! Dragonfly and kvrocks need it; while a slot migrates, a script touching
//! an undeclared key aborts half-way after its earlier writes were kept).
//!
//! # The rule checked
//!
//! In every script (`src/state/redis/*.lua`, `src/sink/*.lua`, each read with
//! `prelude.lua` in front, as the scripts that use its helpers run), at every
//! place a key is given to Redis:
//!
//! - `redis.call('<CMD>', X, ...)` / `redis.pcall(...)` with a command that
//!   takes a key first (all but [`NO_KEY`]): `X` is the key;
//! - a forwarding helper, a function whose parameters end in `...` and that
//!   calls `redis.call(...)` / `redis.pcall(...)` with them (`cm_read(i, ...)`):
//!   at each of its call sites the argument after the command name is the key;
//!
//! the key must be a *key expression*: `KEYS[<index>]`, or a name whose
//! every binding in the file is a key expression, that is every assignment
//! `[local] a, name, b = e1, e2, e3` gives it `KEYS[...]` (or another such
//! name), and when it is a function's parameter, every call of that function
//! passes a key expression there, and when a `for name[, v] in pairs(t)`
//! loop binds it, every `t[x] = ...` in the file has a key expression `x`.
//! A name bound by another loop, by a call's result, or never bound, fails; so does anything else (a string, `ARGV[i]`,
//! a concatenation `..`). Scoping is ignored: a name counts as one variable
//! per file, which only makes the check stricter. Only the first key of a
//! command is checked (the scripts give every multi-key command its keys as
//! `KEYS` too, but the check does not parse each command's key positions).

use std::collections::BTreeSet;
use std::path::Path;

/// Commands without a key as their first argument.
const NO_KEY: &[&str] = &["TIME", "PING", "ECHO", "INFO", "DBSIZE", "SCRIPT"];

/// Removes `--` comments (line and `--[[ ]]` block), keeping strings and
/// line breaks (so offsets map to the same lines).
fn strip_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            out.push(c as char);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            quote = Some(c);
            out.push(c as char);
            i += 1;
            continue;
        }
        if src[i..].starts_with("--[[") {
            let end = src[i..].find("]]").map_or(b.len(), |e| i + e + 2);
            out.extend(
                src[i..end]
                    .chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' }),
            );
            i = end;
            continue;
        }
        if src[i..].starts_with("--") {
            while i < b.len() && b[i] != b'\n' {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        out.push(c as char);
        i += 1;
    }
    out
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The arguments of the call whose `(` is at `open`, trimmed, split at
/// top-level commas.
fn call_args(src: &str, open: usize) -> Vec<String> {
    let b = src.as_bytes();
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut args = Vec::new();
    let mut start = open + 1;
    let mut i = open;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
        } else {
            match c {
                b'\'' | b'"' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        let last = src[start..i].trim();
                        if !last.is_empty() || !args.is_empty() {
                            args.push(last.to_owned());
                        }
                        return args;
                    }
                }
                b',' if depth == 1 => {
                    args.push(src[start..i].trim().to_owned());
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    args
}

/// The expressions of an assignment's right side starting at `from`, up to
/// the end of the line at depth 0.
fn rhs_list(src: &str, from: usize) -> Vec<String> {
    let end = src[from..].find('\n').map_or(src.len(), |e| from + e);
    let line = format!("({})", &src[from..end]);
    call_args(&line, 0)
}

/// Whole-word occurrences of `word` in `src`.
fn occurrences<'a>(src: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    let b = src.as_bytes();
    src.match_indices(word).map(|(i, _)| i).filter(move |&i| {
        let before = i == 0 || !is_ident_byte(b[i - 1]);
        let after = i + word.len() >= b.len() || !is_ident_byte(b[i + word.len()]);
        before && after
    })
}

fn line_of(src: &str, at: usize) -> usize {
    src[..at].matches('\n').count() + 1
}

/// Functions declared in the script: name, parameters, and the offset of
/// the header.
fn functions(src: &str) -> Vec<(String, Vec<String>, usize)> {
    let mut out = Vec::new();
    for at in occurrences(src, "function") {
        let rest = &src[at + "function".len()..];
        let Some(open) = rest.find('(') else { continue };
        let name = rest[..open].trim().to_owned();
        if name.is_empty() || !name.bytes().all(|c| is_ident_byte(c) || c == b'.') {
            continue;
        }
        let params = call_args(rest, open);
        out.push((name, params, at));
    }
    out
}

struct Script<'a> {
    src: &'a str,
    functions: Vec<(String, Vec<String>, usize)>,
}

impl Script<'_> {
    /// The function whose header is the closest before `at`.
    fn enclosing(&self, at: usize) -> Option<&(String, Vec<String>, usize)> {
        self.functions
            .iter()
            .filter(|f| f.2 < at)
            .max_by_key(|f| f.2)
    }

    /// Call sites of function `name` (not its declaration): their arguments.
    fn calls_of(&self, name: &str) -> Vec<(Vec<String>, usize)> {
        let b = self.src.as_bytes();
        occurrences(self.src, name)
            .filter(|&i| {
                let before = self.src[..i].trim_end();
                !before.ends_with("function") && (i == 0 || b[i - 1] != b'.')
            })
            .filter_map(|i| {
                let rest = &self.src[i + name.len()..];
                let open = rest.len() - rest.trim_start().len();
                rest.trim_start()
                    .starts_with('(')
                    .then(|| (call_args(self.src, i + name.len() + open), i))
            })
            .collect()
    }

    /// Whether `expr` is a key expression (see the module's docs).
    /// `seen` stops cycles: a name already under check adds no binding of
    /// its own (its other bindings decide).
    fn is_key(&self, expr: &str, seen: &mut BTreeSet<String>) -> Result<(), String> {
        let e = expr.trim();
        if e.starts_with("KEYS[") && e.ends_with(']') && !e.contains("..") {
            // `KEYS[...]` is one index expression: no second `]` before the end.
            if e[5..e.len() - 1].contains(']') {
                return Err(format!("`{e}` is not a single KEYS[...]"));
            }
            return Ok(());
        }
        if e.is_empty() || !e.bytes().all(is_ident_byte) || e.as_bytes()[0].is_ascii_digit() {
            return Err(format!(
                "`{e}` is neither KEYS[...] nor a name bound from KEYS"
            ));
        }
        if !seen.insert(e.to_owned()) {
            // Under check already (`for fence in pairs(t)` with `t[fence] =`):
            // its other bindings decide.
            return Ok(());
        }
        let b = self.src.as_bytes();
        let mut bindings = 0;
        for at in occurrences(self.src, e) {
            if at > 0 && (b[at - 1] == b'.' || b[at - 1] == b':') {
                continue; // a field `t.name`, another variable
            }
            // `for ..., name, ... in` / `for name =`: bound by a loop.
            let line_start = self.src[..at].rfind('\n').map_or(0, |i| i + 1);
            let head = self.src[line_start..at].trim_start();
            if head.starts_with("for ") && !head.contains(" in ") && !head.contains('=') {
                let line_end = self.src[at..].find('\n').map_or(self.src.len(), |i| at + i);
                let line = &self.src[line_start..line_end];
                self.loop_over_keys(e, line, seen).map_err(|why| {
                    format!(
                        "`{e}` is bound by a `for` loop (line {}): {why}",
                        line_of(self.src, at)
                    )
                })?;
                bindings += 1;
                continue;
            }
            // In an assignment's left side? Skip `, ident` to the `=`.
            let mut j = at + e.len();
            loop {
                let rest = &self.src[j..];
                let t = rest.trim_start_matches([' ', '\t']);
                j += rest.len() - t.len();
                if let Some(after_comma) = t.strip_prefix(',') {
                    let t2 = after_comma.trim_start_matches([' ', '\t']);
                    let id_len = t2.bytes().take_while(|&c| is_ident_byte(c)).count();
                    if id_len == 0 {
                        break;
                    }
                    j += t.len() - t2.len() + id_len;
                    continue;
                }
                break;
            }
            let t = &self.src[j..];
            let assigns = t.starts_with('=') && !t.starts_with("==");
            if !assigns {
                continue;
            }
            // Position of the name on the left side: names before it.
            let mut k = 0;
            let mut s = self.src[..at].trim_end_matches([' ', '\t']);
            while let Some(p) = s.strip_suffix(',') {
                let p = p.trim_end_matches([' ', '\t']);
                let id_len = p.bytes().rev().take_while(|&c| is_ident_byte(c)).count();
                if id_len == 0 {
                    break;
                }
                k += 1;
                s = p[..p.len() - id_len].trim_end_matches([' ', '\t']);
            }
            // A table constructor's field (`{ name = v }`) is not a binding.
            if s.ends_with('{') || (s.ends_with(',') && k == 0) {
                continue;
            }
            bindings += 1;
            let rhs = rhs_list(self.src, j + 1);
            let Some(value) = rhs.get(k) else {
                return Err(format!(
                    "`{e}` is assigned from something other than KEYS (line {})",
                    line_of(self.src, at)
                ));
            };
            self.is_key(value, seen).map_err(|why| {
                format!("`{e}` = `{value}` (line {}): {why}", line_of(self.src, at))
            })?;
        }
        // A function's parameter: every call passes a key there.
        for (name, params, at) in &self.functions {
            if let Some(p) = params.iter().position(|p| p == e) {
                bindings += 1;
                for (args, call) in self.calls_of(name) {
                    let Some(arg) = args.get(p) else {
                        return Err(format!(
                            "`{name}` called without its key (line {})",
                            line_of(self.src, call)
                        ));
                    };
                    self.is_key(arg, seen).map_err(|why| {
                        format!(
                            "parameter `{e}` of `{name}` (line {}), call at line {}: {why}",
                            line_of(self.src, *at),
                            line_of(self.src, call)
                        )
                    })?;
                }
            }
        }
        seen.remove(e);
        if bindings == 0 {
            return Err(format!("`{e}` is never bound"));
        }
        Ok(())
    }
}

impl Script<'_> {
    /// `for name[, v] in pairs(t)` binds `name` to keys when every
    /// `t[x] = ...` in the file has a key expression `x`.
    fn loop_over_keys(
        &self,
        name: &str,
        line: &str,
        seen: &mut BTreeSet<String>,
    ) -> Result<(), String> {
        let head = line.trim_start().strip_prefix("for ").unwrap_or("");
        let Some((vars, rest)) = head.split_once(" in ") else {
            return Err("not a `for ... in` loop".to_owned());
        };
        if vars.split(',').next().map(str::trim) != Some(name) {
            return Err("not the loop's first name (a table's key)".to_owned());
        }
        let table = rest
            .trim_start()
            .strip_prefix("pairs(")
            .and_then(|r| r.split_once(')'))
            .map(|(t, _)| t.trim())
            .filter(|t| !t.is_empty() && t.bytes().all(is_ident_byte))
            .ok_or_else(|| "not a loop over `pairs(<table>)`".to_owned())?;
        let mut stores = 0;
        for at in occurrences(self.src, table) {
            let after = &self.src[at + table.len()..];
            if !after.starts_with('[') {
                continue;
            }
            let open = at + table.len();
            let Some(index) = call_args(self.src, open).into_iter().next() else {
                continue;
            };
            let close = after.find(']').map_or(0, |i| i + 1);
            let tail = after[close..].trim_start_matches([' ', '\t']);
            if tail.starts_with('=') && !tail.starts_with("==") {
                stores += 1;
                self.is_key(&index, seen)
                    .map_err(|why| format!("`{table}[{index}]` stored: {why}"))?;
            }
        }
        if stores == 0 {
            return Err(format!("nothing is stored in `{table}`"));
        }
        Ok(())
    }
}

/// Every place `src` gives Redis a key that is not a key expression.
fn undeclared_keys(src: &str) -> Vec<String> {
    let src = strip_comments(src);
    let script = Script {
        src: &src,
        functions: functions(&src),
    };
    let mut bad = Vec::new();
    let check = |bad: &mut Vec<String>, cmd: &str, key: Option<&String>, at: usize| {
        let cmd = cmd.trim_matches(['\'', '"']).to_ascii_uppercase();
        if NO_KEY.contains(&cmd.as_str()) {
            return;
        }
        let result = match key {
            Some(k) => script.is_key(k, &mut BTreeSet::new()),
            None => Err("no key given".to_owned()),
        };
        if let Err(why) = result {
            bad.push(format!("line {}: {cmd}: {why}", line_of(&src, at)));
        }
    };
    let mut forwarders = Vec::new();
    for call in ["redis.call", "redis.pcall"] {
        for (at, _) in src.match_indices(call) {
            let rest = &src[at + call.len()..];
            if !rest.trim_start().starts_with('(') {
                continue;
            }
            let open = at + call.len() + (rest.len() - rest.trim_start().len());
            let args = call_args(&src, open);
            let Some(first) = args.first() else {
                bad.push(format!(
                    "line {}: a call without a command",
                    line_of(&src, at)
                ));
                continue;
            };
            if first == "..." {
                // A forwarding helper: its call sites give the command.
                match script.enclosing(at) {
                    Some((name, params, _)) if params.last().is_some_and(|p| p == "...") => {
                        forwarders.push((name.clone(), params.len() - 1));
                    }
                    _ => bad.push(format!(
                        "line {}: `{call}(...)` outside a forwarding helper",
                        line_of(&src, at)
                    )),
                }
                continue;
            }
            if !(first.starts_with('\'') || first.starts_with('"')) {
                bad.push(format!(
                    "line {}: the command `{first}` is not a literal",
                    line_of(&src, at)
                ));
                continue;
            }
            check(&mut bad, first, args.get(1), at);
        }
    }
    for (name, fixed) in forwarders {
        for (args, at) in script.calls_of(&name) {
            match args.get(fixed) {
                Some(cmd) if cmd.starts_with('\'') || cmd.starts_with('"') => {
                    check(&mut bad, cmd, args.get(fixed + 1), at)
                }
                _ => bad.push(format!(
                    "line {}: `{name}` called without a literal command",
                    line_of(&src, at)
                )),
            }
        }
    }
    bad
}

fn scripts() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let prelude = std::fs::read_to_string(root.join("src/state/redis/prelude.lua"))
        .expect("read prelude.lua");
    let mut out = Vec::new();
    for dir in ["src/state/redis", "src/sink"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("read the scripts' directory")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "lua"))
            .collect();
        files.sort();
        for path in files {
            let body = std::fs::read_to_string(&path).expect("read a script");
            out.push((path.display().to_string(), format!("{prelude}\n{body}")));
        }
    }
    out
}

#[test]
fn every_script_declares_every_key_in_keys() {
    let scripts = scripts();
    assert!(
        scripts.len() >= 11,
        "expected the state's and the sink's scripts, found {}",
        scripts.len()
    );
    let mut failures = Vec::new();
    let mut calls = 0;
    for (path, src) in &scripts {
        calls += src.matches("redis.call").count() + src.matches("redis.pcall").count();
        for bad in undeclared_keys(src) {
            failures.push(format!("{path}: {bad}"));
        }
    }
    assert!(calls > 50, "too few redis.call sites found: {calls}");
    assert!(
        failures.is_empty(),
        "keys not declared in KEYS:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_check_catches_keys_built_in_lua() {
    let bad = [
        "redis.call('GET', 'ns:' .. ARGV[1])",
        "redis.call('HSET', KEYS[1] .. ':x', 'f', 1)",
        "local k = KEYS[1] .. ARGV[2]\nredis.call('SET', k, 1)",
        "local k = ARGV[1]\nredis.call('DEL', k)",
        "local a, b = KEYS[1], ARGV[1]\nredis.call('DEL', b)",
        "local function f(key) return redis.call('TYPE', key) end\nf(KEYS[1])\nf('x')",
        "local function rd(i, ...) return redis.pcall(...) end\nrd(1, 'GET', ARGV[1])",
        "for _, k in ipairs(KEYS) do redis.call('DEL', k) end",
        "local t = {}\nt[KEYS[1]] = 1\nt['x' .. ARGV[1]] = 1\nfor k, _ in pairs(t) do redis.call('DEL', k) end",
        "redis.call('GET', undefined_name)",
        "redis.call(ARGV[1], KEYS[1])",
    ];
    for src in bad {
        assert!(!undeclared_keys(src).is_empty(), "not caught:\n{src}");
    }
    let good = [
        "redis.call('GET', KEYS[1])",
        "redis.call('TIME')",
        "local a, b = KEYS[1], KEYS[2]\nredis.call('DEL', b)",
        "local function f(key) return redis.call('TYPE', key) end\nlocal s = KEYS[3]\nf(KEYS[1])\nf(s)",
        "local function rd(i, ...) return redis.pcall(...) end\nrd(1, 'GET', KEYS[1])",
        "-- redis.call('GET', 'in a comment')\nredis.call('GET', KEYS[2])",
        "local t = {}\nlocal f = KEYS[2]\nt[f] = 1\nfor k, _ in pairs(t) do redis.call('DEL', k) end",
    ];
    for src in good {
        assert_eq!(
            undeclared_keys(src),
            Vec::<String>::new(),
            "wrongly refused:\n{src}"
        );
    }
}
