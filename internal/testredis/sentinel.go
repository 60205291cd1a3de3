package testredis

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// SentinelMaster is the name StartSentinel monitors its master under.
const SentinelMaster = "mymaster"

// Sentinel is a redis-server in sentinel mode. Stop, Restart and Do
// work as for any Server; Do talks to the sentinel, not the master.
type Sentinel struct {
	*Server
	// Master is the name the master is monitored under, for
	// go-redis FailoverOptions.MasterName.
	Master string
}

// StartSentinel runs a sentinel monitoring master with a quorum of one,
// and waits until it names the master, so a client's first SENTINEL
// get-master-addr-by-name already gets the answer. The master must be
// a plain server: the sentinel is given no TLS or ACL settings to reach
// it with.
func StartSentinel(t testing.TB, master *Server) *Sentinel {
	t.Helper()
	if master.tlsConf != nil || master.opts.Password != "" {
		t.Fatal("testredis: StartSentinel needs a master without TLS or a password")
	}
	conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n", SentinelMaster, master.Port)
	s := &Sentinel{Server: start(t, t.TempDir(), Options{}, false, conf), Master: SentinelMaster}
	if err := s.waitMaster(master); err != nil {
		t.Fatalf("testredis: %v%s", err, s.logTail())
	}
	return s
}

func (s *Sentinel) waitMaster(master *Server) error {
	want := "127.0.0.1\n" + strconv.Itoa(master.Port)
	deadline := time.Now().Add(startTimeout)
	for {
		got, err := s.Do("SENTINEL", "get-master-addr-by-name", s.Master)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sentinel %s names master %q (%v) after %v, want %s",
				s.Addr, got, err, startTimeout, net.JoinHostPort("127.0.0.1", strconv.Itoa(master.Port)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sentinelFile is where a sentinel's config lives; the sentinel needs
// it writable.
func (s *Server) sentinelFile() string { return filepath.Join(s.Dir, "sentinel.conf") }
