//! Packing an `EVALSHA` command straight into a reused buffer: no `Cmd`, no
//! `String` per key or number. For a cluster, whose client routes a `Cmd`,
//! the buffer also keeps where each argument lies, so the `Cmd` is built
//! from the arguments without parsing the packed command back.

use std::fmt::Write as _;

/// Room kept in front of the arguments for the command's head:
/// `*<args>\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>\r\n` (at most 82 bytes).
const HEAD: usize = 96;

/// A command being packed (RESP): the arguments after the script's SHA are
/// appended first, the head is written in front of them by
/// [`head_evalsha`](Self::head_evalsha).
#[derive(Debug, Default)]
pub(crate) struct Packed {
    buf: Vec<u8>,
    args: usize,
    start: usize,
    /// Where the arguments start in `buf`.
    args_at: usize,
    /// For a cluster ([`for_cluster`](Self::for_cluster)): each argument's
    /// bytes, as (start from `args_at`, length).
    spans: Option<Vec<(usize, usize)>>,
}

/// Formats into a stack buffer (for one number).
struct Stack {
    b: [u8; 512],
    n: usize,
}

impl std::fmt::Write for Stack {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        let room = self.b.get_mut(self.n..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

/// `v` in decimal, in `out`; returns the digits' start (they end at 20).
pub(crate) fn digits(mut v: u64, out: &mut [u8; 20]) -> usize {
    let mut i = out.len();
    loop {
        i -= 1;
        // `i` stays in bounds: a u64 has at most 20 digits.
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return i;
        }
    }
}

impl Packed {
    /// A buffer that also keeps where each argument lies, for
    /// [`cmd`](Self::cmd) (a cluster's client routes a `Cmd`).
    pub(crate) fn for_cluster() -> Self {
        Self {
            spans: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// Starts a new command, keeping the buffer's capacity.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.buf.resize(HEAD, 0);
        self.args = 0;
        self.start = HEAD;
        self.args_at = HEAD;
        if let Some(spans) = &mut self.spans {
            spans.clear();
        }
    }

    /// Notes that the argument just appended holds `len` bytes, ending
    /// before its `\r\n` at the buffer's end.
    fn span(&mut self, len: usize) {
        if let Some(spans) = &mut self.spans {
            spans.push((self.buf.len() - len - self.args_at, len));
        }
    }

    fn len_prefix(&mut self, marker: u8, len: usize) {
        let mut d = [0u8; 20];
        let at = digits(len as u64, &mut d);
        self.buf.push(marker);
        self.buf.extend_from_slice(&d[at..]);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Appends one argument made of `parts`, concatenated.
    pub(crate) fn parts(&mut self, parts: &[&[u8]]) {
        let len = parts.iter().map(|p| p.len()).sum();
        self.len_prefix(b'$', len);
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.span(len);
        self.buf.extend_from_slice(b"\r\n");
        self.args += 1;
    }

    /// Appends one argument.
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.parts(&[b]);
    }

    /// Appends a number.
    pub(crate) fn uint(&mut self, v: u64) {
        let mut d = [0u8; 20];
        let at = digits(v, &mut d);
        self.parts(&[&d[at..]]);
    }

    /// Appends a float as Rust's `Display` writes it (the shortest text
    /// that parses back to the same bits).
    pub(crate) fn float(&mut self, v: f64) {
        let mut s = Stack { b: [0; 512], n: 0 };
        if write!(s, "{v}").is_ok() {
            self.parts(&[&s.b[..s.n]]);
        } else {
            // Longer than 512 bytes: not a finite f64 text; kept exact anyway.
            self.bytes(v.to_string().as_bytes());
        }
    }

    /// Appends one argument written by `write` (which appends to the buffer).
    pub(crate) fn with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        // The length is not known before: write after a wide prefix, then
        // move the bytes down behind the real one.
        let at = self.buf.len();
        write(&mut self.buf);
        let len = self.buf.len() - at;
        let mut d = [0u8; 20];
        let from = digits(len as u64, &mut d);
        let prefix_len = 1 + (20 - from) + 2;
        self.buf.splice(
            at..at,
            std::iter::once(b'$')
                .chain(d[from..].iter().copied())
                .chain(*b"\r\n"),
        );
        debug_assert_eq!(self.buf.len(), at + prefix_len + len);
        self.span(len);
        self.buf.extend_from_slice(b"\r\n");
        self.args += 1;
    }

