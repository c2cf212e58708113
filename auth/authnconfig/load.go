package authnconfig

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/apis/apiserver"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	apiserverv1beta1 "k8s.io/apiserver/pkg/apis/apiserver/v1beta1"
	apiservervalidation "k8s.io/apiserver/pkg/apis/apiserver/validation"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/yaml"

	"github.com/frontgate/frontgate/auth"
)

// maxJWT is kube-apiserver's limit on jwt entries.
const maxJWT = 64

// Kind is the kind of the configuration files Load reads.
const Kind = "AuthenticationConfiguration"

// apiVersions are the apiVersions Load accepts, newest first.
var apiVersions = []string{apiserverv1.SchemeGroupVersion.String(), apiserverv1beta1.ConfigSchemeGroupVersion.String()}

// Config is a loaded AuthenticationConfiguration: decoded, validated, its CEL
// expressions compiled. It is immutable; [NewAuthenticator] turns it into a
// token authenticator.
type Config struct {
	// Path is the file the configuration was read from.
	Path string
	// Spec is the configuration as decoded, in k8s.io/apiserver's internal
	// form (the same for v1 and v1beta1 files). Read-only.
	Spec *apiserver.AuthenticationConfiguration

	entries []*entry
}

// compiler compiles CEL as kube-apiserver does; building it is expensive, so
// one immutable instance is shared by every Load.
var compiler = sync.OnceValue(authenticationcel.NewDefaultCompiler)

// Load reads the AuthenticationConfiguration file at path, decodes it
// strictly (unknown and duplicate fields are errors naming the field),
// validates it with kube-apiserver's rules and frontgate's own (see the
// package documentation) and compiles its CEL expressions. Each problem is
// reported on its own line, as "path: field.path: message". Load has no side
// effects, so a reload may call it again at any time.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the authentication configuration: %w", err)
	}
	spec, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	entries, errs := validate(spec)
	if len(errs) > 0 {
		lines := make([]error, len(errs))
		for i, e := range errs {
			lines[i] = fmt.Errorf("%s: %w", path, e)
		}
		return nil, errors.Join(lines...)
	}
	return &Config{Path: path, Spec: spec, entries: entries}, nil
}

// decode turns YAML or JSON into the internal AuthenticationConfiguration.
func decode(data []byte) (*apiserver.AuthenticationConfiguration, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("the file is empty; it must hold an %s of apiVersion %s", Kind, apiVersions[0])
	}
	// Say clearly what is accepted before the codec says it differently.
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("not a YAML or JSON object: %w", err)
	}
	if meta.Kind != Kind {
		return nil, fmt.Errorf("kind is %q; it must be %s", meta.Kind, Kind)
	}
	if !slices.Contains(apiVersions, meta.APIVersion) {
		return nil, fmt.Errorf("apiVersion %q is not supported; use %s", meta.APIVersion, strings.Join(apiVersions, " or "))
	}

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{apiserver.AddToScheme, apiserverv1beta1.AddToScheme, apiserverv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	if err := scheme.SetVersionPriority(apiserverv1.SchemeGroupVersion, apiserverv1beta1.ConfigSchemeGroupVersion); err != nil {
		return nil, err
	}
	codecs := serializer.NewCodecFactory(scheme, serializer.EnableStrict)
	obj, err := runtime.Decode(codecs.UniversalDecoder(), data)
	if err != nil {
		return nil, err
	}
	spec, ok := obj.(*apiserver.AuthenticationConfiguration)
	if !ok || spec == nil {
		return nil, fmt.Errorf("expected an %s, got %T", Kind, obj)
	}
	return spec, nil
}

