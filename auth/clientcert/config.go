package clientcert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Config is everything an [Authenticator] needs, already read from files.
type Config struct {
	// CAs are the trust anchors for client certificates, each under a name
	// that mapping entries refer to. At least one is required.
	CAs []CA
	// CRLs are optional certificate revocation lists (see [LoadCRL]). A CRL
	// applies to the certificates of the issuer whose key signed it; a CRL
	// that names an issuer but is not signed by it is ignored.
	CRLs []*x509.RevocationList
	// Mapping turns certificates into identities; nil means the Kubernetes
	// default for every CA: CN is the username and each O is a group.
	Mapping *Mapping
	// TrustedProxies are the addresses (of TLS-terminating load balancers)
	// whose RFC 9440 Client-Cert and Client-Cert-Chain headers are believed.
	// Empty (the default) means none: the headers are ignored. A prefix that
	// covers every address (/0) is refused.
	TrustedProxies []netip.Prefix
	// Now returns the current time; nil means time.Now. Tests inject a clock.
	Now func() time.Time
}

// CA is one named set of trust anchors, typically one PEM file given with
// --client-ca-file.
type CA struct {
	// Name is how mapping entries refer to the CA (their cas field) and the
	// value of cert.ca in expressions.
	Name string
	// Certificates are the CA certificates; each must be a CA (basic
	// constraints CA:TRUE). A bundle with several is one CA.
	Certificates []*x509.Certificate
}

// checkCAName accepts what a CA name may look like: the same as an entry
// name.
func checkCAName(name string) error {
	if !entryName.MatchString(name) {
		return fmt.Errorf("CA name %q must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// ParseCAFlag splits a --client-ca-file value, "NAME=PATH" or "PATH", into
// the CA name and the path. Without NAME, the name is the file name without
// its directory and extension, lower-cased: /etc/pki/Corp-CA.pem is "corp-ca".
func ParseCAFlag(value string) (name, path string, err error) {
	if n, p, ok := strings.Cut(value, "="); ok && checkCAName(n) == nil {
		name, path = n, p
	} else {
		path = value
		base := filepath.Base(path)
		name = strings.ToLower(strings.TrimSuffix(base, filepath.Ext(base)))
		if checkCAName(name) != nil {
			return "", "", fmt.Errorf("--client-ca-file %q: cannot derive a CA name from the file name; write NAME=PATH, with NAME made of lower-case letters, digits and '-'", value)
		}
	}
	if path == "" {
		return "", "", fmt.Errorf("--client-ca-file %q: the path is empty", value)
	}
	return name, path, nil
}

// LoadCA reads the PEM file at path (one CA certificate or a bundle) as the
// CA called name. Every certificate in it must be a CA certificate.
func LoadCA(name, path string) (CA, error) {
	if err := checkCAName(name); err != nil {
		return CA{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return CA{}, fmt.Errorf("CA %q: %w", name, err)
	}
	certs, err := parseCertificatesPEM(data)
	if err != nil {
		return CA{}, fmt.Errorf("CA %q (%s): %w", name, path, err)
	}
	for _, c := range certs {
		if !c.BasicConstraintsValid || !c.IsCA {
			return CA{}, fmt.Errorf("CA %q (%s): the certificate %q is not a CA certificate (basic constraints CA:TRUE); a client certificate must not be a trust anchor", name, path, c.Subject.String())
		}
	}
	return CA{Name: name, Certificates: certs}, nil
}

// parseCertificatesPEM parses every CERTIFICATE block; other blocks are an
// error, as is a file without certificates.
func parseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(bytes.TrimSpace(rest)) > 0 {
				return nil, errors.New("contains data that is not PEM")
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("contains a %q PEM block; only CERTIFICATE blocks are allowed", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("contains no PEM certificate")
	}
	return certs, nil
}

// LoadCRL reads the certificate revocation lists in the file at path: PEM
// ("X509 CRL" blocks, several allowed) or a single DER CRL. Signatures are
// checked by [New] against the configured CAs, or at verification time
// against the intermediate that issued a certificate.
func LoadCRL(path string) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CRL: %w", err)
	}
	var crls []*x509.RevocationList
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("CRL %s: %w", path, err)
		}
		return []*x509.RevocationList{crl}, nil
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(bytes.TrimSpace(rest)) > 0 {
				return nil, fmt.Errorf("CRL %s: contains data that is not PEM", path)
			}
			break
		}
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("CRL %s: contains a %q PEM block; only X509 CRL blocks are allowed", path, block.Type)
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CRL %s: %w", path, err)
		}
		crls = append(crls, crl)
	}
	if len(crls) == 0 {
		return nil, fmt.Errorf("CRL %s: contains no CRL", path)
	}
	return crls, nil
}

// Files names the files a Config is read from: the values of
// --client-ca-file, --client-crl-file and --client-cert-mapping. [Files.Load]
// reads them at start-up and [Authenticator.Reload] again when they change.
type Files struct {
	// CAFiles are --client-ca-file values, "NAME=PATH" or "PATH" (see
	// [ParseCAFlag]); at least one is required.
	CAFiles []string
	// CRLFiles are --client-crl-file paths; optional.
	CRLFiles []string
	// MappingFile is the --client-cert-mapping path; empty means the
	// Kubernetes default mapping (CN is the user, O are the groups).
	MappingFile string
}

// Load reads every file and returns a Config with CAs, CRLs and Mapping set;
// the caller adds TrustedProxies (and Now in tests). Errors name the flag.
func (f Files) Load() (Config, error) {
	var cfg Config
	if len(f.CAFiles) == 0 {
		return cfg, errors.New("--client-ca-file: at least one CA file is required for client certificate authentication")
	}
	var names []string
	for _, v := range f.CAFiles {
		name, path, err := ParseCAFlag(v)
		if err != nil {
			return cfg, err
		}
		if slices.Contains(names, name) {
			return cfg, fmt.Errorf("--client-ca-file: two files are named %q; give distinct names with NAME=PATH", name)
		}
		ca, err := LoadCA(name, path)
		if err != nil {
			return cfg, fmt.Errorf("--client-ca-file: %w", err)
		}
		names = append(names, name)
		cfg.CAs = append(cfg.CAs, ca)
	}
	for _, path := range f.CRLFiles {
		crls, err := LoadCRL(path)
		if err != nil {
			return cfg, fmt.Errorf("--client-crl-file: %w", err)
		}
		cfg.CRLs = append(cfg.CRLs, crls...)
	}
	if f.MappingFile != "" {
		m, err := LoadMapping(f.MappingFile, names)
		if err != nil {
			return cfg, fmt.Errorf("--client-cert-mapping: %w", err)
		}
		cfg.Mapping = m
	}
	return cfg, nil
}

// Paths returns every file f names, for change detection.
func (f Files) Paths() ([]string, error) {
	var paths []string
	for _, v := range f.CAFiles {
		_, path, err := ParseCAFlag(v)
		if err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	paths = append(paths, f.CRLFiles...)
	if f.MappingFile != "" {
		paths = append(paths, f.MappingFile)
	}
	return paths, nil
}

// ParseTrustedProxies parses --trusted-proxy-cidrs values (CIDR prefixes or
// single addresses).
func ParseTrustedProxies(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		v = strings.TrimSpace(v)
		p, err := netip.ParsePrefix(v)
		if err != nil {
			addr, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("--trusted-proxy-cidrs: %q is neither a CIDR prefix nor an IP address", v)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}
