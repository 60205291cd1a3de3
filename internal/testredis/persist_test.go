package testredis

import (
	"testing"
)

// TestAppendOnlyRestart: with an append-only file, what Redis
// acknowledged comes back after a crash (appendfsync always) or a clean
// shutdown (everysec, which fsyncs on shutdown), on the same port.
func TestAppendOnlyRestart(t *testing.T) {
	tests := []struct {
		name  string
		fsync string
		stop  func(*Server)
	}{
		{"always_killed", "always", (*Server).Kill},
		{"everysec_shut_down", "everysec", (*Server).Shutdown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := StartWith(t, Options{AppendFsync: tt.fsync})
			if got, err := s.Do("CONFIG", "GET", "appendfsync"); err != nil || got != "appendfsync\n"+tt.fsync {
				t.Fatalf("CONFIG GET appendfsync = %q, %v", got, err)
			}
			if _, err := s.Do("SET", "k", "v"); err != nil {
				t.Fatal(err)
			}
			pid, port := s.Pid(), s.Port
			tt.stop(s)
			if s.Pid() != 0 {
				t.Fatalf("Pid after stopping = %d, want 0", s.Pid())
			}
			if _, err := s.Do("PING"); err == nil {
				t.Fatal("stopped server still answers")
			}
			s.Restart()
			if s.Port != port || s.Pid() == pid || s.Pid() == 0 {
				t.Errorf("restarted as pid %d on port %d, was pid %d on port %d", s.Pid(), s.Port, pid, port)
			}
			if got, err := s.Do("GET", "k"); err != nil || got != "v" {
				t.Errorf("after restart GET k = %q, %v; want v from the append-only file", got, err)
			}
		})
	}
}

func TestCPUTime(t *testing.T) {
	s := Start(t)
	before, err := s.CPUTime()
	if err != nil || before < 0 {
		t.Fatalf("CPUTime = %v, %v", before, err)
	}
	// Enough work to show up in 10 ms ticks.
	if _, err := s.Do("EVAL", "for i = 1, 3000000 do redis.call('INCR', KEYS[1]) end return 1", "1", "n"); err != nil {
		t.Fatal(err)
	}
	after, err := s.CPUTime()
	if err != nil || after <= before {
		t.Errorf("CPUTime after 3M INCRs = %v (was %v), %v; want more", after, before, err)
	}
	s.Stop()
	if _, err := s.CPUTime(); err == nil {
		t.Error("CPUTime of a stopped server: no error")
	}
}
