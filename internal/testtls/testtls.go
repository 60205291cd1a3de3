// Package testtls writes what a test's TLS clients need to trust a test
// server: the one place tests turn an httptest server's certificate into
// a PEM file for a tls_ca option.
package testtls

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// CAFile writes srv's certificate as PEM into the test's temporary
// directory and returns the file's path.
func CAFile(t testing.TB, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
