package sdkcheck

import (
	"os"
	"strings"
	"testing"
)

// TestSameDependenciesAsTheGateway keeps the checks honest: the SDKs
// must not raise a module the gateway needs to a version its users do
// not get, or the gateway checked here would not be the one they build.
// Both go.mod files list every module of their build (Go's pruned
// module graphs), so comparing them is comparing the builds.
func TestSameDependenciesAsTheGateway(t *testing.T) {
	gateway := requirements(t, "../go.mod")
	here := requirements(t, "go.mod")
	if len(gateway) < 10 {
		t.Fatalf("read %d requirements from the gateway's go.mod", len(gateway))
	}
	for path, want := range gateway {
		got, ok := here[path]
		if !ok {
			continue // a module the packages checked here do not need
		}
		if got != want {
			t.Errorf("%s is %s here but %s in the gateway's go.mod: pin the SDK that raised it lower", path, got, want)
		}
	}
}

// requirements reads the module versions a go.mod requires.
func requirements(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	inBlock := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "require (":
			inBlock = true
			continue
		case line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !inBlock:
			continue
		}
		if f := strings.Fields(line); len(f) >= 2 {
			out[f[0]] = f[1]
		}
	}
	return out
}
