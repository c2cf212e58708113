// Package kubeconfig builds the kubeconfig entries that point kubectl at
// frontgate: a cluster (frontgate's URL and CA), a user whose exec plugin is
// `frontgate login` with the right issuer and client, and a context joining
// them. It writes them with client-go's clientcmd, merging into an existing
// file without touching its other clusters, users and contexts, and never
// builds YAML by hand.
//
// # What it trusts
//
// [Fetch] reads frontgate's discovery document over TLS verified with the
// CA the user gave (or the system roots). The CA bundle in that document is
// trusted only because the connection that carried it was verified; plain
// http is refused. The document holds nothing secret, and neither does the
// kubeconfig this package writes: no token and no client secret.
package kubeconfig
