package testredis

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts masters cluster-enabled nodes, joins them with
// redis-cli --cluster create, and waits until every node reports
// cluster_state:ok and knows every other node, so that a client's first
// CLUSTER SLOTS already sees the final layout. Redis Cluster needs at
// least three masters.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	return StartClusterWith(t, masters, Options{})
}

// StartClusterWith is StartCluster with every node run as o says (an
// append-only file, say; TLS is not supported for clusters).
func StartClusterWith(t testing.TB, masters int, o Options) *Cluster {
	t.Helper()
	if o.TLS {
		t.Fatal("testredis: a TLS cluster is not supported")
	}
	if masters < 3 {
		t.Fatalf("testredis: a cluster needs at least 3 masters, got %d", masters)
	}
	cli := lookPath(t, "redis-cli")
	c := &Cluster{}
	root := t.TempDir()
	for i := range masters {
		dir := filepath.Join(root, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, start(t, dir, o, true, ""))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testredis: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitOK(); err != nil {
		t.Fatalf("testredis: %v", err)
	}
	return c
}

// Addrs lists the nodes' addresses, for go-redis ClusterOptions.Addrs.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// WaitReady waits until every node reports the cluster ok again, as
// after a node's Restart.
func (c *Cluster) WaitReady(t testing.TB) {
	t.Helper()
	if err := c.waitOK(); err != nil {
		t.Fatalf("testredis: %v", err)
	}
}

func (c *Cluster) waitOK() error {
	deadline := time.Now().Add(startTimeout)
	for _, n := range c.Nodes {
		for {
			info, err := n.Do("CLUSTER", "INFO")
			if err == nil && clusterReady(info, len(c.Nodes)) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("cluster node %s not ready after %v: %v\n%s", n.Addr, startTimeout, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func clusterReady(info string, nodes int) bool {
	return strings.Contains(info, "cluster_state:ok") &&
		strings.Contains(info, "cluster_slots_ok:16384") &&
		strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(nodes)+"\r\n")
}
