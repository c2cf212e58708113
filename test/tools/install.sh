#!/usr/bin/env bash
# install.sh builds the pinned real components the end-to-end tests and the
# demo run against (kube-apiserver, kubectl, etcd, an OpenID provider) from
# the Go module proxy, once, into a cache directory keyed by version, and
# prints that directory. Later runs find the binaries there and build nothing.
#
# Usage: test/tools/install.sh [print-dir]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
k8s_version=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$here/k8s/go.mod")
oidc_version=$(awk '$1=="github.com/zitadel/oidc/v3"{print $2; exit}' "$here/oidc/go.mod")
cache_root=${FRONTGATE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/frontgate}
dir="$cache_root/k8s-$k8s_version-oidc-$oidc_version"

if [ "${1:-}" = print-dir ]; then
	echo "$dir"
	exit 0
fi

mkdir -p "$dir"

# build NAME MODULE_DIR PACKAGE NOTE: builds one binary unless the cache has it.
build() {
	local name=$1 module=$2 pkg=$3 note=$4
	if [ -x "$dir/$name" ]; then
		return
	fi
	echo ">> building $name ($note)" >&2
	local start=$SECONDS
	(cd "$here/$module" && CGO_ENABLED=0 go build -trimpath -o "$dir/$name.tmp" "$pkg")
	mv "$dir/$name.tmp" "$dir/$name"
	echo ">> built $name in $((SECONDS - start)) s" >&2
}

build etcd k8s go.etcd.io/etcd/server/v3 "etcd for Kubernetes $k8s_version, ~1 min the first time"
build kube-apiserver k8s k8s.io/kubernetes/cmd/kube-apiserver "Kubernetes $k8s_version, first time only, ~15 min on 2 cores"
build kubectl k8s k8s.io/kubernetes/cmd/kubectl "Kubernetes $k8s_version, ~2 min the first time"
build oidc-provider oidc github.com/zitadel/oidc/v3/example/server "zitadel/oidc $oidc_version example OpenID Provider, ~15 s the first time"

echo "$dir"
