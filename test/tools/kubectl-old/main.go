// Command kubectl-old is kubectl as released with Kubernetes 1.29 (the
// k8s.io/kubectl module pinned in go.mod; Kubernetes' own cmd/kubectl main
// does the same), for the end-to-end streaming tests' second kubectl: the
// last release whose exec, attach and cp speak SPDY unless
// KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true and whose port-forward speaks only
// SPDY. test/tools/install.sh stamps the release into the version fields.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
