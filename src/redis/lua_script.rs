//! A Lua script as the crate sends it.

use std::fmt;

use ::redis::Cmd;

/// A Lua script: its body and SHA1, run with `EVALSHA`, falling back to
/// `EVAL` (which also caches it again) when the server answers `NOSCRIPT`
/// (after `SCRIPT FLUSH` or a restart).
pub(crate) struct LuaScript {
    body: &'static str,
    sha: String,
}

impl fmt::Debug for LuaScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LuaScript").field("sha", &self.sha).finish()
    }
}

impl LuaScript {
    pub(crate) fn new(body: &'static str) -> Self {
        Self {
            body,
            sha: ::redis::Script::new(body).get_hash().to_owned(),
        }
    }

    /// The script's SHA1, as `EVALSHA` names it.
    pub(crate) fn sha(&self) -> &str {
        &self.sha
    }

    /// The script's body, as `EVAL` sends it.
    pub(crate) fn body(&self) -> &'static str {
        self.body
    }

    /// `EVALSHA` (`cached`) or `EVAL` of the script with `keys`, then the
    /// arguments `args` appends.
    pub(crate) fn cmd(&self, cached: bool, keys: &[&str], args: &dyn Fn(&mut Cmd)) -> Cmd {
        let mut cmd = if cached {
            ::redis::cmd("EVALSHA")
        } else {
            ::redis::cmd("EVAL")
        };
        cmd.arg(if cached { self.sha() } else { self.body })
            .arg(keys.len())
            .arg(keys);
        args(&mut cmd);
        cmd
    }
}
