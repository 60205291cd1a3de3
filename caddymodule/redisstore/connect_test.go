package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/webrev/webhook-gateway/caddymodule/store"
	"github.com/webrev/webhook-gateway/caddymodule/store/storetest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// These tests prove the connection options against real servers:
// config_test.go only shows which go-redis options they turn into.

// opTimeout bounds every store call here, so a connection that hangs
// fails the test instead of stalling it.
const opTimeout = 5 * time.Second

func TestSentinel(t *testing.T) {
	master := testredis.Start(t)
	sentinel := testredis.StartSentinel(t, master)
	// Only the sentinel's address is given: keys can reach the master
	// only through what the sentinel says.
	cfg := Config{Addresses: []string{sentinel.Addr}, SentinelMaster: sentinel.Master}

	t.Run("conformance", func(t *testing.T) {
		storetest.Run(t, opener(cfg))
		if got := keyspace(t, master); len(got) != 1 || got[0] != 0 {
			t.Errorf("master holds keys in dbs %v, want [0]", got)
		}
	})
	t.Run("db", func(t *testing.T) {
		flush(t, master)
		c := cfg
		c.DB = 2
		exercise(t, openStore(t, c))
		if got := keyspace(t, master); !slices.Equal(got, []int{2}) {
			t.Errorf("master holds keys in dbs %v, want [2]", got)
		}
	})
	t.Run("unknown master name", func(t *testing.T) {
		c := cfg
		c.SentinelMaster = "nosuchmaster"
		err := tryAdmit(t, openStore(t, c))
		// go-redis words an unknown name as "all sentinels ...
		// unreachable"; what matters is that it fails, and fast.
		if err == nil || !strings.HasPrefix(err.Error(), "running admit script: ") || !strings.Contains(err.Error(), "sentinels") {
			t.Errorf("err = %v, want the sentinel's refusal", err)
		}
	})
}

