//go:build frontgate_pprof

package main

import (
	"net/http"
	"net/http/pprof"
)

// A binary built with -tags frontgate_pprof also serves net/http/pprof on
// --metrics-listen, for profiling (test/bench -profile builds one). Release
// builds (make build, the Dockerfile) do not include it: the metrics
// listener is unauthenticated.
func init() {
	debugRoutes = func(mux *http.ServeMux) {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
}
