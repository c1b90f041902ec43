//! The Lua scripts (one atomic round trip each). Key names are documented in
//! `docs/ops/redis.md` and built in Rust by `registry::keys` / `streams::StreamKeys`; the
//! registry scripts derive the keys of a connection's user and gateway from its hash, with the
//! same formats.

use std::sync::LazyLock;

use redis::Script;

/// Helpers shared by the registry scripts. Times are Redis's clock (`TIME`), in ms.
const REGISTRY_PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function conn_key(id) return 'connection:' .. id end
local function user_key(u) return 'user:' .. u .. ':connections' end
local function gw_key(g) return 'gatewayId:' .. g .. ':connections' end
local function ws_key(w) return 'workspace:' .. w .. ':users:online' end
local function seen_key(u) return 'user:' .. u .. ':lastSeen' end
local ALL_USERS = 'users:online'
local LIVE = 'connections:live'
-- Makes `key` live at least `ttl` ms more (never shortens it).
local function extend(key, ttl)
  local p = redis.call('PTTL', key)
  if p ~= -2 and p < ttl then redis.call('PEXPIRE', key, ttl) end
end
-- Recomputes a user's online deadline from its remaining connections (drops dangling ids).
local function refresh_user(u, ws, now)
  local best = -1
  for _, id in ipairs(redis.call('SMEMBERS', user_key(u))) do
    local p = redis.call('PTTL', conn_key(id))
    if p == -2 then
      redis.call('SREM', user_key(u), id)
    elseif p > best then
      best = p
    end
  end
  if best < 0 then
    redis.call('ZREM', ws_key(ws), u)
    redis.call('ZREM', ALL_USERS, u)
  else
    redis.call('ZADD', ws_key(ws), now + best, u)
    redis.call('ZADD', ALL_USERS, now + best, u)
  end
end
local function prune(ws, now)
  redis.call('ZREMRANGEBYSCORE', ws_key(ws), '-inf', now)
  redis.call('ZREMRANGEBYSCORE', ALL_USERS, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', LIVE, '-inf', now)
end
"#;

fn registry_script(body: &str) -> Script {
    Script::new(&format!("{REGISTRY_PRELUDE}\n{body}"))
}

/// ARGV: ttl ms, last-seen retention ms, connection id, user id, workspace id, gateway node
/// id, connectedAt ms, lastPingAt ms, device type, ip address. Returns 1.
pub(crate) static REGISTER: LazyLock<Script> = LazyLock::new(|| {
    registry_script(
        r#"
local now = now_ms()
local ttl, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
local id, u, ws, gw = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ck = conn_key(id)
local old = redis.call('HMGET', ck, 'userId', 'workspaceId', 'gatewayNodeId')
redis.call('DEL', ck)
if old[1] and old[1] ~= u then
  redis.call('SREM', user_key(old[1]), id)
  refresh_user(old[1], old[2], now)
end
if old[3] and old[3] ~= gw then redis.call('SREM', gw_key(old[3]), id) end
redis.call('HSET', ck, 'connectionId', id, 'userId', u, 'workspaceId', ws, 'gatewayNodeId', gw,
  'connectedAt', ARGV[7], 'lastPingAt', ARGV[8], 'deviceType', ARGV[9], 'ipAddress', ARGV[10],
  'sessionState', 'CONNECTED')
redis.call('PEXPIRE', ck, ttl)
redis.call('SADD', user_key(u), id)
extend(user_key(u), ttl)
redis.call('SADD', gw_key(gw), id)
extend(gw_key(gw), ttl)
local deadline = now + ttl
redis.call('ZADD', ws_key(ws), 'GT', deadline, u)
redis.call('ZADD', ALL_USERS, 'GT', deadline, u)
redis.call('ZADD', LIVE, deadline, id)
prune(ws, now)
redis.call('SET', seen_key(u), now, 'PX', keep)
return 1
"#,
    )
});

/// ARGV: ttl ms, last-seen retention ms, connection id, ping instant ms. Returns 1, or 0 when
/// the connection is unknown or expired.
pub(crate) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    registry_script(
        r#"
local ck = conn_key(ARGV[3])
local f = redis.call('HMGET', ck, 'userId', 'workspaceId', 'gatewayNodeId', 'lastPingAt')
if not f[1] then return 0 end
local now = now_ms()
local ttl, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
if tonumber(ARGV[4]) > tonumber(f[4] or '0') then redis.call('HSET', ck, 'lastPingAt', ARGV[4]) end
redis.call('PEXPIRE', ck, ttl)
extend(user_key(f[1]), ttl)
extend(gw_key(f[3]), ttl)
local deadline = now + ttl
redis.call('ZADD', ws_key(f[2]), 'GT', deadline, f[1])
redis.call('ZADD', ALL_USERS, 'GT', deadline, f[1])
redis.call('ZADD', LIVE, deadline, ARGV[3])
redis.call('SET', seen_key(f[1]), now, 'PX', keep)
return 1
"#,
    )
});