// validate applies kube-apiserver's validation to each jwt entry (compiling
// its CEL), then frontgate's rules, and returns the entries ready for use.
func validate(spec *apiserver.AuthenticationConfiguration) ([]*entry, field.ErrorList) {
	var errs field.ErrorList
	root := field.NewPath("jwt")
	if spec.Anonymous != nil && (spec.Anonymous.Enabled || len(spec.Anonymous.Conditions) > 0) {
		errs = append(errs, field.Forbidden(field.NewPath("anonymous"),
			"frontgate never forwards anonymous requests; remove the anonymous section or set enabled: false (kube-apiserver's own anonymous access is configured on kube-apiserver)"))
	}
	switch {
	case len(spec.JWT) == 0:
		return nil, append(errs, field.Required(root, "frontgate needs at least one JWT authenticator"))
	case len(spec.JWT) > maxJWT:
		return nil, append(errs, field.TooMany(root, len(spec.JWT), maxJWT))
	}

	entries := make([]*entry, len(spec.JWT))
	for i, jwt := range spec.JWT {
		e, entryErrs := compileEntry(i, jwt)
		entries[i] = e
		errs = append(errs, entryErrs...)
	}
	errs = append(errs, checkIssuers(spec.JWT, root)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return entries, nil
}

// compileEntry validates and compiles jwt[i] with k8s.io/apiserver's own
// function, rebasing its field paths under jwt[i] and adjusting it where
// frontgate differs: http is accepted for a loopback issuer, and
// egressSelectorType is refused (frontgate has no egress selector).
func compileEntry(i int, jwt apiserver.JWTAuthenticator) (*entry, field.ErrorList) {
	path := field.NewPath("jwt").Index(i)
	issuerPath := path.Child("issuer")
	mapper, upstream := apiservervalidation.CompileAndValidateJWTAuthenticator(compiler(), jwt, nil)

	loopbackHTTP := func(raw string) bool {
		return strings.HasPrefix(raw, "http://") && auth.CheckIssuerURL(raw) == nil
	}
	var errs field.ErrorList
	for _, fe := range upstream {
		e := *fe
		e.Field = path.String() + "." + e.Field
		switch {
		case e.Field == issuerPath.Child("egressSelectorType").String():
			continue // replaced below
		case e.Detail == "URL scheme must be https" &&
			(e.Field == issuerPath.Child("url").String() && loopbackHTTP(jwt.Issuer.URL) ||
				e.Field == issuerPath.Child("discoveryURL").String() && loopbackHTTP(jwt.Issuer.DiscoveryURL)):
			continue
		}
		errs = append(errs, &e)
	}
	if jwt.Issuer.EgressSelectorType != "" {
		errs = append(errs, field.Forbidden(issuerPath.Child("egressSelectorType"), "frontgate has no egress selector; remove the field and make the issuer reachable from frontgate directly"))
	}
	// What kube-apiserver accepts but the URL rules of auth/oidc do not, for
	// example an https URL without a host.
	for _, u := range []struct {
		p   *field.Path
		raw string
	}{{issuerPath.Child("url"), jwt.Issuer.URL}, {issuerPath.Child("discoveryURL"), jwt.Issuer.DiscoveryURL}} {
		if u.raw == "" || hasErrorFor(errs, u.p) {
			continue
		}
		if err := auth.CheckIssuerURL(u.raw); err != nil {
			errs = append(errs, field.Invalid(u.p, u.raw, "URL "+err.Error()))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}

	e := &entry{
		index:          i,
		path:           path.String(),
		spec:           jwt,
		cel:            mapper,
		claimRulePaths: map[string]string{},
		userRulePaths:  map[string]string{},
		extraPaths:     map[string]string{},
	}
	if ca := jwt.Issuer.CertificateAuthority; ca != "" {
		pool, err := certutil.NewPoolFromBytes([]byte(ca))
		if err != nil { // validated above; kept for safety
			return nil, field.ErrorList{field.Invalid(issuerPath.Child("certificateAuthority"), "<omitted>", err.Error())}
		}
		e.rootCAs = pool
	}
	for j, r := range jwt.ClaimValidationRules {
		if r.Expression != "" {
			e.claimRulePaths[r.Expression] = path.Child("claimValidationRules").Index(j).String()
		}
	}
	for j, r := range jwt.UserValidationRules {
		e.userRulePaths[r.Expression] = path.Child("userValidationRules").Index(j).String()
	}
	for j, x := range jwt.ClaimMappings.Extra {
		e.extraPaths[x.ValueExpression] = path.Child("claimMappings", "extra").Index(j).String()
	}
	return e, nil
}

func hasErrorFor(errs field.ErrorList, p *field.Path) bool {
	return slices.ContainsFunc(errs, func(e *field.Error) bool { return e.Field == p.String() })
}

// checkIssuers applies the rules across entries. kube-apiserver refuses two
// entries with the same issuer URL; frontgate accepts them (one identity
// provider, several client IDs, kubernetes/kubernetes#71162) as long as a
// token's audience can select only one of them: the entries must reach the
// issuer the same way and have disjoint audiences. Discovery URLs must differ
// between issuers, as in kube-apiserver.
func checkIssuers(jwts []apiserver.JWTAuthenticator, root *field.Path) field.ErrorList {
	var errs field.ErrorList
	firstOfIssuer := map[string]int{}
	issuerOfDiscovery := map[string]string{}
	audienceOwner := map[[2]string]int{} // {issuer, audience} → entry
	for i, jwt := range jwts {
		issuerPath := root.Index(i).Child("issuer")
		iss := jwt.Issuer.URL
		if first, ok := firstOfIssuer[iss]; ok {
			other := jwts[first].Issuer
			if jwt.Issuer.DiscoveryURL != other.DiscoveryURL {
				errs = append(errs, field.Invalid(issuerPath.Child("discoveryURL"), jwt.Issuer.DiscoveryURL,
					fmt.Sprintf("must be the same as in %s, which has the same issuer URL", root.Index(first))))
			}
			if jwt.Issuer.CertificateAuthority != other.CertificateAuthority {
				errs = append(errs, field.Invalid(issuerPath.Child("certificateAuthority"), "<omitted>",
					fmt.Sprintf("must be the same as in %s, which has the same issuer URL", root.Index(first))))
			}
		} else {
			firstOfIssuer[iss] = i
		}
		if d := jwt.Issuer.DiscoveryURL; d != "" {
			if owner, ok := issuerOfDiscovery[d]; ok && owner != iss {
				errs = append(errs, field.Duplicate(issuerPath.Child("discoveryURL"), d))
			}
			issuerOfDiscovery[d] = iss
		}
		for j, aud := range jwt.Issuer.Audiences {
			key := [2]string{iss, aud}
			if owner, ok := audienceOwner[key]; ok && owner != i {
				errs = append(errs, field.Invalid(issuerPath.Child("audiences").Index(j), aud,
					fmt.Sprintf("%s has the same issuer URL and this audience, so a token for it would match both entries; entries of one issuer need disjoint audiences", root.Index(owner))))
				continue
			}
			audienceOwner[key] = i
		}
	}
	return errs
}
