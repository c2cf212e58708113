#!/usr/bin/env bash
# install.sh builds the pinned real components the end-to-end tests and the
# demo run against — kube-apiserver, kubectl, etcd, zitadel's example OpenID
# provider, kwok's fake kubelet and an older kubectl — from the Go module
# proxy, once, into a cache directory outside the checkout, and prints that
# directory.
#
# Each binary is stamped with a hash of the files of the tools module it was
# built from (test/tools/<module>/: go.mod, go.sum and, for the project's own
# test-kubelet, its source), so bumping one pin rebuilds only that binary and
# every later run builds nothing.
#
# Usage: test/tools/install.sh [print-dir]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache_root=${FRONTGATE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/frontgate}
dir="$cache_root/tools"

if [ "${1:-}" = print-dir ]; then
	echo "$dir"
	exit 0
fi
mkdir -p "$dir"

# version MODULE_DIR PATH: the pinned version of PATH in that tools module.
version() { awk -v m="$2" '$1==m {print $2; exit}' "$here/$1/go.mod"; }

# build NAME MODULE_DIR PACKAGE NOTE [LDFLAGS]: builds one binary unless the
# cache has it from the same pins.
build() {
	local name=$1 module=$2 pkg=$3 note=$4 ldflags=${5:-} stamp
	# The linker flags count only when there are some, so that the stamps
	# of the other binaries stay what they were.
	stamp=$( (find "$here/$module" -maxdepth 1 -type f | LC_ALL=C sort | xargs cat; [ -z "$ldflags" ] || echo "$ldflags") | sha256sum | cut -c1-16)
	if [ -x "$dir/$name" ] && [ "$(cat "$dir/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
		return
	fi
	echo ">> building $name ($note)" >&2
	local start=$SECONDS
	(cd "$here/$module" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$dir/$name.tmp" "$pkg")
	mv "$dir/$name.tmp" "$dir/$name"
	echo "$stamp" > "$dir/$name.stamp"
	echo ">> built $name in $((SECONDS - start)) s" >&2
}

# release_ldflags VERSION: the linker flags that stamp a Kubernetes release
# (e.g. v1.29.6) into a kubectl built from the module proxy, as release builds
# carry it, so that `kubectl version` and the tests can tell what it is.
release_ldflags() {
	local minor pkg flags=""
	minor=$(echo "$1" | cut -d. -f2)
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$1 -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	done
	echo "$flags"
}

k8s=$(version k8s k8s.io/kubernetes)
build etcd k8s go.etcd.io/etcd/server/v3 "etcd $(version k8s go.etcd.io/etcd/server/v3) for Kubernetes $k8s, ~1 min the first time"
build kube-apiserver k8s k8s.io/kubernetes/cmd/kube-apiserver "Kubernetes $k8s, first time only, ~7-15 min on 2 cores"
build kubectl k8s k8s.io/kubernetes/cmd/kubectl "Kubernetes $k8s, ~1-2 min the first time" "$(release_ldflags "$k8s")"
# kubectl of an older release (k8s.io/kubectl v0.29.6 is Kubernetes v1.29.6).
old_kubectl=$(version kubectl-old k8s.io/kubectl | sed 's/^v0\./v1./')
build kubectl-old kubectl-old . "kubectl $old_kubectl, the older client of the streaming tests, ~1-2 min the first time" "$(release_ldflags "$old_kubectl")"
build oidc-provider oidc github.com/zitadel/oidc/v3/example/server "zitadel/oidc $(version oidc github.com/zitadel/oidc/v3) example OpenID Provider, ~15 s the first time"
build oidc-provider-device oidc . "the same OpenID Provider plus a device-grant client (test/tools/oidc/main.go), ~15 s the first time"
build kwok kwok sigs.k8s.io/kwok/cmd/kwok "kwok $(version kwok sigs.k8s.io/kwok) fake kubelet, ~2-3 min the first time"
build test-kubelet kubelet . "the exec-only test kubelet on k8s.io/cri-streaming $(version kubelet k8s.io/cri-streaming), ~30 s the first time"
build helm helm helm.sh/helm/v3/cmd/helm "helm $(version helm helm.sh/helm/v3) for the deploy/ chart tests, ~2-3 min the first time"

echo "$dir"
