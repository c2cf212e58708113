package clientcert

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/frontgate/frontgate/auth"
)

// The RFC 9440 header fields through which a TLS-terminating load balancer
// passes on the client certificate it received.
const (
	// HeaderClientCert holds the client (leaf) certificate: DER, base64, as a
	// structured-field byte sequence (":<base64>:").
	HeaderClientCert = "Client-Cert"
	// HeaderClientCertChain holds the rest of the chain the client sent: a
	// comma-separated list of byte sequences, issuer after subject.
	HeaderClientCertChain = "Client-Cert-Chain"
)

// ForwardedCertHeaders returns the names of the RFC 9440 headers. The proxy
// must delete them from every request it forwards, whether it came from a
// trusted proxy or not (proxy.Config.CredentialHeaders): they are meant for
// frontgate alone. The caller owns the returned slice.
func ForwardedCertHeaders() []string {
	return []string{HeaderClientCert, HeaderClientCertChain}
}

// forwardedChain returns the certificates of the RFC 9440 headers of h, leaf
// first, or nil when there is no Client-Cert header. A Client-Cert-Chain
// without Client-Cert is ignored.
func forwardedChain(h http.Header) ([]*x509.Certificate, error) {
	leafValues := h.Values(HeaderClientCert)
	if len(leafValues) == 0 {
		return nil, nil
	}
	invalid := func(format string, args ...any) error {
		return &auth.Error{Reason: auth.ReasonInvalidCertificate, Message: "the " + HeaderClientCert + " header from the trusted proxy " + fmt.Sprintf(format, args...)}
	}
	if len(leafValues) > 1 {
		return nil, invalid("appears %d times; it must carry exactly one certificate", len(leafValues))
	}
	der, err := parseByteSequence(leafValues[0])
	if err != nil {
		return nil, invalid("is malformed: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, invalid("does not hold a valid DER certificate: %v", err)
	}
	certs := []*x509.Certificate{leaf}
	for _, line := range h.Values(HeaderClientCertChain) {
		for _, member := range strings.Split(line, ",") {
			if len(certs) >= maxChainCertificates {
				return nil, invalid("comes with more than %d certificates in %s", maxChainCertificates-1, HeaderClientCertChain)
			}
			der, err := parseByteSequence(member)
			if err != nil {
				return nil, invalid("comes with a malformed %s: %v", HeaderClientCertChain, err)
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, invalid("comes with an invalid certificate in %s: %v", HeaderClientCertChain, err)
			}
			certs = append(certs, c)
		}
	}
	return certs, nil
}

// parseByteSequence parses an RFC 8941 byte sequence, ":" base64 ":",
// surrounded by optional spaces or tabs. Parameters are not accepted.
func parseByteSequence(v string) ([]byte, error) {
	v = strings.Trim(v, " \t")
	if len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
		return nil, errors.New(`not a structured-field byte sequence (":<base64>:")`)
	}
	b64 := v[1 : len(v)-1]
	if b64 == "" {
		return nil, errors.New("empty byte sequence")
	}
	der, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		// RFC 8941 asks parsers to accept a missing padding.
		if der, err = base64.RawStdEncoding.Strict().DecodeString(b64); err != nil {
			return nil, errors.New("invalid base64")
		}
	}
	return der, nil
}
