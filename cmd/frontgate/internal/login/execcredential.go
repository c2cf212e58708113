package login

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
	clientauthv1beta1 "k8s.io/client-go/pkg/apis/clientauthentication/v1beta1"
)

// ExecInfoEnv is the environment variable through which client-go passes
// the ExecCredential request to the plugin.
const ExecInfoEnv = "KUBERNETES_EXEC_INFO"

// ExecInfo is what client-go told the plugin.
type ExecInfo struct {
	// APIVersion is the ExecCredential version to answer with.
	APIVersion string
	// Interactive reports whether client-go passed stdin through. It is
	// informational: neither grant reads stdin.
	Interactive bool
}

// Credential is an ID token ready for kubectl.
type Credential struct {
	// IDToken is the raw, verified ID token.
	IDToken string
	// Expiry is the token's exp.
	Expiry time.Time
}

// ReadExecInfo decodes the value of KUBERNETES_EXEC_INFO. An empty value
// (the plugin run by hand) means client.authentication.k8s.io/v1,
// interactive. client-go's exec.LoadExecCredential is not used: it requires
// spec.cluster, which kubectl sends only with provideClusterInfo.
func ReadExecInfo(value string) (ExecInfo, error) {
	if value == "" {
		return ExecInfo{APIVersion: clientauthv1.SchemeGroupVersion.String(), Interactive: true}, nil
	}
	var meta metav1.TypeMeta
	if err := json.Unmarshal([]byte(value), &meta); err != nil {
		return ExecInfo{}, fmt.Errorf("%s is not an ExecCredential: %w", ExecInfoEnv, err)
	}
	if meta.Kind != "ExecCredential" {
		return ExecInfo{}, fmt.Errorf("%s holds kind %q, want ExecCredential", ExecInfoEnv, meta.Kind)
	}
	switch meta.APIVersion {
	case clientauthv1.SchemeGroupVersion.String():
		var ec clientauthv1.ExecCredential
		if err := json.Unmarshal([]byte(value), &ec); err != nil {
			return ExecInfo{}, fmt.Errorf("%s: %w", ExecInfoEnv, err)
		}
		return ExecInfo{APIVersion: meta.APIVersion, Interactive: ec.Spec.Interactive}, nil
	case clientauthv1beta1.SchemeGroupVersion.String():
		var ec clientauthv1beta1.ExecCredential
		if err := json.Unmarshal([]byte(value), &ec); err != nil {
			return ExecInfo{}, fmt.Errorf("%s: %w", ExecInfoEnv, err)
		}
		return ExecInfo{APIVersion: meta.APIVersion, Interactive: ec.Spec.Interactive}, nil
	default:
		return ExecInfo{}, fmt.Errorf("%s asks for apiVersion %q; frontgate speaks %s and %s: set one of them as users[].user.exec.apiVersion in the kubeconfig",
			ExecInfoEnv, meta.APIVersion, clientauthv1.SchemeGroupVersion, clientauthv1beta1.SchemeGroupVersion)
	}
}

// WriteExecCredential writes cred to w as an ExecCredential of apiVersion
// (as returned by ReadExecInfo): status.token is the ID token and
// status.expirationTimestamp its exp.
func WriteExecCredential(w io.Writer, apiVersion string, cred Credential) error {
	expiry := metav1.NewTime(cred.Expiry.UTC().Truncate(time.Second))
	var obj any
	switch apiVersion {
	case clientauthv1.SchemeGroupVersion.String():
		obj = &clientauthv1.ExecCredential{
			TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "ExecCredential"},
			Status:   &clientauthv1.ExecCredentialStatus{Token: cred.IDToken, ExpirationTimestamp: &expiry},
		}
	case clientauthv1beta1.SchemeGroupVersion.String():
		obj = &clientauthv1beta1.ExecCredential{
			TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "ExecCredential"},
			Status:   &clientauthv1beta1.ExecCredentialStatus{Token: cred.IDToken, ExpirationTimestamp: &expiry},
		}
	default:
		return fmt.Errorf("cannot write an ExecCredential of apiVersion %q", apiVersion)
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}
