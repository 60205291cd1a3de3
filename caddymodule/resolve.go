package caddymodule

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// resolveOption expands the {env.NAME} and {file./path} placeholders in
// an option that holds a secret or an address. It runs once, at
// provision time and before validation, so that a missing variable or
// file fails the config instead of becoming part of the value; so does
// an option that was given but resolves to nothing. Errors name the
// option and the placeholder, never the value.
func resolveOption(option, raw string) (string, error) {
	v, err := caddy.NewEmptyReplacer().ReplaceFunc(raw, func(key string, _ any) (any, error) {
		return startupPlaceholder(key)
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", option, err)
	}
	if raw != "" && strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%s (%s) resolved to an empty value", option, placeholderOnly(raw))
	}
	return v, nil
}

// placeholderOnly names a value in an error only by its placeholder: a
// literal secret is never echoed.
func placeholderOnly(s string) string {
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		return s
	}
	return "a literal value"
}

// startupPlaceholder is the value of one placeholder in an option that is
// resolved at start-up. Anything but env and file is kept as written: a
// request placeholder means nothing before there is a request.
func startupPlaceholder(key string) (string, error) {
	if name, ok := strings.CutPrefix(key, "env."); ok {
		v, set := os.LookupEnv(name)
		if !set {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return v, nil
	}
	if path, ok := strings.CutPrefix(key, "file."); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("reading {file.%s}: %w", path, err)
		}
		// Like Caddy's {file.*}: the newline an editor adds is not part
		// of the value.
		b = bytes.TrimSuffix(b, []byte("\n"))
		return string(bytes.TrimSuffix(b, []byte("\r"))), nil
	}
	return "{" + key + "}", nil
}

// resolveOptions is resolveOption for a list, naming the item that
// failed by its position.
func resolveOptions(option string, raw []string) ([]string, error) {
	out := make([]string, len(raw))
	for i, s := range raw {
		v, err := resolveOption(fmt.Sprintf("%s #%d", option, i+1), s)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
