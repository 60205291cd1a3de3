package redisstore

import (
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// The queue's scripts. Every state change of an event is one of them,
// run in one partition: KEYS[1] is the partition's ready stream, which
// routes the call, and ARGV[1] is the partition's key base
// (<prefix>:{q:<queue>:<partition>}:), from which a script builds the
// keys of the events it touches (ev:<id>, ord:<key>) and the
// partition's other keys. All of them share the hash tag, so a script
// stays in one Cluster slot, as asynq's scripts do with their queue.
//
// An event is a hash ev:<id>: id, pv (provider), eid, et, m, h (headers,
// encoded), b (body), ok (order key), o ("1" when it stands in its order
// key's line), ro (replay of), rt (received, ns), rs (received, µs:
// its score), s (status), a (attempts), bu (budget), sz (size), na
// (next at, ns), da (done at, ns), log (attempts as JSON, one a line), e
// (its entry in the ready stream, while it has one), w ("1" while held
// behind its order key). It has no TTL until delivered or dead.
//
// Beside the events: ready (STREAM, group gw, entries {id}), delay
// (ZSET, due ms), dead (ZSET, died ms), live (ZSET of events not yet
// delivered or dead, received µs: their count is what max_queued
// bounds), idx (ZSET of every event, received µs, for List), cnt (HASH:
// b = bytes of the live events, w = events held, po = where the index
// sweep is), ord:<key> (LIST: the order key's events not yet done, the
// one being delivered first).

// luaClock reads Redis TIME as ms (a number, for scores) and ns (a
// string: Lua's doubles cannot hold ns since 1970 exactly).
const luaClock = `
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000),
    t[1] .. string.format('%06d', tonumber(t[2])) .. '000'
end
`

// luaEvents are the moves every script shares.
const luaEvents = luaClock + `
local base = ARGV[1]
local function evkey(id) return base .. 'ev:' .. id end

-- ready puts the event in the stream, recording its entry.
local function ready(ev, id)
  local e = redis.call('XADD', KEYS[1], '*', 'id', id)
  redis.call('HSET', ev, 'e', e)
end

-- hold puts an ordered event at the end of its key's line; true when
-- an earlier one is still in it, so this one waits.
local function hold(ev, id)
  if redis.call('HGET', ev, 'o') ~= '1' then return false end
  local ord = base .. 'ord:' .. redis.call('HGET', ev, 'ok')
  if redis.call('RPUSH', ord, id) == 1 then return false end
  redis.call('HSET', ev, 'w', '1')
  redis.call('HINCRBY', base .. 'cnt', 'w', 1)
  return true
end

-- advance takes a finished event out of its key's line and makes the
-- next one ready, skipping any whose record is gone.
local function advance(ev, id)
  if redis.call('HGET', ev, 'o') ~= '1' then return end
  local ord = base .. 'ord:' .. redis.call('HGET', ev, 'ok')
  if redis.call('LREM', ord, 1, id) == 0 then return end
  while true do
    local nxt = redis.call('LINDEX', ord, 0)
    if not nxt then return end
    local nev = evkey(nxt)
    if redis.call('EXISTS', nev) == 1 then
      if redis.call('HDEL', nev, 'w') == 1 then
        redis.call('HINCRBY', base .. 'cnt', 'w', -1)
        ready(nev, nxt)
      end
      return
    end
    redis.call('LPOP', ord)
  end
end

-- finish ends an event: delivered or dead, kept for ttl ms.
local function finish(ev, id, status, ttl, ns)
  redis.call('HSET', ev, 's', status, 'da', ns)
  redis.call('HDEL', ev, 'na', 'e')
  redis.call('PEXPIRE', ev, ttl)
  redis.call('ZREM', base .. 'live', id)
  -- 0 - x, not -x: -0 is sent as "-0", which HINCRBY refuses.
  redis.call('HINCRBY', base .. 'cnt', 'b', 0 - tonumber(redis.call('HGET', ev, 'sz') or 0))
  advance(ev, id)
end

-- revive brings a dead event back: queued, with budget more attempts.
local function revive(ev, id, budget)
  redis.call('ZREM', base .. 'dead', id)
  redis.call('PERSIST', ev)
  local a = tonumber(redis.call('HGET', ev, 'a') or 0)
  redis.call('HSET', ev, 's', 'queued', 'bu', a + budget)
  redis.call('HDEL', ev, 'da', 'na')
  redis.call('ZADD', base .. 'live', redis.call('HGET', ev, 'rs'), id)
  redis.call('HINCRBY', base .. 'cnt', 'b', tonumber(redis.call('HGET', ev, 'sz') or 0))
  if not hold(ev, id) then ready(ev, id) end
end
`

// enqueueScript stores a new event and makes it ready, or holds it
// behind its order key. ARGV: base, id, max queued, max bytes, size,
// received µs, dedup key or "", dedup ms, then the event's fields and
// values. Returns 1 stored, 0 full, -1 another event has the id, or the
// id of the kept event that has the dedup key (nothing stored). The
// same event again (go-redis resends a command whose reply was lost) is
// stored already: 1.
var enqueueScript = redis.NewScript(luaEvents + `
local id = ARGV[2]
local ev = evkey(id)
if redis.call('EXISTS', ev) == 1 then
  if redis.call('HGET', ev, 'rs') == ARGV[6] then return 1 end
  return -1
end
local dd = ARGV[7] ~= '' and base .. 'dd:' .. ARGV[7]
if dd then
  local first = redis.call('GET', dd)
  if first and redis.call('EXISTS', evkey(first)) == 1 then return first end
end
local live, cnt = base .. 'live', base .. 'cnt'
local size = tonumber(ARGV[5])
if redis.call('ZCARD', live) >= tonumber(ARGV[3]) then return 0 end
if tonumber(redis.call('HGET', cnt, 'b') or 0) + size > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', ev, unpack(ARGV, 9))
if dd then redis.call('SET', dd, id, 'PX', ARGV[8]) end
redis.call('ZADD', base .. 'idx', ARGV[6], id)
redis.call('ZADD', live, ARGV[6], id)
redis.call('HINCRBY', cnt, 'b', size)
if not hold(ev, id) then ready(ev, id) end
return 1
`)

// takeScript leases up to max events of the partition to a consumer:
// it takes over entries idle for the reclaim time (XAUTOCLAIM), moves
// due retries into the stream, reads new entries, and returns each
// with its record; an entry whose record is gone or moved on is acked
// and dropped. It also sweeps a few expired events out of the index
// and dead set, so they do not grow without bound.
// ARGV: base, consumer, max, reclaim ms (≤ 0: none), dead retention ms,
// index horizon ms (how old an event must be to have possibly expired).
// Returns {last entry id, ms until the next retry is due (counted on
// Redis's clock, so a gateway whose clock runs ahead does not spin) or
// -1, then per lease: entry id, deliveries, record as HGETALL}; NOGROUP as an error, before any
// change, when the group is gone.
var takeScript = redis.NewScript(luaEvents + `
local consumer, max, reclaim = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local stream = KEYS[1]
local claimed = {}
if reclaim > 0 then
  local c = redis.pcall('XAUTOCLAIM', stream, 'gw', consumer, reclaim, '0-0', 'COUNT', max)
  if c.err then return c end
  claimed = c[2]
elseif redis.call('EXISTS', stream) == 0 then
  return redis.error_reply('NOGROUP no stream')
end
local now = clock()

local delay = base .. 'delay'
for _, id in ipairs(redis.call('ZRANGEBYSCORE', delay, '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', delay, id)
  local ev = evkey(id)
  if redis.call('EXISTS', ev) == 1 then ready(ev, id) end
end

local out, n = {'0-0', -1}, 0
local function lease(entry, deliveries)
  local eid = entry[1]
  local id = type(entry[2]) == 'table' and entry[2][2]
  if not id or redis.call('HGET', evkey(id), 'e') ~= eid then
    redis.call('XACK', stream, 'gw', eid)
    redis.call('XDEL', stream, eid)
    return
  end
  out[#out + 1] = eid
  out[#out + 1] = deliveries
  out[#out + 1] = redis.call('HGETALL', evkey(id))
  n = n + 1
end
for _, entry in ipairs(claimed) do
  local p = redis.call('XPENDING', stream, 'gw', entry[1], entry[1], 1)
  lease(entry, p[1] and p[1][4] or 1)
end
if n < max then
  local r = redis.pcall('XREADGROUP', 'GROUP', 'gw', consumer, 'COUNT', max - n, 'STREAMS', stream, '>')
  if type(r) == 'table' and r.err then return r end
  if r then
    for _, entry in ipairs(r[1][2]) do lease(entry, 1) end
  end
end

local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
if last[1] then out[1] = last[1][1] end
local due = redis.call('ZRANGE', delay, 0, 0, 'WITHSCORES')
if due[2] then out[2] = math.max(tonumber(due[2]) - now, 0) end

redis.call('ZREMRANGEBYSCORE', base .. 'dead', '-inf', now - tonumber(ARGV[5]))
local idx, cnt = base .. 'idx', base .. 'cnt'
local off = tonumber(redis.call('HGET', cnt, 'po') or 0)
local old = redis.call('ZRANGEBYSCORE', idx, '-inf', (now - tonumber(ARGV[6])) * 1000, 'LIMIT', off, 20)
for _, id in ipairs(old) do
  if redis.call('EXISTS', evkey(id)) == 1 then off = off + 1 else redis.call('ZREM', idx, id) end
end
if #old < 20 then off = 0 end
redis.call('HSET', cnt, 'po', off)
return out
`)

// settleScript ends a lease, if the consumer still holds it: the entry
// is pending for it, delivered as often as when it was leased. ARGV:
// base, id, entry id, consumer, deliveries, outcome, at ms, at ns,
// attempt JSON or "", retention ms, dead retention ms. Returns 1
// settled, 0 the lease is lost. The log keeps queue.MaxLog lines.
var settleScript = redis.NewScript(strings.ReplaceAll(luaEvents+`
local id, eid, outcome = ARGV[2], ARGV[3], ARGV[6]
local p = redis.pcall('XPENDING', KEYS[1], 'gw', eid, eid, 1, ARGV[4])
if p.err or not p[1] or tostring(p[1][4]) ~= ARGV[5] then return 0 end
redis.call('XACK', KEYS[1], 'gw', eid)
redis.call('XDEL', KEYS[1], eid)
local ev = evkey(id)
if redis.call('HGET', ev, 'e') ~= eid then return 0 end
redis.call('HDEL', ev, 'e')
if ARGV[9] ~= '' then
  local log = (redis.call('HGET', ev, 'log') or '') .. ARGV[9] .. '\n'
  local _, lines = string.gsub(log, '\n', '')
  while lines > MAXLOG do
    log = string.sub(log, string.find(log, '\n', 1, true) + 1)
    lines = lines - 1
  end
  redis.call('HSET', ev, 'log', log)
end
if outcome == 'defer' then
  redis.call('ZADD', base .. 'delay', ARGV[7], id)
  redis.call('HSET', ev, 'na', ARGV[8])
  return 1
end
local a = redis.call('HINCRBY', ev, 'a', 1)
if outcome == 'retry' and a < tonumber(redis.call('HGET', ev, 'bu')) then
  redis.call('HSET', ev, 's', 'retrying', 'na', ARGV[8])
  redis.call('ZADD', base .. 'delay', ARGV[7], id)
  return 1
end
local _, ns = clock()
if outcome == 'delivered' then
  finish(ev, id, 'delivered', ARGV[10], ns)
else
  redis.call('ZADD', base .. 'dead', clock(), id)
  finish(ev, id, 'dead', ARGV[11], ns)
end
return 1
`, "MAXLOG", strconv.Itoa(queue.MaxLog)))

// Replies of reviveScript besides 1 (done).
const (
	reviveNotFound  = -1
	reviveQueued    = -2
	reviveDelivered = -3
)

// reviveScript makes a retrying event queued and due now (unless it is
// already in the stream), or brings a dead one back with a fresh
// budget. ARGV: base, id, attempts. Returns 1, or
// one of the revive codes above.
var reviveScript = redis.NewScript(luaEvents + `
local id = ARGV[2]
local ev = evkey(id)
local s = redis.call('HGET', ev, 's')
if not s then return -1 end
if s == 'retrying' then
  redis.call('HSET', ev, 's', 'queued')
  redis.call('HDEL', ev, 'na')
  if redis.call('ZREM', base .. 'delay', id) == 1 then ready(ev, id) end
  return 1
end
if s == 'dead' then
  revive(ev, id, tonumber(ARGV[3]))
  return 1
end
if s == 'delivered' then return -3 end
return -2
`)

// statsScript returns a partition's figures: {live, bytes, stream
// length, pending, delayed, held, dead, oldest received ns or ""}.
// ARGV: base, dead retention ms.
var statsScript = redis.NewScript(luaEvents + `
local now = clock()
local dead = base .. 'dead'
redis.call('ZREMRANGEBYSCORE', dead, '-inf', now - tonumber(ARGV[2]))
local pending = 0
local p = redis.pcall('XPENDING', KEYS[1], 'gw')
if not p.err then pending = p[1] end
local live = base .. 'live'
local c = redis.call('HMGET', base .. 'cnt', 'b', 'w')
local oldest = ''
local first = redis.call('ZRANGE', live, 0, 0)
if first[1] then oldest = redis.call('HGET', evkey(first[1]), 'rt') or '' end
return {redis.call('ZCARD', live), tonumber(c[1] or 0), redis.call('XLEN', KEYS[1]), pending,
  redis.call('ZCARD', base .. 'delay'), tonumber(c[2] or 0), redis.call('ZCARD', dead), oldest}
`)

// listScript reads one page of the index, newest first, from offset:
// the listed fields of each event that matches status ("" any),
// dropping the ids of expired events from the index. ARGV: base, since
// µs or "-inf", status, offset, page size, then the fields (id first).
// Returns {how far the offset moves, 1 when the index is exhausted,
// then the matching events' fields}.
var listScript = redis.NewScript(luaEvents + `
local idx = base .. 'idx'
local ids = redis.call('ZREVRANGEBYSCORE', idx, '+inf', ARGV[2], 'LIMIT', ARGV[4], ARGV[5])
local out = {0, 0}
local gone, sfield = 0, 0
for i = 6, #ARGV do
  if ARGV[i] == 's' then sfield = i - 5 end
end
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', evkey(id), unpack(ARGV, 6))
  if not f[1] then
    redis.call('ZREM', idx, id)
    gone = gone + 1
  elseif ARGV[3] == '' or f[sfield] == ARGV[3] then
    out[#out + 1] = f
  end
end
out[1] = #ids - gone
if #ids < tonumber(ARGV[5]) then out[2] = 1 end
return out
`)

// repairScript puts back into the stream the events that should be in
// it and are not, after the stream was lost while their records were
// kept (someone deleted the stream): among ARGV[3] live events from
// offset ARGV[2], those neither held, nor waiting in delay, nor with
// their entry still in the stream. ARGV: base, offset, count. Returns
// {events looked at, events put back}.
var repairScript = redis.NewScript(luaEvents + `
local ids = redis.call('ZRANGE', base .. 'live', ARGV[2], tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1)
local fixed = 0
for _, id in ipairs(ids) do
  local ev = evkey(id)
  if redis.call('HGET', ev, 'w') ~= '1' and not redis.call('ZSCORE', base .. 'delay', id) then
    local e = redis.call('HGET', ev, 'e')
    if not e or #redis.call('XRANGE', KEYS[1], e, e) == 0 then
      ready(ev, id)
      fixed = fixed + 1
    end
  end
end
return {#ids, fixed}
`)

// sweepConsumersScript deletes the group's consumers that lease
// nothing and were idle for ARGV[1] ms: every process names its own
// consumer, so without this a group gathers one per restart. Deleting a
// consumer with nothing pending loses nothing, and one still alive is
// made again by its next read. Returns how many it deleted.
var sweepConsumersScript = redis.NewScript(`
local gone = 0
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], 'gw')
if not ok then return 0 end
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[1]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'gw', f['name'])
    gone = gone + 1
  end
end
return gone
`)

// acquireSlotScript takes one of ARGV[2] slots of KEYS[1] (a ZSET of
// tokens scored by expiry) for token ARGV[1] and ARGV[3] ms, dropping
// expired ones first; a holder asking again renews its slot. The key
// expires with its last slot. Returns 1 taken, 0 all taken.
var acquireSlotScript = redis.NewScript(luaClock + `
local now = clock()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
`)
