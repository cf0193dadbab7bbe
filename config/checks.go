package config

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The same rule as policy.ValidTenantID; config does not import policy so
// that loading a file needs nothing but this package.
var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

func validTenantID(id string) bool { return tenantIDPattern.MatchString(id) }

var settingPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$`)

func validSettingName(s string) bool { return settingPattern.MatchString(s) }

func containsTenant(template string) bool { return strings.Contains(template, "{tenant}") }

func checkListen(key, addr string, seen map[string]string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fieldError(key, "%q is not host:port", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fieldError(key, "%q has an invalid port", addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fieldError(key, "%q: listen on an IP address or localhost", addr)
	}
	if port != "0" {
		if other, ok := seen[addr]; ok {
			return fieldError(key, "%s is also %s", addr, other)
		}
		seen[addr] = key
	}
	return nil
}

func requireURL(key, raw string, schemes ...string) error {
	if raw == "" {
		return fieldError(key, "is required")
	}
	return checkURL(key, raw, schemes...)
}

// checkURL validates an optional URL. Errors never echo the URL, which may
// carry a password.
func checkURL(key, raw string, schemes ...string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fieldError(key, "is not a valid URL")
	}
	if !slices.Contains(schemes, u.Scheme) {
		return fieldError(key, "scheme %q is not one of %v", u.Scheme, schemes)
	}
	if u.Host == "" && u.Scheme != "unix" {
		return fieldError(key, "has no host")
	}
	return nil
}
