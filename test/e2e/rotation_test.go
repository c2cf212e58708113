package e2e

import (
	"bufio"
	"bytes"
	"context"

	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// TestCredentialRotation rotates frontgate's front-proxy client certificate
// and its serving certificate while a watch and an exec session are open and
// requests run in a loop. kube-apiserver's own view proves the new client certificate is in
// use: it comes from a second requestheader CA, and the first CA is then
// removed from kube-apiserver's (dynamically reloaded) CA bundle — requests
// through frontgate keep succeeding. No request fails, and the open watch
// keeps delivering events, and the exec session keeps echoing.
func TestCredentialRotation(t *testing.T) {
	need(t)
	pkiDir := env.FrontgatePKIDir
	bundlePath := filepath.Join(pkiDir, "requestheader-ca.crt")
	original, err := os.ReadFile(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	oldClient, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, "proxy-client.crt"), filepath.Join(pkiDir, "proxy-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	ca2, ca2Key := newTestCA(t, "frontgate requestheader CA 2")
	newClient := issueCert(t, ca2, ca2Key, &x509.Certificate{Subject: pkix.Name{CommonName: "frontgate"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	ca2PEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca2.Raw})

	// kube-apiserver trusts both CAs while frontgate rotates; afterwards the
	// original bundle is restored for the other tests.
	writeInPlace(t, bundlePath, append(append([]byte{}, original...), ca2PEM...))
	t.Cleanup(func() {
		writeInPlace(t, bundlePath, original)
		waitTrusted(t, &oldClient, true)
	})
	waitTrusted(t, newClient, true)

	// frontgate runs on its own copies of the certificate files.
	dir := t.TempDir()
	files := map[string]string{}
	for _, name := range []string{"proxy-client.crt", "proxy-client.key", "serving.crt", "serving.key"} {
		data, err := os.ReadFile(filepath.Join(pkiDir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = filepath.Join(dir, name)
		writeAtomically(t, files[name], string(data))
	}
	f := startFrontgate(t, cluster.FrontgateOptions{Args: append(append([]string{}, defaultArgs...),
		"--proxy-client-cert-file", files["proxy-client.crt"], "--proxy-client-key-file", files["proxy-client.key"],
		"--tls-cert-file", files["serving.crt"], "--tls-private-key-file", files["serving.key"],
	)})
	ns := namespace(t, "e2e-rotation")
	token := idToken(t, cluster.ClientWeb, "carol")
	admin(t, "-n", ns, "create", "role", "rotation", "--verb=get,list,watch,create", "--resource=configmaps,pods,pods/exec")
	admin(t, "-n", ns, "create", "rolebinding", "rotation", "--role=rotation", "--user="+mappedName("carol"))
	client := fgClient(t, f, false)
	servingSerial := func() string {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(f.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	oldServing := servingSerial()

	// An open watch, through frontgate.
	eventually(t, 15*time.Second, func() error {
		if r := send(t, client, http.MethodGet, f.URL+"/api/v1/namespaces/"+ns+"/configmaps", bearer(token), nil); r.code != 200 {
			return fmt.Errorf("HTTP %d", r.code)
		}
		return nil
	})
	watchReq, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.URL+"/api/v1/namespaces/"+ns+"/configmaps?watch=true", nil)
	watchReq.Header.Set("Authorization", "Bearer "+token)
	watch, err := client.Do(watchReq)
	if err != nil || watch.StatusCode != 200 {
		t.Fatalf("watch: %v %v", err, watch)
	}
	defer watch.Body.Close()
	events := make(chan string, 16)
	go func() {
		scanner := bufio.NewScanner(watch.Body)
		scanner.Buffer(make([]byte, 1<<20), 1<<20)
		for scanner.Scan() {
			events <- scanner.Text()
		}
		close(events)
	}()

	// An open exec session, through frontgate, on the test kubelet.
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	if _, err := execNode.CreatePod(c, ns, "rotation", cluster.PodOptions{}); err != nil {
		t.Fatal(err)
	}
	cancel()
	session := startKubectl(t, kubectls(t)[0], kubeconfigFor(t, f, token), nil, true, 5*time.Minute, "-n", ns, "exec", "-i", "rotation", "--", "cat")
	_, _ = io.WriteString(session.stdin, "before rotation\n")
	session.await(t, "the echo before the rotation", time.Minute, func(stdout, _ string) bool { return strings.Contains(stdout, "before rotation") })

	// Requests in a loop.
	var (
		stop          atomic.Bool
		total, failed atomic.Int64
		lastFailure   atomic.Value
		wg            sync.WaitGroup
	)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r := send(t, client, http.MethodPost, f.URL+selfSubjectReviewPath, bearer(token), selfSubjectReviewBody)
				total.Add(1)
				if r.code != http.StatusCreated {
					failed.Add(1)
					lastFailure.Store(fmt.Sprintf("HTTP %d: %s", r.code, r.body))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}

	// Rotate: the key first, then the certificate (a reload in between sees
	// a mismatched pair and keeps the old one).
	writeAtomically(t, files["proxy-client.key"], string(keyPEM(t, newClient.PrivateKey)))
	writeAtomically(t, files["proxy-client.crt"], string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newClient.Certificate[0]})))
	servingCA, servingCAKey := loadCA(t, filepath.Join(pkiDir, "serving-ca.crt"), filepath.Join(pkiDir, "serving-ca.key"))
	newServing := issueCert(t, servingCA, servingCAKey, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, DNSNames: []string{"localhost"},
		IPAddresses: oldServingIPs(t, filepath.Join(pkiDir, "serving.crt")), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	writeAtomically(t, files["serving.key"], string(keyPEM(t, newServing.PrivateKey)))
	writeAtomically(t, files["serving.crt"], string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newServing.Certificate[0]})))
	eventually(t, 60*time.Second, func() error {
		m := metrics(t, f)
		for _, config := range []string{"upstream-credentials", "serving-certificate"} {
			if m.Sum("frontgate_config_reload_total", map[string]string{"config": config, "result": "success"}) < 1 {
				return fmt.Errorf("%s not reloaded yet", config)
			}
		}
		return nil
	})

	// kube-apiserver stops trusting the first CA: only the new certificate
	// can work now.
	writeInPlace(t, bundlePath, ca2PEM)
	waitTrusted(t, &oldClient, false)
	before := total.Load()
	eventually(t, 30*time.Second, func() error {
		if total.Load() < before+30 {
			return fmt.Errorf("%d requests since the old CA was removed", total.Load()-before)
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()

	_, _ = io.WriteString(session.stdin, "after rotation\n")
	session.await(t, "the echo after the rotation", time.Minute, func(stdout, _ string) bool { return strings.Contains(stdout, "after rotation") })
	_ = session.stdin.Close()
	if r := session.wait(t, time.Minute); r.code != 0 {
		t.Errorf("the exec session opened before the rotation ended with %v", r)
	}

	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during the rotation; last: %v", n, total.Load(), lastFailure.Load())
	}
	if got := servingSerial(); got == oldServing || got != newServing.Leaf.SerialNumber.String() {
		t.Errorf("serving certificate serial %s after rotation, want the new %s", got, newServing.Leaf.SerialNumber)
	}
	admin(t, "-n", ns, "create", "configmap", "after-rotation", "--from-literal=k=v")
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the watch opened before the rotation was closed")
			}
			if strings.Contains(ev, `"name":"after-rotation"`) {
				t.Logf("%d requests during the rotation, none failed; the open watch delivered the event and the exec session echoed", total.Load())
				return
			}
		case <-deadline:
			t.Fatal("the watch opened before the rotation delivered no event for a configmap created after it")
		}
	}
}

