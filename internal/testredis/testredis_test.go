package testredis

import (
	"bufio"
	"crypto/x509"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestServerStopRestart(t *testing.T) {
	s := Start(t)
	if _, err := s.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("stopped server still answers")
	}
	s.Stop() // twice is fine
	s.Restart()
	if reply, err := s.Do("PING"); err != nil || reply != "PONG" {
		t.Fatalf("after restart: PING = %q, %v", reply, err)
	}
	if reply, err := s.Do("GET", "k"); err != nil || reply != "" {
		t.Errorf("data survived a restart: GET = %q, %v; want nothing saved", reply, err)
	}
	if reply, err := s.Do("CONFIG", "GET", "save"); err != nil || reply != "save\n" {
		t.Errorf("CONFIG GET save = %q, %v; want empty", reply, err)
	}
}

func TestDoReplies(t *testing.T) {
	s := Start(t)
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{"status", []string{"SET", "k", "a\r\nb"}, "OK", ""},
		{"bulk with CRLF", []string{"GET", "k"}, "a\r\nb", ""},
		{"integer", []string{"INCR", "n"}, "1", ""},
		{"array", []string{"MGET", "n", "missing"}, "1\n", ""},
		{"error", []string{"INCR", "k"}, "", "ERR value is not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Do(tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Do(%q) = %q, %v; want %q", tt.args, got, err, tt.want)
			}
		})
	}
}

func TestStartCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	for _, n := range c.Nodes {
		info, err := n.Do("CLUSTER", "INFO")
		if err != nil || !clusterReady(info, 3) {
			t.Errorf("node %s: %v\n%s", n.Addr, err, info)
		}
	}
	// A restarted node reloads nodes.conf and rejoins.
	c.Nodes[1].Restart()
	if err := c.waitOK(); err != nil {
		t.Error(err)
	}
}

func TestStartTLS(t *testing.T) {
	s := StartWith(t, Options{TLS: true})
	if !strings.HasPrefix(s.URL(), "rediss://") {
		t.Errorf("URL = %q, want rediss://", s.URL())
	}
	if reply, err := s.Do("PING"); err != nil || reply != "PONG" {
		t.Fatalf("PING over TLS = %q, %v", reply, err)
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil || !x509.NewCertPool().AppendCertsFromPEM(pem) {
		t.Errorf("CAFile %s holds no certificate (%v)", s.CAFile, err)
	}
	// The plain port is off: the TLS port does not answer RESP.
	if reply, err := plainPing(s.Addr); err == nil {
		t.Errorf("plain PING on the TLS port = %q, want an error", reply)
	}
	s.Restart()
	if reply, err := s.Do("PING"); err != nil || reply != "PONG" {
		t.Errorf("after restart: PING over TLS = %q, %v", reply, err)
	}
}

func TestStartWithACL(t *testing.T) {
	s := StartWith(t, Options{
		Args:     []string{"--user", "app", "on", ">pw", "~app:*", "+@all", "--user", "default", "off"},
		Username: "app", Password: "pw",
	})
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{"authenticated", []string{"ACL", "WHOAMI"}, "app", ""},
		{"allowed key", []string{"SET", "app:k", "v"}, "OK", ""},
		{"key outside the pattern", []string{"SET", "other:k", "v"}, "", "NOPERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Do(tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Do(%q) = %q, %v; want %q", tt.args, got, err, tt.want)
			}
		})
	}
	if reply, err := plainPing(s.Addr); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Errorf("unauthenticated PING = %q, %v; want NOAUTH (default user off)", reply, err)
	}
}

func TestStartSentinel(t *testing.T) {
	master := Start(t)
	s := StartSentinel(t, master)
	if s.Master != SentinelMaster || s.Addr == master.Addr {
		t.Fatalf("sentinel %s for %q, master %s", s.Addr, s.Master, master.Addr)
	}
	if got, err := s.Do("SENTINEL", "get-master-addr-by-name", s.Master); err != nil || got != "127.0.0.1\n"+strconv.Itoa(master.Port) {
		t.Errorf("get-master-addr-by-name = %q, %v; want the master's port %d", got, err, master.Port)
	}
	// The master is the master: it reports the role the sentinel expects.
	if info, err := master.Do("INFO", "replication"); err != nil || !strings.Contains(info, "role:master") {
		t.Errorf("master INFO replication: %v\n%s", err, info)
	}
	s.Restart()
	if err := s.waitMaster(master); err != nil {
		t.Errorf("after restart: %v", err)
	}
}

// plainPing sends PING without TLS or AUTH, as a misconfigured client
// would.
func plainPing(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, encodeCommand([]string{"PING"})); err != nil {
		return "", err
	}
	lines, err := readReply(bufio.NewReader(conn))
	return strings.Join(lines, "\n"), err
}
