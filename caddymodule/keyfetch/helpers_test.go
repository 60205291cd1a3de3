package keyfetch

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyServer is a real TLS server that counts the requests reaching it.
type keyServer struct {
	*httptest.Server
	hits  atomic.Int64
	conns atomic.Int64 // TCP connections accepted
	ca    string       // PEM file trusting its certificate
}

// newKeyServer starts a TLS server whose certificate names 127.0.0.1,
// ::1 and localhost, issued by a CA of its own written to ks.ca.
func newKeyServer(t *testing.T, h http.HandlerFunc) *keyServer {
	t.Helper()
	ks := &keyServer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.hits.Add(1)
		h(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ks.conns.Add(1)
		}
	}
	// Handshakes the tests refuse on purpose are not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	cert, caPEM := testPKI(t)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ks.Server = srv
	ks.ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ks.ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return ks
}

// hostPort is the server's "127.0.0.1:port", the allow entry that admits it.
func (ks *keyServer) hostPort() string { return ks.Listener.Addr().String() }

func (ks *keyServer) port() string {
	_, p, _ := net.SplitHostPort(ks.hostPort())
	return p
}

// newFetcher builds a Fetcher that trusts ks and admits exactly it, with
// a clock the test moves.
func newFetcher(t *testing.T, ks *keyServer, cfg Config) (*Fetcher, *testClock) {
	t.Helper()
	if ks != nil {
		cfg.TLSCA = ks.ca
		if cfg.Allow == nil {
			cfg.Allow = []string{ks.hostPort()}
		}
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.now = clock.now
	return f, clock
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// outcomes counts what an Observer was told.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) observe(_, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[outcome]++
}

func (o *outcomes) get(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[outcome]
}

// testPKI makes a CA and a server certificate it signs for localhost,
// 127.0.0.1 and ::1.
func testPKI(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "keyfetch test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}
