package login

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/pkg/apis/clientauthentication"
	"k8s.io/client-go/pkg/apis/clientauthentication/install"
)

func TestExecCredentialRoundTrip(t *testing.T) {
	exp := time.Date(2026, 11, 27, 8, 30, 15, 0, time.UTC)
	cred := Credential{IDToken: "eyJ.header.sig", Expiry: exp.Add(400 * time.Millisecond)}
	tests := []struct {
		name, env      string
		wantVersion    string
		wantInteractve bool
	}{
		{"v1", `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}`, "client.authentication.k8s.io/v1", true},
		{"v1 not interactive", `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}`, "client.authentication.k8s.io/v1", false},
		{"v1beta1", `{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":true}}`, "client.authentication.k8s.io/v1beta1", true},
		{"v1 with cluster info", `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"cluster":{"server":"https://frontgate.example"},"interactive":false}}`, "client.authentication.k8s.io/v1", false},
		{"run by hand", "", "client.authentication.k8s.io/v1", true},
	}
	// client-go's own decoder checks what kubectl will read.
	scheme := runtime.NewScheme()
	install.Install(scheme)
	decoder := serializer.NewCodecFactory(scheme).UniversalDecoder(clientauthentication.SchemeGroupVersion)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ReadExecInfo(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if info.APIVersion != tt.wantVersion || info.Interactive != tt.wantInteractve {
				t.Errorf("info = %+v", info)
			}
			var out bytes.Buffer
			if err := WriteExecCredential(&out, info.APIVersion, cred); err != nil {
				t.Fatal(err)
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Status     struct {
					Token               string `json:"token"`
					ExpirationTimestamp string `json:"expirationTimestamp"`
				} `json:"status"`
			}
			if err := json.Unmarshal(out.Bytes(), &meta); err != nil {
				t.Fatal(err)
			}
			if meta.APIVersion != tt.wantVersion || meta.Kind != "ExecCredential" {
				t.Errorf("answered %s %s, want %s", meta.APIVersion, meta.Kind, tt.wantVersion)
			}
			if meta.Status.ExpirationTimestamp != "2026-11-27T08:30:15Z" || meta.Status.Token != cred.IDToken {
				t.Errorf("status = %+v", meta.Status)
			}
			var internal clientauthentication.ExecCredential
			if _, _, err := decoder.Decode(out.Bytes(), nil, &internal); err != nil {
				t.Fatalf("client-go cannot decode the output: %v", err)
			}
			if internal.Status == nil || internal.Status.Token != cred.IDToken || !internal.Status.ExpirationTimestamp.Time.Equal(exp) {
				t.Errorf("client-go read %+v", internal.Status)
			}
		})
	}
}

func TestReadExecInfoRefuses(t *testing.T) {
	tests := []struct{ name, env, want string }{
		{"not JSON", "{", "is not an ExecCredential"},
		{"other kind", `{"apiVersion":"v1","kind":"Pod"}`, `kind "Pod"`},
		{"v1alpha1", `{"apiVersion":"client.authentication.k8s.io/v1alpha1","kind":"ExecCredential"}`, "frontgate speaks client.authentication.k8s.io/v1 and client.authentication.k8s.io/v1beta1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadExecInfo(tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
