package main

import "crypto/tls"

// servingTLS is the proxy listener's TLS configuration: TLS 1.2 or 1.3,
// the certificate from getCertificate and, in TLS 1.2, only cipher suites
// with forward secrecy and authenticated encryption (ECDHE with AES-GCM or
// ChaCha20-Poly1305, Mozilla's "intermediate" list). Go's defaults would
// also agree to AES-CBC with HMAC-SHA1. TLS 1.3 suites are all AEAD and not
// configurable.
func servingTLS(getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		GetCertificate: getCertificate,
	}
}
