// The CustomResourceDefinitions of the custom resources deploy/ renders
// (ServiceMonitor, PrometheusRule; cert-manager Issuer, Certificate), pinned
// here and read from the Go module cache by test/e2e/deploy_test.go, which
// installs them into the test kube-apiserver. Nothing here is built.
module github.com/frontgate/frontgate/test/tools/helm/crds

go 1.26.0

require (
	github.com/cert-manager/cert-manager v1.21.2 // indirect
	github.com/prometheus-operator/prometheus-operator v0.85.0 // indirect
)
