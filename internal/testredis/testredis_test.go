package testredis

import (
	"strings"
	"testing"
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
