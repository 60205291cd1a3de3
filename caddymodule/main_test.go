package caddymodule_test

import (
	"os"
	"testing"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestMain removes the gateway binary that the multi-instance tests
// build (gatewaytest.Binary) once all tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	gatewaytest.RemoveBinary()
	os.Exit(code)
}