func TestTLS(t *testing.T) {
	srv := testredis.StartWith(t, testredis.Options{TLS: true})
	other := testredis.StartWith(t, testredis.Options{TLS: true}) // another CA
	plain := testredis.Start(t)
	withCA := func(ca, serverName string) *TLSConfig { return &TLSConfig{CAFile: ca, ServerName: serverName} }

	t.Run("conformance with the CA", func(t *testing.T) {
		storetest.Run(t, opener(Config{URL: srv.URL(), TLS: withCA(srv.CAFile, "")}))
	})
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // a regexp; "" means the store works
	}{
		{"rediss url and the CA", Config{URL: srv.URL(), TLS: withCA(srv.CAFile, "")}, ""},
		{"addresses, CA and server name", Config{Addresses: []string{srv.Addr}, TLS: withCA(srv.CAFile, "localhost")}, ""},
		{"insecure skip verify", Config{URL: srv.URL(), TLS: &TLSConfig{InsecureSkipVerify: true}}, ""},
		{"rediss url without the CA", Config{URL: srv.URL()}, `x509: certificate signed by unknown authority`},
		{"another server's CA", Config{URL: srv.URL(), TLS: withCA(other.CAFile, "")}, `x509: certificate signed by unknown authority`},
		{"server name not in the certificate", Config{URL: srv.URL(), TLS: withCA(srv.CAFile, "redis.example")}, `x509: certificate is valid for localhost, not redis\.example`},
		// The server drops a plain client without a word, so all
		// go-redis can report is the closed connection; but at once.
		{"plain client on the TLS port", Config{Addresses: []string{srv.Addr}}, `^running admit script: (EOF|.*connection reset by peer)$`},
		// A plain server waits for the end of a line that a TLS hello
		// never sends, so the handshake only ends at the dial timeout:
		// the error looks like a slow server's.
		{"TLS client on a plain port", Config{
			URL: "rediss://" + plain.Addr, TLS: &TLSConfig{InsecureSkipVerify: true},
			DialTimeout: caddy.Duration(100 * time.Millisecond),
		}, `^running admit script: .*(context deadline exceeded|i/o timeout)$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, tt.cfg)
			if tt.wantErr == "" {
				exercise(t, s)
				return
			}
			err := tryAdmit(t, s)
			if err == nil || !regexp.MustCompile(tt.wantErr).MatchString(err.Error()) {
				t.Fatalf("err = %v, want %s", err, tt.wantErr)
			}
			t.Logf("as an operator sees it: %v", err)
		})
	}
}

func TestACL(t *testing.T) {
	const user, password, wrong = "gateway", "s3cret", "hunter2-wrong"
	srv := testredis.StartWith(t, testredis.Options{
		// The gateway's user may touch only its own keys, and nobody
		// gets in without a password.
		Args:     []string{"--user", user, "on", ">" + password, "~whgw:*", "+@all", "--user", "default", "off"},
		Username: user, Password: password,
	})
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" means the store works
	}{
		{"fields", Config{Addresses: []string{srv.Addr}, Username: user, Password: password}, ""},
		{"url", Config{URL: fmt.Sprintf("redis://%s:%s@%s/0", user, password, srv.Addr)}, ""},
		{"password field overrides the url", Config{URL: fmt.Sprintf("redis://%s:%s@%s", user, wrong, srv.Addr), Password: password}, ""},
		{"wrong password in fields", Config{Addresses: []string{srv.Addr}, Username: user, Password: wrong}, "WRONGPASS"},
		{"wrong password in url", Config{URL: fmt.Sprintf("redis://%s:%s@%s", user, wrong, srv.Addr)}, "WRONGPASS"},
		{"unknown user", Config{Addresses: []string{srv.Addr}, Username: "nobody", Password: password}, "WRONGPASS"},
		{"no credentials", Config{URL: srv.URL()}, "NOAUTH"},
		{"key prefix outside the user's keys", Config{Addresses: []string{srv.Addr}, Username: user, Password: password, KeyPrefix: "other"}, "NOPERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, tt.cfg)
			if tt.wantErr == "" {
				exercise(t, s)
				return
			}
			err := tryAdmit(t, s)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			for _, secret := range []string{password, wrong} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a password: %v", err)
				}
			}
		})
	}
}

func TestDB(t *testing.T) {
	srv := testredis.Start(t)
	tests := []struct {
		name string
		cfg  Config
		db   int
	}{
		{"default", Config{URL: srv.URL()}, 0},
		{"field", Config{Addresses: []string{srv.Addr}, DB: 3}, 3},
		{"url path", Config{URL: srv.URL() + "/5"}, 5},
		{"field overrides url path", Config{URL: srv.URL() + "/5", DB: 7}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flush(t, srv)
			exercise(t, openStore(t, tt.cfg))
			if got := keyspace(t, srv); !slices.Equal(got, []int{tt.db}) {
				t.Errorf("keys in dbs %v, want [%d]", got, tt.db)
			}
		})
	}
}

// openStore opens a store the way the gateway does (Open validates the
// config and shares the client) and closes it when the test ends. Dials
// are short by default, so that go-redis's retries of a failing dial
// end well within opTimeout.
func openStore(t *testing.T, cfg Config) store.Store {
	t.Helper()
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = caddy.Duration(time.Second)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// exercise walks one claim through admit, complete, replay and release,
// and spends a rate limit: every script, with its keys, on the
// connection under test.
func exercise(t *testing.T, s store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	limit := store.Limit{Count: 1, Period: time.Minute}
	claim := func(idem, owner string) store.Admission {
		return store.Admission{Source: t.Name(), IdemKey: idem, Fingerprint: "f", Owner: owner, Lease: time.Minute}
	}
	admit := func(a store.Admission) store.Result {
		t.Helper()
		res, err := s.Admit(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := claim("e1", "A")
	first.RateKey, first.Limit = "r", limit
	if res := admit(first); !res.Rate.Allowed || res.State != store.ClaimAcquired {
		t.Fatalf("first delivery: allowed %v, state %v; want allowed, acquired", res.Rate.Allowed, res.State)
	}
	if res := admit(claim("e1", "B")); res.State != store.ClaimInFlight {
		t.Fatalf("redelivery in flight: state %v, want in flight", res.State)
	}
	answer := store.Response{Status: 201, Body: []byte("done")}
	must(t, s.Complete(ctx, first.Source, "e1", "A", answer, time.Minute))
	res := admit(claim("e1", "C"))
	if res.State != store.ClaimCompleted || res.Stored == nil || res.Stored.Status != 201 || !bytes.Equal(res.Stored.Body, answer.Body) {
		t.Fatalf("redelivery after completion: state %v, stored %+v; want completed with 201 done", res.State, res.Stored)
	}
	if res := admit(store.Admission{Source: first.Source, RateKey: "r", Limit: limit}); res.Rate.Allowed {
		t.Fatal("second delivery within the limit's period allowed")
	}
	admit(claim("e2", "A"))
	must(t, s.Release(ctx, first.Source, "e2", "A", 0))
	if res := admit(claim("e2", "B")); res.State != store.ClaimAcquired {
		t.Fatalf("after release: state %v, want acquired", res.State)
	}
}

// tryAdmit makes the store's first call, which is when it connects. A
// call that runs into opTimeout fails the test: the failures wanted
// here come from the connection itself, and fast.
func tryAdmit(t *testing.T, s store.Store) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	a := store.Admission{Source: t.Name(), IdemKey: "e", Fingerprint: "f", Owner: "o", Lease: time.Minute}
	_, err := s.Admit(ctx, a)
	if ctx.Err() != nil {
		t.Fatalf("admit still failing after %v: %v", opTimeout, err)
	}
	return err
}

func flush(t *testing.T, srv *testredis.Server) {
	t.Helper()
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
}

// keyspace lists the databases holding keys, from INFO keyspace: the
// server's own account, not the client's.
func keyspace(t *testing.T, srv *testredis.Server) []int {
	t.Helper()
	info, err := srv.Do("INFO", "keyspace")
	if err != nil {
		t.Fatal(err)
	}
	var dbs []int
	for line := range strings.Lines(info) {
		var db, keys int
		if n, _ := fmt.Sscanf(line, "db%d:keys=%d", &db, &keys); n == 2 && keys > 0 {
			dbs = append(dbs, db)
		}
	}
	return dbs
}
