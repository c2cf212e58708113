package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// version and commit are stamped at build time with
// -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func newVersionCommand(d deps) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print frontgate's version, commit and Go version",
		Example: "  frontgate version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(d.stdout, "frontgate %s (commit %s, %s %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
