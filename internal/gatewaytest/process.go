package gatewaytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// binaryPackage is the gateway's command, built once per test binary.
const binaryPackage = "github.com/webrev/webhook-gateway/cmd/webhook-gateway"

// Bounds of a gateway process's life.
const (
	buildTimeout = 5 * time.Minute
	stopTimeout  = 10 * time.Second
	startTries   = 3
)

var build struct {
	once sync.Once
	dir  string // removed by RemoveBinary
	path string
	err  error
}

// Binary builds cmd/webhook-gateway the first time it is called in a
// test binary and returns the executable's path. Call RemoveBinary from
// TestMain to delete it when the tests are done.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() { build.path, build.err = buildBinary() })
	if build.err != nil {
		t.Fatalf("building %s: %v", binaryPackage, build.err)
	}
	return build.path
}

// RemoveBinary deletes what Binary built, if anything. Call it after
// m.Run in TestMain; processes still running keep their executable.
func RemoveBinary() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

func buildBinary() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	if build.dir, err = os.MkdirTemp("", "webhook-gateway-test-"); err != nil {
		return "", err
	}
	path := filepath.Join(build.dir, "webhook-gateway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, binaryPackage)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return path, nil
}

// moduleRoot finds the directory of go.mod from the test's working
// directory (the package under test, inside the module).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("the test does not run inside the module")
	}
	return filepath.Dir(gomod), nil
}

// Instance is a gateway running as its own process, as in production:
// `webhook-gateway run` with a Caddyfile. Several instances can share a
// Redis, which is the point: state shared between processes, not
// between handlers of one process.
type Instance struct {
	endpoint

	// Admin is the admin API's address (localhost:port) for an instance
	// started by StartProcessAdmin; empty otherwise.
	Admin string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been reaped
}

// StartProcess writes a Caddyfile (the same shape as Start's: globals in
// the global options block, site in an HTTPS site block with `tls
// internal`), runs the built gateway on it and waits until it answers
// over TLS. Each instance has its own storage, hence its own local CA,
// and a Client that trusts it. The process is stopped (SIGTERM, then
// SIGKILL) when the test ends.
func StartProcess(t testing.TB, globals, site string) *Instance {
	t.Helper()
	return startProcess(t, globals, site, false)
}

// StartProcessAdmin is StartProcess with Caddy's admin API on, at
// Instance.Admin, for the subcommands that call it.
func StartProcessAdmin(t testing.TB, globals, site string) *Instance {
	t.Helper()
	return startProcess(t, globals, site, true)
}

func startProcess(t testing.TB, globals, site string, admin bool) *Instance {
	t.Helper()
	bin := Binary(t)
	var lastErr error
	for range startTries {
		// Each try gets new ports: the likeliest failure is a port taken
		// between freePort and the gateway's bind.
		inst, err := runInstance(t, bin, globals, site, admin)
		if err == nil {
			return inst
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("starting a gateway process: %v", lastErr)
	return nil
}

func runInstance(t testing.TB, bin, globals, site string, admin bool) (*Instance, error) {
	dir, err := os.MkdirTemp(t.TempDir(), "instance-")
	if err != nil {
		return nil, err
	}
	inst := &Instance{endpoint: newEndpoint(t, dir), exited: make(chan struct{})}
	if admin {
		inst.admin = fmt.Sprintf("localhost:%d", freePort(t))
		inst.Admin = inst.admin
	}
	text := caddyfile.Format([]byte(inst.config(globals, site)))
	// Adapt here too: a config error is reported with the config, at
	// once, rather than as a process that never became ready.
	if _, err := Adapt(string(text)); err != nil {
		return nil, fmt.Errorf("adapting the Caddyfile: %v\n%s", err, text)
	}
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, text, 0o600); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "process.log"))
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child holds its own descriptor
	inst.cmd = exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	inst.cmd.Dir = dir
	inst.cmd.Stdout, inst.cmd.Stderr = out, out
	// Keep Caddy's default data and config dirs in the temp dir too.
	inst.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	inst.cmd.SysProcAttr = sysProcAttr()
	if err := inst.cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", bin, err)
	}
	go func() {
		_ = inst.cmd.Wait()
		close(inst.exited)
	}()
	t.Cleanup(func() { inst.stop(t) })

	if inst.Client, err = inst.trustingClient(t, inst.exited); err == nil {
		err = inst.awaitTLS(inst.exited)
	}
	if err != nil {
		inst.Kill()
		return nil, fmt.Errorf("%w\n%s", err, inst.processLog())
	}
	return inst, nil
}

// Kill sends SIGKILL and waits for the process to be gone: the gateway
// dies as in a crash or an OOM kill, mid-request, without releasing
// anything. Safe to call more than once.
func (i *Instance) Kill() {
	_ = i.cmd.Process.Signal(syscall.SIGKILL)
	<-i.exited
}

// Exited is closed when the process has ended.
func (i *Instance) Exited() <-chan struct{} { return i.exited }

// stop asks the gateway to shut down gracefully and kills it if it has
// not within stopTimeout.
func (i *Instance) stop(t testing.TB) {
	select {
	case <-i.exited:
		return
	default:
	}
	_ = i.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-i.exited:
	case <-time.After(stopTimeout):
		t.Logf("gateway process %d ignored SIGTERM for %v; killing it", i.cmd.Process.Pid, stopTimeout)
		i.Kill()
	}
	if out := i.processLog(); t.Failed() && out != "" {
		t.Logf("gateway process %d output:\n%s", i.cmd.Process.Pid, out)
	}
}

// processLog is the tail of what the process wrote to stdout and stderr
// (Caddy's own log goes to LogPath once the config is loaded).
func (i *Instance) processLog() string {
	b, _ := os.ReadFile(filepath.Join(i.dir, "process.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}
