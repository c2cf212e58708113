package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// CheckIssuerURL reports whether raw is acceptable as an OpenID issuer,
// discovery or key-set URL: absolute https, or plain http only for a loopback
// host (a local demo or test provider, where nothing crosses a network), with
// a host and without user information, query or fragment. Its error reads
// after the quoted URL, as in fmt.Errorf("%q %w", raw, err).
func CheckIssuerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a valid URL: %w", err)
	}
	switch {
	case u.Host == "":
		return errors.New("has no host")
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
	default:
		return errors.New("must use https (http is accepted only for a loopback host such as localhost or 127.0.0.1)")
	}
	if u.User != nil {
		return errors.New("must not contain user information")
	}
	if u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "#") {
		return errors.New("must not contain a query or a fragment")
	}
	return nil
}

// IsLoopbackHost reports whether host is localhost or a loopback IP address
// (127.0.0.0/8, ::1, or an IPv4-mapped loopback address).
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