    /// The packed command, once [`head_evalsha`](Self::head_evalsha) wrote its head.
    pub(crate) fn command(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    /// Writes the head of `EVALSHA sha <arguments>` in front of the
    /// arguments; [`command`](Self::command) is then the whole command.
    pub(crate) fn head_evalsha(&mut self, sha: &str) {
        let mut d = [0u8; 20];
        let at = digits(self.args as u64 + 2, &mut d);
        let count = &d[at..];
        let sha_len = sha.len();
        let mut sl = [0u8; 20];
        let sat = digits(sha_len as u64, &mut sl);
        let pieces: [&[u8]; 7] = [
            b"*",
            count,
            b"\r\n$7\r\nEVALSHA\r\n$",
            &sl[sat..],
            b"\r\n",
            sha.as_bytes(),
            b"\r\n",
        ];
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        if total <= HEAD {
            let start = HEAD - total;
            let mut i = start;
            for p in pieces {
                // In bounds: the pieces add up to `total` bytes ending at HEAD.
                self.buf[i..i + p.len()].copy_from_slice(p);
                i += p.len();
            }
            self.start = start;
        } else {
            // A SHA longer than any SHA1: pack in front (allocates).
            let mut v = Vec::with_capacity(total + self.buf.len() - HEAD);
            for p in pieces {
                v.extend_from_slice(p);
            }
            v.extend_from_slice(self.arguments());
            self.buf = v;
            self.start = 0;
            self.args_at = total;
        }
    }

    /// The packed `EVAL body <arguments>` (a new buffer: used after the
    /// server lost its script cache).
    pub(crate) fn eval(&self, body: &str) -> Vec<u8> {
        let args = self.arguments();
        let mut v = Vec::with_capacity(args.len() + body.len() + 64);
        let mut d = [0u8; 20];
        let at = digits(self.args as u64 + 2, &mut d);
        v.push(b'*');
        v.extend_from_slice(&d[at..]);
        v.extend_from_slice(b"\r\n$4\r\nEVAL\r\n$");
        let at = digits(body.len() as u64, &mut d);
        v.extend_from_slice(&d[at..]);
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(body.as_bytes());
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(args);
        v
    }

    /// The packed arguments (after the SHA).
    fn arguments(&self) -> &[u8] {
        self.buf.get(self.args_at..).unwrap_or(&[])
    }

    /// The command `name first <arguments>` as a `Cmd` (for a cluster's
    /// client), built from the arguments' bytes; `None` for a buffer not
    /// made [`for_cluster`](Self::for_cluster).
    pub(crate) fn cmd(&self, name: &str, first: &str) -> Option<::redis::Cmd> {
        let spans = self.spans.as_ref()?;
        let args = self.arguments();
        let mut cmd = ::redis::cmd(name);
        cmd.arg(first);
        for &(at, len) in spans {
            cmd.arg(args.get(at..at + len)?);
        }
        Some(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str, first: &str, f: impl Fn(&mut ::redis::Cmd)) -> Vec<u8> {
        let mut cmd = ::redis::cmd(name);
        cmd.arg(first);
        f(&mut cmd);
        cmd.get_packed_command()
    }

    #[test]
    fn packs_like_the_client_library() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let mut p = Packed::for_cluster();
        for round in 0..2 {
            p.clear();
            p.uint(3);
            p.bytes(b"{ns}:totals");
            p.parts(&[b"{ns}:", b"s:", "é\r\n".as_bytes()]);
            p.float(0.1 + 0.2);
            p.float(1e12);
            p.float(5e-324);
            p.uint(u64::MAX);
            p.bytes(b"");
            p.with(|b| b.extend_from_slice(b"abc-12"));
            let want = reference("EVALSHA", sha, |c| {
                c.arg(3)
                    .arg("{ns}:totals")
                    .arg("{ns}:s:é\r\n")
                    .arg((0.1f64 + 0.2).to_string())
                    .arg(1e12f64.to_string())
                    .arg(5e-324f64.to_string())
                    .arg(u64::MAX)
                    .arg("")
                    .arg("abc-12");
            });
            p.head_evalsha(sha);
            assert_eq!(p.command(), &want[..], "round {round}");
            let want_eval = reference("EVAL", "return 1", |c| {
                c.arg(3)
                    .arg("{ns}:totals")
                    .arg("{ns}:s:é\r\n")
                    .arg((0.1f64 + 0.2).to_string())
                    .arg(1e12f64.to_string())
                    .arg(5e-324f64.to_string())
                    .arg(u64::MAX)
                    .arg("")
                    .arg("abc-12");
            });
            assert_eq!(p.eval("return 1"), want_eval);
            let rebuilt = p.cmd("EVALSHA", sha).map(|c| c.get_packed_command());
            assert_eq!(rebuilt.as_deref(), Some(&want[..]), "round {round}");
        }
        assert!(Packed::default().cmd("EVALSHA", "x").is_none());
    }

    #[test]
    fn floats_print_as_display_does() {
        for v in [0.0, 7.0, 0.5, 123.456, 1e-7, 1.7976931348623157e308] {
            let mut p = Packed::default();
            p.clear();
            p.float(v);
            let text = v.to_string();
            let want = format!("${}\r\n{text}\r\n", text.len());
            assert_eq!(p.arguments(), want.as_bytes());
        }
    }
}
