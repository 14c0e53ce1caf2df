"""A producer in the hooks' capture format, with redis-py (not our code).

    python producer.py URL STREAM SESSIONS RATE SUMMARY_FILE

XADDs, at about RATE entries per second, SESSIONS sessions of Claude Code
and Cursor hook events: session start, prompts, PreToolUse/PostToolUse
pairs, MCP and shell before/after pairs, accept/reject decisions, session
end. About 1 in 25 post hooks is delivered twice (a retry: same event_id,
retry_count 1), about 1 in 40 entries is invalid (bad JSON, a negative
duration, no session_id, a bad timestamp), and 1 in 8 valid entries is
written as flat fields instead of one JSON field `event`.

At the end it writes a JSON summary to SUMMARY_FILE: the entries added, the
distinct valid event ids, and the entry ids of the invalid entries.
"""

import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone

import redis


def main():
    url, stream, sessions, rate, summary_file = sys.argv[1:6]
    sessions, rate = int(sessions), float(rate)
    r = redis.Redis.from_url(url)
    rng = random.Random(19)
    base = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    seq = [0]

    def ts(offset_ms):
        t = base + timedelta(milliseconds=offset_ms)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)

    def event(session, kind, hook, offset_ms, platform="claude_code", **kw):
        seq[0] += 1
        e = {
            "timestamp": ts(offset_ms),
            "platform": platform,
            "session_id": session,
            "event_type": kind,
            "hook_type": hook,
            "metadata": {"cwd": "/repo"},
            "payload": kw.pop("payload", {}),
            "event_id": "%s-%05d" % (session, seq[0]),
            "enqueued_at": ts(offset_ms + 5),
            "retry_count": 0,
        }
        e.update(kw)
        return e

    entries = []  # (fields dict, valid, event_id)
    for s in range(sessions):
        sid = "sess-%04d" % s
        t = s * 1000
        entries.append(event(sid, "session_start", "SessionStart", t))
        for p in range(rng.randint(1, 3)):
            t += 500
            entries.append(event(sid, "user_prompt", "UserPromptSubmit", t,
                                 payload={"prompt_length": rng.randint(5, 400)}))
            for _ in range(rng.randint(1, 4)):
                tool = rng.choice(["Bash", "Edit", "Read", "Grep"])
                t += 100
                entries.append(event(sid, "tool_use", "PreToolUse", t, tool_name=tool))
                t += rng.randint(10, 3000)
                entries.append(event(sid, "tool_use", "PostToolUse", t, tool_name=tool,
                                     duration_ms=rng.randint(10, 3000),
                                     payload={"success": rng.random() < 0.9}))
            if rng.random() < 0.5:
                t += 50
                entries.append(event(sid, "mcp_execution", "beforeMCPExecution", t,
                                     platform="cursor", tool_name="github.search"))
                t += 300
                entries.append(event(sid, "mcp_execution", "afterMCPExecution", t,
                                     platform="cursor", tool_name="github.search",
                                     duration_ms=300, payload={"success": True}))
            if rng.random() < 0.3:
                t += 50
                entries.append(event(sid, "shell_execution", "beforeShellExecution", t,
                                     platform="cursor", payload={"command": "ls"}))
                t += 40
                entries.append(event(sid, "shell_execution", "afterShellExecution", t,
                                     platform="cursor", duration_ms=40,
                                     payload={"command": "ls", "success": True}))
            t += 200
            entries.append(event(sid, "file_edit", "afterFileEdit", t, platform="cursor",
                                 payload={"accepted": rng.random() < 0.7}))
        t += 1000
        entries.append(event(sid, "session_end", "SessionEnd", t))

    # Into stream entries: retries, flat fields, invalid ones.
    out = []  # (kind, fields, event_id): kind is "valid" or "invalid"
    for e in entries:
        if rng.random() < 1 / 40:
            bad = rng.randrange(4)
            if bad == 0:
                out.append(("invalid", {"event": json.dumps(e)[:-7]}, None))
            elif bad == 1:
                b = dict(e, event_id="bad-" + e["event_id"], event_type="tool_use",
                         tool_name="Bash", duration_ms=-5)
                out.append(("invalid", {"event": json.dumps(b)}, None))
            elif bad == 2:
                b = dict(e, event_id="bad-" + e["event_id"])
                del b["session_id"]
                out.append(("invalid", {"event": json.dumps(b)}, None))
            else:
                out.append(("invalid", {"event_type": e["event_type"],
                                        "session_id": e["session_id"],
                                        "timestamp": "yesterday",
                                        "event_id": "bad-" + e["event_id"]}, None))
            continue
        if rng.random() < 1 / 8:
            flat = {k: (v if isinstance(v, str) else json.dumps(v))
                    for k, v in e.items() if v is not None}
            out.append(("valid", flat, e["event_id"]))
        else:
            out.append(("valid", {"event": json.dumps(e)}, e["event_id"]))
        if e["hook_type"] == "PostToolUse" and rng.random() < 1 / 25:
            retry = dict(e, retry_count=1, enqueued_at=ts(0))
            out.append(("valid", {"event": json.dumps(retry)}, e["event_id"]))

    distinct = set()
    invalid_ids = []
    chunk = 50
    started = time.monotonic()
    for i in range(0, len(out), chunk):
        pipe = r.pipeline(transaction=False)
        part = out[i:i + chunk]
        for _, fields, _ in part:
            pipe.xadd(stream, fields)
        ids = pipe.execute()
        for (kind, _, eid), entry_id in zip(part, ids):
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            if kind == "valid":
                distinct.add(eid)
            else:
                invalid_ids.append(entry_id)
        # Pace to RATE entries per second.
        ahead = (i + len(part)) / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    with open(summary_file, "w") as f:
        json.dump({"entries": len(out), "distinct_valid": len(distinct),
                   "invalid_entry_ids": invalid_ids,
                   "retries": sum(1 for k, _, _ in out if k == "valid") - len(distinct)}, f)


if __name__ == "__main__":
    main()
