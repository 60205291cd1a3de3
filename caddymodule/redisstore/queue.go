package redisstore

import (
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"go.uber.org/zap"
)

// Queue is a queue.Backend on Redis Streams, shared by every gateway
// instance that uses the same Redis and key prefix.
//
// Each queue is spread over its Spec.Partitions partitions; all keys of
// a partition share the hash tag {q:<queue>:<partition>}, so every
// script runs in one Cluster slot, and partitions spread over shards.
// An event's partition is the hash (FNV-1a) of its order key when the
// queue is ordered and the key is not empty, so a key's events share a
// line, and of its id otherwise. Get, Retry and Replay look in the id's
// partition first, then in the others. Pause and concurrency slots are
// queue-wide, under {q:<queue>}. Raising a queue's partitions is safe
// (an order key may move, so its order holds only among events taken in
// after the change); lowering them strands the events of the partitions
// dropped until they are raised again.
//
// A consumer serves every partition: Receive first leases from each in
// turn (a rotating start, so none starves), one script per partition;
// when none has anything, it waits on its own connections (see
// Client.Blocking) with XREAD BLOCK, which leases nothing, until a new
// entry is added or a retry falls due, and then leases again. On a
// single node that is one XREAD over all the partitions; on a Cluster,
// whose slots one command cannot span, one per partition at once, each
// for at most clusterBlock, so a wake-up is never later than that.
// (XREADGROUP BLOCK would lease on its own connection: COUNT is per
// stream, so several partitions could lease more than asked, and a
// reply lost to a timeout would leave its entries pending until
// reclaimed.)
//
// A consumer group found missing (Redis restarted without its data, a
// stream deleted) is created again, logged and counted
// (GroupsRecreated), with backoff; live events whose entries went with
// the stream are put back into it, so an event leased then may be
// delivered twice, as at-least-once allows.
type Queue struct {
	client *Client
	prefix string
	log    *zap.Logger

	// sweepEvery and consumerIdle: see ensureGroup; tests shorten them.
	sweepEvery, consumerIdle time.Duration

	mu        sync.Mutex
	groups    map[string]*groupState
	recreated atomic.Uint64
	turn      atomic.Uint32
}

// group is the consumer group of every partition stream; the scripts
// spell it out as 'gw'.
const group = "gw"

// NewQueue returns a queue backend on a client the caller owns and
// closes. An empty prefix means DefaultKeyPrefix; a nil log logs
// nothing. See OpenQueue for one shared across config reloads.
func NewQueue(c *Client, prefix string, log *zap.Logger) *Queue {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Queue{
		client: c, prefix: prefix, log: log, groups: make(map[string]*groupState),
		sweepEvery: defaultSweepEvery, consumerIdle: defaultConsumerIdle,
	}
}

// queues shares one Queue per connection config and prefix, so that a
// config reload keeps its connections, consumer groups and counters.
var queues = caddy.NewUsagePool()

// OpenQueue returns the shared queue backend for cfg, on the shared
// client (see Acquire), creating it on first use; log is the first
// user's. Call release exactly once when done (more calls are
// ignored); the last release gives the client back.
func OpenQueue(cfg Config, log *zap.Logger) (q *Queue, release func() error, err error) {
	key, err := poolKey(cfg)
	if err != nil {
		return nil, nil, err
	}
	key += "\x00" + cfg.keyPrefix()
	v, _, err := queues.LoadOrNew(key, func() (caddy.Destructor, error) {
		c, release, err := Acquire(cfg)
		if err != nil {
			return nil, err
		}
		return sharedQueue{NewQueue(c, cfg.keyPrefix(), log), release}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return v.(sharedQueue).Queue, releaser(queues, key), nil
}

// sharedQueue gives the client back when the last user of a shared
// queue is gone.
type sharedQueue struct {
	*Queue
	release func() error
}

func (s sharedQueue) Destruct() error { return s.release() }

// Client is the client the queue talks through.
func (q *Queue) Client() *Client { return q.client }

// GroupsRecreated counts the consumer groups this queue found missing
// and created again: Redis restarted without its data, or someone
// deleted a stream. Each is logged; any is worth an alert.
func (q *Queue) GroupsRecreated() uint64 { return q.recreated.Load() }

// base is the key base of a partition: every key of the partition
// starts with it.
func (q *Queue) base(name string, p int) string {
	return q.prefix + ":{q:" + escapeTag(name) + ":" + strconv.Itoa(p) + "}:"
}

func (q *Queue) stream(name string, p int) string { return q.base(name, p) + "ready" }

// queueKey is a key of the whole queue, not of one partition.
func (q *Queue) queueKey(name, kind string) string {
	return q.prefix + ":{q:" + escapeTag(name) + "}:" + kind
}

// escapeTag keeps a queue's name from ending the hash tag early.
var escapeTag = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D").Replace

// partition is where an event lives; see Queue.
func partition(q *queue.Spec, ev *queue.Event) int {
	if q.Ordered && ev.OrderKey != "" {
		return hashPartition(ev.OrderKey, q.Partitions)
	}
	// A resent event must meet its first copy's dedup key.
	if ev.DedupKey != "" {
		return hashPartition(ev.DedupKey, q.Partitions)
	}
	return hashPartition(ev.ID, q.Partitions)
}

func hashPartition(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Interface guards
var (
	_ queue.Backend    = (*Queue)(nil)
	_ caddy.Destructor = sharedQueue{}
)
