package main

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
)

// TestServingTLSRefusesOldVersionsAndWeakSuites: the proxy listener's TLS
// settings refuse TLS 1.0 and 1.1, and in TLS 1.2 every cipher suite
// without ECDHE and an AEAD (Go would accept AES-CBC-SHA by default).
func TestServingTLSRefusesOldVersionsAndWeakSuites(t *testing.T) {
	cert, err := selfSignedCertificate(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", servingTLS(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
			}(c)
		}
	}()
	handshake := func(c *tls.Config) error {
		c.InsecureSkipVerify = true
		conn, err := tls.Dial("tcp", ln.Addr().String(), c)
		if err == nil {
			conn.Close()
		}
		return err
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if err := handshake(&tls.Config{MinVersion: v, MaxVersion: v}); err == nil {
			t.Errorf("%s accepted", tls.VersionName(v))
		}
	}
	if err := handshake(&tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
		t.Errorf("TLS 1.3 refused: %v", err)
	}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) || !strings.Contains(s.Name, "ECDSA") && strings.HasPrefix(s.Name, "TLS_ECDHE_") {
			continue // the certificate is ECDSA: ECDHE_RSA suites cannot be negotiated anyway
		}
		err := handshake(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s.ID}})
		want := strings.HasPrefix(s.Name, "TLS_ECDHE_") && (strings.Contains(s.Name, "_GCM_") || strings.Contains(s.Name, "CHACHA20"))
		if (err == nil) != want {
			t.Errorf("TLS 1.2 %s: handshake error %v, want accepted=%v", s.Name, err, want)
		}
	}
}
