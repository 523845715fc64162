//! The Lua scripts that make `begin` and `clear` atomic inside Redis.
//!
//! Redis runs a script without interleaving other commands, so reading an
//! entry and acting on what it says cannot race with another oncepay
//! process. Scripts are sent with `EVALSHA` and loaded on `NOSCRIPT`, which
//! also covers a Redis that restarted and forgot them.

use redis::Script;

/// Returns the existing entry with its time to live in milliseconds, or, when
/// there is none, sets the in-flight mark with that lifetime and returns nil.
///
/// `KEYS[1]`: the entry; `ARGV[1]`: the mark; `ARGV[2]`: its lifetime in ms.
const BEGIN: &str = r"
local entry = redis.call('GET', KEYS[1])
if entry then
    return {entry, redis.call('PTTL', KEYS[1])}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
";

/// Deletes the entry only while it is an in-flight mark, so a final answer
/// recorded meanwhile is kept; returns how many entries it deleted.
///
/// `KEYS[1]`: the entry; `ARGV[1]`: the tag every mark starts with.
const CLEAR: &str = r"
local entry = redis.call('GET', KEYS[1])
if entry and string.sub(entry, 1, string.len(ARGV[1])) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// The scripts, with their SHA-1 digests computed once.
#[derive(Debug)]
pub(crate) struct Scripts {
    /// See [`BEGIN`].
    pub(crate) begin: Script,
    /// See [`CLEAR`].
    pub(crate) clear: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            begin: Script::new(BEGIN),
            clear: Script::new(CLEAR),
        }
    }
}
