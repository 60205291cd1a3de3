package testredis

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Do sends one command over a fresh connection and returns the reply: a
// status, bulk string or integer as text, an array flattened with one
// element per line. A Redis error reply is returned as an error. It
// exists so tests can poke the server (FLUSHALL, SCRIPT FLUSH, CLUSTER
// INFO) without depending on the client under test. It speaks TLS and
// authenticates as the server's Options say.
func (s *Server) Do(args ...string) (string, error) {
	conn, err := s.dial()
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if s.opts.Password != "" {
		auth := []string{"AUTH", s.opts.Password}
		if s.opts.Username != "" {
			auth = []string{"AUTH", s.opts.Username, s.opts.Password}
		}
		if _, err := io.WriteString(conn, encodeCommand(auth)); err != nil {
			return "", fmt.Errorf("sending AUTH: %w", err)
		}
		if _, err := readReply(r); err != nil {
			return "", fmt.Errorf("authenticating: %w", err)
		}
	}
	if _, err := io.WriteString(conn, encodeCommand(args)); err != nil {
		return "", fmt.Errorf("sending %s: %w", args[0], err)
	}
	lines, err := readReply(r)
	return strings.Join(lines, "\n"), err
}

func (s *Server) dial() (net.Conn, error) {
	d := &net.Dialer{Timeout: time.Second}
	if s.tlsConf == nil {
		return d.Dial("tcp", s.Addr)
	}
	// The handshake shares the dial timeout, so a server that accepts
	// but never answers cannot stall waitReady.
	conn, err := tls.DialWithDialer(d, "tcp", s.Addr, s.tlsConf)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

func encodeCommand(args []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

func readReply(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("reading reply: %w", err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return []string{line[1:]}, nil
	case '-':
		return nil, errors.New(line[1:])
	case '$':
		return readBulk(r, line[1:])
	case '*':
		return readArray(r, line[1:])
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

func readBulk(r *bufio.Reader, size string) ([]string, error) {
	n, err := strconv.Atoi(size)
	if err != nil || n < 0 {
		return []string{""}, err
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading bulk reply: %w", err)
	}
	return []string{string(buf[:n])}, nil
}

func readArray(r *bufio.Reader, size string) ([]string, error) {
	n, err := strconv.Atoi(size)
	if err != nil {
		return nil, err
	}
	var out []string
	for range n {
		elem, err := readReply(r)
		if err != nil {
			return nil, err
		}
		out = append(out, elem...)
	}
	return out, nil
}