// writeInPlace rewrites path without replacing the file, as an operator's
// editor would; kube-apiserver watches its CA files for such changes.
func writeInPlace(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitTrusted waits until kube-apiserver accepts (or refuses) identity
// headers from a request presenting cert.
func waitTrusted(t *testing.T, cert *tls.Certificate, want bool) {
	t.Helper()
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(env.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
	}, DisableKeepAlives: true}}
	// Not whoami: this also runs in t.Cleanup, after t.Context() ended.
	deadline := time.Now().Add(120 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, env.APIServerURL+selfSubjectReviewPath, bytes.NewReader(selfSubjectReviewBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Remote-User", "rotation-probe")
		trusted := false
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			trusted = resp.StatusCode == http.StatusCreated && bytes.Contains(body, []byte(`"username":"rotation-probe"`))
		}
		if trusted == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver trusts the certificate: %v, want %v, after 120s", trusted, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func keyPEM(t *testing.T, key crypto.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// loadCA reads a CA certificate and its PKCS#8 key.
func loadCA(t *testing.T, certFile, keyFile string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair.Leaf, pair.PrivateKey.(crypto.Signer)
}

// oldServingIPs returns the IP SANs of the current serving certificate.
func oldServingIPs(t *testing.T, certFile string) []net.IP {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert.IPAddresses
}
