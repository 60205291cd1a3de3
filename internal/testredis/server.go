// Package testredis runs real redis-server processes for tests: a single
// node with Start (StartWith for TLS or ACL users), a Redis Cluster with
// StartCluster, or a sentinel with StartSentinel. Servers listen on
// 127.0.0.1, keep nothing on disk beyond t.TempDir(), and are killed when
// the test ends (or, on Linux, when the test binary dies).
package testredis

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process.
type Server struct {
	// Addr is host:port, for go-redis Options.Addr.
	Addr string
	// Port stays the same across Restart.
	Port int
	// Dir is the server's working directory.
	Dir string
	// CAFile is the PEM file of the CA that signed the server's
	// certificate, when it speaks TLS; empty otherwise.
	CAFile string

	t        testing.TB
	args     []string
	opts     Options
	tlsConf  *tls.Config // Do's client config when the server speaks TLS
	sentinel string      // sentinel.conf contents, for a sentinel

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Options change what StartWith runs; the zero value is Start's plain
// single node.
type Options struct {
	// Args are extra redis-server arguments, given last so they win:
	// "--user", "app", "on", ">pw", "~*", "+@all" adds an ACL user.
	Args []string

	// Username and Password are what Do authenticates with, for a
	// server whose default user is off or has a password.
	Username, Password string

	// TLS makes the server speak TLS only, with no plain port, using a
	// certificate for 127.0.0.1 and localhost signed by a throwaway CA
	// (see Server.CAFile). Clients need not present a certificate.
	TLS bool
}

// Start runs a single redis-server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith runs a single redis-server as o says and stops it when the
// test ends.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	return start(t, t.TempDir(), o, false, "")
}

// start tries a few free ports, since another process may take the one
// picked before redis-server binds it. sentinel, when set, is the
// sentinel.conf to run the server in sentinel mode with.
func start(t testing.TB, dir string, o Options, cluster bool, sentinel string) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	var caFile string
	var tlsConf *tls.Config
	if o.TLS {
		// One CA per server, made before the port loop: retries and
		// restarts keep the files a test may already have read.
		var err error
		if caFile, tlsConf, err = writeCerts(dir); err != nil {
			t.Fatalf("testredis: making certificates: %v", err)
		}
	}
	var lastErr error
	for range 5 {
		port, err := freePort(cluster)
		if err != nil {
			t.Fatalf("testredis: finding a free port: %v", err)
		}
		s := &Server{
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir, CAFile: caFile,
			t: t, opts: o, tlsConf: tlsConf, sentinel: sentinel,
		}
		s.args = s.serverArgs(bin, cluster)
		if lastErr = s.run(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("testredis: starting redis-server: %v", lastErr)
	return nil
}

func (s *Server) serverArgs(bin string, cluster bool) []string {
	args := []string{bin}
	if s.sentinel != "" {
		// The config file must come first; run rewrites it each time.
		args = append(args, s.sentinelFile(), "--sentinel")
	}
	plainPort := strconv.Itoa(s.Port)
	if s.tlsConf != nil {
		plainPort = "0" // TLS only: a plain client must fail
	}
	args = append(args,
		"--port", plainPort,
		"--bind", "127.0.0.1",
		"--dir", s.Dir,
		"--logfile", filepath.Join(s.Dir, "redis.log"),
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
	)
	if s.tlsConf != nil {
		args = append(args,
			"--tls-port", strconv.Itoa(s.Port),
			"--tls-cert-file", filepath.Join(s.Dir, certFile),
			"--tls-key-file", filepath.Join(s.Dir, keyFile),
			"--tls-ca-cert-file", filepath.Join(s.Dir, caFile),
			"--tls-auth-clients", "no",
		)
	}
	if cluster {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
		)
	}
	return append(args, s.opts.Args...)
}

// lookPath fails the test, rather than skipping it, when a Redis binary
// is missing: a silently skipped state test proves nothing.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("testredis: %s not found on PATH; install it (Debian/Ubuntu: apt-get install redis-server; it brings redis-cli)", name)
	}
	return path
}

// run starts the process and waits until it answers PING.
func (s *Server) run() error {
	if s.sentinel != "" {
		// A sentinel rewrites its config file as it learns; starting
		// from the written one each time keeps restarts predictable.
		if err := os.WriteFile(s.sentinelFile(), []byte(s.sentinel), 0o644); err != nil {
			return fmt.Errorf("writing sentinel config: %w", err)
		}
	}
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.SysProcAttr = sysProcAttr()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", s.args[0], err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	if err := s.waitReady(done); err != nil {
		s.Stop()
		return fmt.Errorf("%w\n%s%s", err, out.String(), s.logTail())
	}
	return nil
}

func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		reply, err := s.Do("PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited", s.Port)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on port %d not answering after %v: %v", s.Port, startTimeout, err)
		}
	}
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop kills the server, as a crash would. It is safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops the server if it runs (SIGKILL, as a crash) and starts
// it again on the same port and directory. Data is lost (nothing is
// saved) except a cluster node's nodes.conf, so a restarted cluster node
// rejoins its cluster, and what Options.Args made persistent: with
// "--appendonly", "yes" the server reloads its append-only file.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.run(); err != nil {
		s.t.Fatalf("testredis: restarting redis-server: %v", err)
	}
}

// URL is the server's redis:// URL, or rediss:// when it speaks TLS.
// It carries no credentials.
func (s *Server) URL() string {
	if s.tlsConf != nil {
		return "rediss://" + s.Addr
	}
	return "redis://" + s.Addr
}

// freePort finds a port that is free now; for cluster nodes the bus
// port (port+10000) must be free too.
func freePort(cluster bool) (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !cluster {
			_ = l.Close()
			return port, nil
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		_ = l.Close()
		if err == nil && port+10000 <= 65535 {
			_ = bus.Close()
			return port, nil
		}
		if bus != nil {
			_ = bus.Close()
		}
	}
	return 0, errors.New("no port with a free cluster bus port")
}
