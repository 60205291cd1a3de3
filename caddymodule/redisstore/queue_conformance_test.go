package redisstore

import (
	"testing"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/caddymodule/queue/queuetest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// queueOpener returns backends each on its own client, as separate
// gateway instances would have.
func queueOpener(cfg Config) func(t *testing.T) queue.Backend {
	return func(t *testing.T) queue.Backend { return testQueue(t, cfg) }
}

func TestQueueConformance(t *testing.T) {
	srv := testredis.Start(t)
	cfg := Config{URL: srv.URL()}
	t.Run("1 partition", func(t *testing.T) { queuetest.Run(t, queueOpener(cfg), queuetest.Options{}) })
	t.Run("3 partitions", func(t *testing.T) { queuetest.Run(t, queueOpener(cfg), queuetest.Options{Partitions: 3}) })
}

// TestQueueConformanceCluster runs the suite on 3 masters, queues of 3
// partitions: every script's keys must be in one slot, or the cluster
// refuses it. Then it checks that partitions spread over the masters.
func TestQueueConformanceCluster(t *testing.T) {
	cluster := testredis.StartCluster(t, 3)
	cfg := Config{Addresses: cluster.Addrs(), Cluster: true}
	t.Run("conformance", func(t *testing.T) { queuetest.Run(t, queueOpener(cfg), queuetest.Options{Partitions: 3}) })
	t.Run("partitions spread", func(t *testing.T) {
		q := testQueue(t, cfg)
		for range 10 {
			receive(t, q, testSpec(t, 3), "c1", 1, 0) // makes every partition's stream
		}
		for _, n := range cluster.Nodes {
			if size, err := n.Do("DBSIZE"); err != nil || size == "0" {
				t.Errorf("node %s holds %s keys (%v); want partitions on every master", n.Addr, size, err)
			}
		}
	})
}