/// ARGV: last-seen retention ms, connection id. Returns 1, or 0 when it was unknown/expired.
pub(crate) static UNREGISTER: LazyLock<Script> = LazyLock::new(|| {
    registry_script(
        r#"
local id = ARGV[2]
local ck = conn_key(id)
local f = redis.call('HMGET', ck, 'userId', 'workspaceId', 'gatewayNodeId')
redis.call('ZREM', LIVE, id)
if not f[1] then return 0 end
local now = now_ms()
redis.call('DEL', ck)
redis.call('SREM', user_key(f[1]), id)
redis.call('SREM', gw_key(f[3]), id)
refresh_user(f[1], f[2], now)
redis.call('SET', seen_key(f[1]), now, 'PX', tonumber(ARGV[1]))
return 1
"#,
    )
});

/// ARGV: index set keys (per user or per gateway). Returns the flat field/value arrays of
/// every live connection listed; removes ids whose hash expired.
pub(crate) static BY_SETS: LazyLock<Script> = LazyLock::new(|| {
    registry_script(
        r#"
local out = {}
local seen = {}
for i = 1, #ARGV do
  local set = ARGV[i]
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local h = redis.call('HGETALL', conn_key(id))
    if #h == 0 then
      redis.call('SREM', set, id)
    elseif not seen[id] then
      seen[id] = true
      out[#out + 1] = h
    end
  end
end
return out
"#,
    )
});

/// ARGV: user ids. Returns a flat array `user, gateway, user, gateway, ...`: one pair per
/// distinct user and gateway node holding at least one live connection of it (only the
/// `gatewayNodeId` field of each hash is read); removes ids whose hash expired.
pub(crate) static GATEWAYS_OF_USERS: LazyLock<Script> = LazyLock::new(|| {
    registry_script(
        r#"
local out = {}
local users = {}
for i = 1, #ARGV do
  local u = ARGV[i]
  if not users[u] then
    users[u] = true
    local set = user_key(u)
    local gws = {}
    for _, id in ipairs(redis.call('SMEMBERS', set)) do
      local g = redis.call('HGET', conn_key(id), 'gatewayNodeId')
      if not g then
        redis.call('SREM', set, id)
      elseif not gws[g] then
        gws[g] = true
        out[#out + 1] = u
        out[#out + 1] = g
      end
    end
  end
end
return out
"#,
    )
});

/// No arguments. Returns every live connection's flat field/value array.
pub(crate) static ALL: LazyLock<Script> = LazyLock::new(|| {
    registry_script(
        r#"
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', LIVE, '-inf', now)
local out = {}
for _, id in ipairs(redis.call('ZRANGE', LIVE, 0, -1)) do
  local h = redis.call('HGETALL', conn_key(id))
  if #h == 0 then redis.call('ZREM', LIVE, id) else out[#out + 1] = h end
end
return out
"#,
    )
});

/// ARGV: an online-users sorted set key. Returns its live members.
pub(crate) static ONLINE: LazyLock<Script> = LazyLock::new(|| {
    registry_script(
        r#"
redis.call('ZREMRANGEBYSCORE', ARGV[1], '-inf', now_ms())
return redis.call('ZRANGE', ARGV[1], 0, -1)
"#,
    )
});

/// Fencing check shared by the consumer scripts: KEYS[2] holds the highest consumer epoch of
/// the gateway; ARGV[2] is the caller's. A lower epoch is fenced; a higher one (or a missing
/// key, e.g. after a flush) takes over.
const FENCE: &str = r#"
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
local mine = tonumber(ARGV[2])
if cur > mine then return {'FENCED'} end
if cur < mine then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
"#;

fn consumer_script(body: &str) -> Script {
    Script::new(&format!("{FENCE}\n{body}"))
}

/// KEYS: stream, conversation index, index floor. ARGV: max length (approximate), retention
/// ms, group, index cap, then pairs (conversation id or empty, payload). Appends one entry per
/// pair with ids `n-0`, n = one more than the stream's last generated id, and records each
/// conversation's latest entry id in the index. The index drops what the group has already
/// read, and beyond the cap its lowest entries (raising the floor: gaps from at or below it
/// are "all conversations"). Returns the last id's n.
pub(crate) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local last = 0
local delivered = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = tonumber(string.match(info[i + 1], '^(%d+)')) end
  end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, ld = nil, nil
    for j = 1, #g, 2 do
      if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then ld = g[j + 1] end
    end
    if name == ARGV[3] then delivered = tonumber(string.match(ld, '^(%d+)')) end
  end
end
for i = 5, #ARGV, 2 do
  last = last + 1
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], string.format('%d-0', last), 'payload', ARGV[i + 1])
  if ARGV[i] ~= '' then redis.call('ZADD', KEYS[2], last, ARGV[i]) end
end
if delivered > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', delivered) end
local cap = tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[2])
if n > cap then
  local cut = redis.call('ZRANGE', KEYS[2], n - cap - 1, n - cap - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, n - cap - 1)
  local floor = tonumber(redis.call('GET', KEYS[3]) or '0')
  if tonumber(cut[2]) > floor then redis.call('SET', KEYS[3], cut[2]) end
