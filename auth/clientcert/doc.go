// Package clientcert authenticates callers by client certificates issued by
// the organisation's own CAs, and maps each certificate to an identity with
// CEL expressions, or with Kubernetes' rule (CN is the username, each O a
// group) when there is no mapping file.
//
// # What it trusts
//
//   - The CAs given with --client-ca-file, and nothing else: not the system
//     roots, not the CA of kube-apiserver. Each file (one certificate or a
//     bundle) is one named CA; every certificate in it must be a CA
//     certificate. A client certificate is accepted only after this package
//     has verified it itself: the chain up to one of those CAs (with the
//     intermediates the client sent), the validity period of every
//     certificate in the chain, and the clientAuth extended key usage (a
//     certificate without any extended key usage counts as valid for every
//     usage, as in crypto/x509 and kube-apiserver). The listener only
//     requests certificates (tls.RequestClientCert), so crypto/tls has
//     verified nothing.
//   - The CRLs given with --client-crl-file: a certificate listed in a CRL
//     signed by its issuer is refused, leaf or intermediate. A CRL is applied
//     even after its nextUpdate; frontgate fetches no CRL and asks no OCSP
//     responder. Issuers without a CRL are not checked.
//   - RFC 9440 Client-Cert and Client-Cert-Chain headers, only when the TCP
//     peer (http.Request.RemoteAddr, never X-Forwarded-For) is inside
//     --trusted-proxy-cidrs; there are none by default. The certificate in
//     the header is verified exactly like one from the TLS handshake: the
//     proxy is trusted to relay what the client presented, not to vouch for
//     it. When a trusted proxy sends Client-Cert, that certificate is used,
//     not the proxy's own TLS client certificate.
//   - The mapping file (--client-cert-mapping), written by the operator. Its
//     expressions are compiled when it is loaded; a file that does not
//     compile is refused at start-up or on reload, never on a request.
//
// # What it refuses
//
//   - Certificates outside their validity period ([auth.ReasonCertificateExpired],
//     [auth.ReasonCertificateNotYetValid]), not chaining to a configured CA
//     ([auth.ReasonUnknownAuthority]), without clientAuth usage
//     ([auth.ReasonCertificateUsage]), revoked ([auth.ReasonCertificateRevoked]),
//     malformed or with a chain of more than ten certificates
//     ([auth.ReasonInvalidCertificate]).
//   - Certificates that match no mapping entry ([auth.ReasonNoCertificateMapping]),
//     and those for which an expression fails, exceeds its cost limit
//     ([DefaultCostLimit]), returns the wrong type or an empty username
//     ([auth.ReasonCertificateMapping]). A failure is never a partial identity
//     and never falls through to a later entry.
//   - RFC 9440 headers from any address outside --trusted-proxy-cidrs: they
//     are ignored, as if absent. The proxy deletes them from every request
//     it forwards: give it [ForwardedCertHeaders] as credential headers. A
//     trusted prefix that covers every address (/0) is refused.
//
// A request without any certificate is not an error: (nil, false, nil), so
// bearer tokens keep working on the same listener. The reserved "system:"
// prefix is not checked here: [auth.RefuseReserved] applies that rule to
// every identity source alike.
//
// # The mapping file
//
//	apiVersion: frontgate/v1alpha1
//	kind: ClientCertificateMapping
//	mappings:
//	- name: workloads              # Identity.Source is "client-certificate:workloads"
//	  cas: [spiffe]                # CA names from --client-ca-file NAME=PATH
//	  condition: cert.spiffeID.startsWith("spiffe://example.org/ns/")
//	  username: '"spiffe:" + cert.spiffeID.split("/")[6]'
//	  groups: '[cert.spiffeID.split("/")[4]]'
//	  uid: cert.spiffeID
//	  extra:
//	  - key: example.org/spiffe-id
//	    valueExpression: cert.spiffeID
//	- name: people
//	  cas: [corp]
//	  username: cert.subject.commonName
//	  groups: cert.subject.organizations
//
// Entries are tried in order; the first whose cas contains the CA the
// certificate verified against and whose condition (optional, bool) holds
// maps it. username (required) and uid produce strings; groups and each
// extra valueExpression produce a string or a list of strings. Empty groups
// are dropped; an extra key whose value is empty is omitted; an empty
// username refuses the certificate. Unknown fields are errors. Every CA
// must be named by at least one entry.
//
// # The cert variable
//
// Expressions see one variable, cert, of type [Certificate]:
//
//	cert.subject.commonName           string     CN
//	cert.subject.organizations        list(string) O
//	cert.subject.organizationalUnits  list(string) OU
//	cert.subject.serialNumber         string     the subject's serialNumber attribute
//	cert.subject.dn                   string     the whole subject, RFC 2253 ("CN=alice,O=Example")
//	cert.issuer.*                     the same fields for the issuer
//	cert.dnsNames                     list(string) DNS SANs
//	cert.emailAddresses               list(string) email SANs
//	cert.uris                         list(string) URI SANs, SPIFFE IDs included
//	cert.ipAddresses                  list(string) IP SANs
//	cert.spiffeID                     string     the SPIFFE ID of an X.509-SVID (exactly one spiffe:// URI SAN), else ""
//	cert.serial                       string     serial number, lower-case hex
//	cert.notBefore, cert.notAfter     timestamp
//	cert.sha256                       string     SHA-256 fingerprint of the DER, lower-case hex
//	cert.ca                           string     name of the CA it verified against
//
// Besides the standard library, cel-go's strings (split, lowerAscii, ...),
// lists, sets and optional-types extensions are available.
//
// # Wiring
//
// Build a [Config] with [Files.Load] (adding TrustedProxies), create the
// [Authenticator] with [New], give the listener [Authenticator.TLSConfig],
// call [Authenticator.Reload] when [Files.Paths] change (package
// auth/reload does),
// on SIGHUP for example), put the Authenticator into the
// auth.Union behind auth.RefuseReserved, and give the proxy
// [ForwardedCertHeaders] as credential headers to strip from every request
// it forwards. [New] does no I/O.
package clientcert
