package redisstore

import "github.com/redis/go-redis/v9"

// Claim states as the admit script returns them; they map onto
// store.ClaimState in admit.go.
const (
	scriptNone      = 0
	scriptAcquired  = 1
	scriptInFlight  = 2
	scriptCompleted = 3
	scriptConflict  = 4
)

// admitScript is the rate limit and the idempotency claim in one round
// trip. The GCRA is store.GCRA, line for line; the clock is Redis TIME,
// so instances with skewed clocks still share one schedule. Every value
// stays below 2^53, where Lua's doubles are exact.
//
// KEYS: the rate key if ARGV[1] > 0, then the claim key if ARGV[3] ~= "".
// ARGV: interval µs, window µs (capacity × interval), owner,
// fingerprint, lease ms.
// Returns {allowed, now µs, tat µs, state, lease left ms, answer or nil}.
//
// A resend by the claim's owner (go-redis retries a command whose reply
// was lost) returns "acquired" again without charging the rate twice;
// a duplicate of a claimed event is answered from the claim and not
// charged at all, since it never reaches the upstream.
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local owner, fp = ARGV[3], ARGV[4]
local rkey, ckey
local k = 1
if interval > 0 then rkey = KEYS[k]; k = k + 1 end
if owner ~= '' then ckey = KEYS[k] end

local claim
if ckey then
  claim = redis.call('HMGET', ckey, 'o', 'f', 'r')
  -- A claim released with its payload pinned (no owner, no answer)
  -- conflicts with another payload and is free for the same one.
  if claim[1] or claim[3] or (claim[2] and claim[2] ~= fp) then
    local tat = 0
    if rkey then
      tat = math.max(tonumber(redis.call('GET', rkey) or 0), now + interval)
    end
    if claim[1] == owner and not claim[3] then
      return {1, now, tat, 1, 0, false}
    end
    if claim[2] ~= fp then
      return {1, now, tat, 4, 0, false}
    end
    if claim[3] then
      return {1, now, tat, 3, 0, claim[3]}
    end
    return {1, now, tat, 2, redis.call('PTTL', ckey), false}
  end
end

local tat = now
if rkey then
  tat = math.max(tonumber(redis.call('GET', rkey) or 0), now)
  local nxt = tat + interval
  if nxt - now > window then
    return {0, now, tat, 0, 0, false}
  end
  tat = nxt
  redis.call('SET', rkey, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
end

if not ckey then
  return {1, now, tat, 0, 0, false}
end
redis.call('HSET', ckey, 'o', owner, 'f', fp)
redis.call('PEXPIRE', ckey, ARGV[5])
return {1, now, tat, 1, 0, false}
`)

// completeScript stores the answer if ARGV[1] still holds the claim.
// The owner stays recorded, so a resent complete succeeds again.
// ARGV: owner, encoded answer, retention ms. Returns 1 if stored.
var completeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'r', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// releaseScript deletes the claim if ARGV[1] holds it and it is still
// in flight: a late release never removes a newer claim or a stored
// answer. With a pin (ARGV[2] ms > 0) it keeps the fingerprint alone for
// that long instead. Returns 1 if released.
var releaseScript = redis.NewScript(`
local c = redis.call('HMGET', KEYS[1], 'o', 'r')
if c[1] ~= ARGV[1] or c[2] then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('HDEL', KEYS[1], 'o')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return 1
`)

// extendScript pushes the expiry of a claim ARGV[1] holds and that is
// still in flight: a stored answer keeps its retention, and a claim
// released or taken over is left alone. ARGV: owner, lease ms.
// Returns 1 if extended.
var extendScript = redis.NewScript(`
local c = redis.call('HMGET', KEYS[1], 'o', 'r')
if c[1] == ARGV[1] and not c[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)