end
for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ARGV[2]) end
return last
"#,
    )
});

/// KEYS: conversation index, index floor. ARGV: first lost id, limit. Returns `{'ALL'}` when
/// the index cannot tell (the range starts at or below the floor, or `limit` or more
/// conversations match), else `{'SOME', conversation ids...}`: every conversation with an
/// entry at or after the first lost id (a superset of those lost).
pub(crate) static GAP_CONVERSATIONS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) <= floor then return {'ALL'} end
local r = redis.call('ZRANGE', KEYS[1], ARGV[1], '+inf', 'BYSCORE', 'LIMIT', 0, ARGV[2])
if #r >= tonumber(ARGV[2]) then return {'ALL'} end
table.insert(r, 1, 'SOME')
return r
"#,
    )
});

/// KEYS: stream, epoch. ARGV: group, epoch, retention ms. Creates the group at
/// `0` (and the stream) unless it exists. Returns `{'OK'}` or `{'FENCED'}`.
pub(crate) static ENSURE_GROUP: LazyLock<Script> = LazyLock::new(|| {
    consumer_script(
        r#"
local r = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if type(r) == 'table' and r.err and not string.find(r.err, 'BUSYGROUP', 1, true) then return r end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'OK'}
"#,
    )
});

/// KEYS: stream, epoch. ARGV: group, epoch, retention ms, consumer name, count, start id
/// (`>` for new entries, an id for this consumer's pending ones). Returns `{'FENCED'}`,
/// `{'NOGROUP'}` or `{'OK', id1, payload1, ...}` where a payload is nil for an entry that was
/// deleted (trimmed) while pending; such entries are acknowledged here.
pub(crate) static READ: LazyLock<Script> = LazyLock::new(|| {
    consumer_script(
        r#"
local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[4], 'COUNT', ARGV[5], 'STREAMS', KEYS[1], ARGV[6])
if type(r) == 'table' and r.err then
  if string.find(r.err, 'NOGROUP', 1, true) then return {'NOGROUP'} end
  return r
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local out = {'OK'}
if r then
  for _, e in ipairs(r[1][2]) do
    local payload = false
    if e[2] then
      for j = 1, #e[2], 2 do
        if e[2][j] == 'payload' then payload = e[2][j + 1] end
      end
    end
    if not payload then redis.call('XACK', KEYS[1], ARGV[1], e[1]) end
    out[#out + 1] = e[1]
    out[#out + 1] = payload
  end
end
return out
"#,
    )
});

/// KEYS: stream, epoch. ARGV: group, epoch, retention ms, ids... Returns `{'OK'}`,
/// `{'FENCED'}` (a vanished group is not an error: the next read reports it).
pub(crate) static ACK: LazyLock<Script> = LazyLock::new(|| {
    consumer_script(
        r#"
for i = 4, #ARGV, 1000 do
  local r = redis.pcall('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'NOGROUP', 1, true) then return {'OK'} end
    return r
  end
end
return {'OK'}
"#,
    )
});

/// KEYS: stream, epoch. ARGV: group, epoch, retention ms. Returns `{'FENCED'}`,
/// `{'NOGROUP'}` (the stream or the group is gone), or `{'OK', last-delivered-id,
/// first-entry-id or nil, last-generated-id}`.
pub(crate) static CHECK: LazyLock<Script> = LazyLock::new(|| {
    consumer_script(
        r#"
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) == 'table' and groups.err then return {'NOGROUP'} end
local delivered = false
for _, g in ipairs(groups) do
  local name, ld = nil, nil
  for j = 1, #g, 2 do
    if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then ld = g[j + 1] end
  end
  if name == ARGV[1] then delivered = ld end
end
if not delivered then return {'NOGROUP'} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local first, lastgen = false, '0-0'
for i = 1, #info, 2 do
  if info[i] == 'first-entry' then
    if info[i + 1] then first = info[i + 1][1] end
  elseif info[i] == 'last-generated-id' then
    lastgen = info[i + 1]
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'OK', delivered, first, lastgen}
"#,
    )
});
