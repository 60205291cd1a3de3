package redisstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// redisURL is what a redis:// URL carries.
type redisURL struct {
	addr               string
	username, password string
	db                 int
	tls                bool
}

// parseURL reads redis[s]://[[user]:password@]host[:port][/db]. Options
// go in Config fields, not the query string, so that one place decides
// them. Errors never quote the URL, which may hold a password.
func parseURL(raw string) (redisURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return redisURL{}, errors.New("not a valid URL")
	}
	var r redisURL
	switch u.Scheme {
	case "redis":
	case "rediss":
		r.tls = true
	default:
		return redisURL{}, fmt.Errorf("scheme %q is not redis or rediss", u.Scheme)
	}
	if u.Hostname() == "" {
		return redisURL{}, errors.New("missing host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return redisURL{}, errors.New("query and fragment are not supported; use the config fields")
	}
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	r.addr = net.JoinHostPort(u.Hostname(), port)
	if r.db, err = parseDB(u.Path); err != nil {
		return redisURL{}, err
	}
	if u.User != nil {
		r.username = u.User.Username()
		r.password, _ = u.User.Password()
	}
	return r, nil
}

func parseDB(path string) (int, error) {
	path = strings.TrimPrefix(path, "/")
	if path == "" {
		return 0, nil
	}
	db, err := strconv.Atoi(path)
	if err != nil || db < 0 {
		return 0, errors.New("path must be a database number")
	}
	return db, nil
}
