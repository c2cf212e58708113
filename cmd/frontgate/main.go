// Command frontgate is an authenticating front proxy for kube-apiserver. See
// `frontgate --help` and the README.
package main

import (
	"os"
)

func main() {
	if err := newRootCommand(defaultDeps()).Execute(); err != nil {
		os.Exit(1)
	}
}
