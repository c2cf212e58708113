// Package cluster runs the real components frontgate's end-to-end tests and
// demo need, as child processes on loopback ports chosen at run time:
//
//   - etcd and kube-apiserver, the latter configured with RBAC, a cluster PKI
//     generated here (an admin client certificate in system:masters) and
//     exactly the --requestheader-* flags printed by `frontgate flags` after
//     `frontgate pki init`;
//   - zitadel's example OpenID Provider (github.com/zitadel/oidc/v3
//     example/server), a real OpenID Provider this project did not write,
//     from which ID tokens are obtained with the authorization-code flow, as a
//     user would;
//   - any number of frontgate processes (built once per run with go build)
//     with caller-chosen flags;
//   - node agents ([Cluster.StartNode]): kwok's fake kubelet, or the
//     project's exec-only test-kubelet, each the kubelet of one Node that
//     kube-apiserver reaches for exec, attach, logs and port-forward over the
//     real streaming protocols.
//
// The binaries of etcd, kube-apiserver, kubectl, the OpenID Provider, kwok and
// the test-kubelet come from the cache directory test/tools/install.sh builds
// (see [LocateTools]).
//
// Every process's stdout and stderr go to a file in the cluster's directory;
// [Cluster.DumpLogs] prints their tails. [Cluster.Stop] kills everything the
// cluster started; children also get SIGKILL if the parent process dies.
//
// [NewCA] and [KeyPair] are the package's small PKI toolkit (P-256 CAs and
// leaf certificates, PEM files, TLS configuration), also used by the load
// runner test/bench.
package cluster
