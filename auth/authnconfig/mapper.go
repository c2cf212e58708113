package authnconfig

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	celgo "github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types/traits"
	"k8s.io/apiserver/pkg/apis/apiserver"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/oidc"
)

// source is the Identity.Source of identities from an AuthenticationConfiguration.
const source = "jwt"

// credentialIDKey is the extra key kube-apiserver sets from a token's jti.
const credentialIDKey = "authentication.kubernetes.io/credential-id"

// entry is one validated jwt entry, with its CEL expressions compiled.
type entry struct {
	index   int
	path    string // "jwt[i]", for messages
	spec    apiserver.JWTAuthenticator
	rootCAs *x509.CertPool // nil: the system roots
	cel     authenticationcel.CELMapper
	// rulePaths names each CEL expression of the validation rules and extra
	// mappings by its field path; upstream rejects duplicate expressions
	// and keys, so expressions identify them.
	claimRulePaths map[string]string
	userRulePaths  map[string]string
	extraPaths     map[string]string
}

// acceptsAudience reports whether aud contains one of the entry's audiences.
func (e *entry) acceptsAudience(aud []string) bool {
	return slices.ContainsFunc(aud, func(s string) bool { return slices.Contains(e.spec.Issuer.Audiences, s) })
}

// MapClaims implements oidc.ClaimMapper with kube-apiserver's rules for an
// AuthenticationConfiguration jwt entry. kube-apiserver maps first and
// validates after; frontgate validates the claims first, which changes only
// which of several failures is reported.
func (e *entry) MapClaims(ctx context.Context, t *oidc.Token) (*auth.Identity, error) {
	c := t.Claims
	if err := e.checkDistributedGroups(c); err != nil {
		return nil, err
	}
	var claims traits.Mapper
	if e.cel.Username != nil || e.cel.Groups != nil || e.cel.UID != nil || e.cel.Extra != nil || e.cel.ClaimValidationRules != nil {
		claims = claimsValue(c)
	}

	if err := e.checkClaimRules(ctx, c, claims); err != nil {
		return nil, err
	}
	info := &user.DefaultInfo{}
	var err error
	if info.Name, err = e.username(ctx, c, claims); err != nil {
		return nil, err
	}
	if info.Groups, err = e.groups(ctx, c, claims); err != nil {
		return nil, err
	}
	if info.UID, err = e.uid(ctx, c, claims); err != nil {
		return nil, err
	}
	if info.Extra, err = e.extra(ctx, c, claims); err != nil {
		return nil, err
	}
	if err := e.checkUserRules(ctx, info); err != nil {
		return nil, err
	}
	return &auth.Identity{Name: info.Name, UID: info.UID, Groups: info.Groups, Extra: info.Extra, Source: source}, nil
}

func invalid(format string, args ...any) error {
	return &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf(format, args...)}
}

func missing(format string, args ...any) error {
	return &auth.Error{Reason: auth.ReasonMissingClaim, Message: fmt.Sprintf(format, args...)}
}

// evalError reports an expression that failed at run time. CEL's messages
// name keys and types, not values of the token.
func evalError(path string, err error) error {
	return &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("%s could not be evaluated: %s", path, auth.Truncate(err.Error(), 512)), Err: err}
}

// checkClaimRules applies claimValidationRules: claim/requiredValue pairs in
// file order, then the CEL expressions. It returns the first failure.
func (e *entry) checkClaimRules(ctx context.Context, c oidc.Claims, claims traits.Mapper) error {
	var failed error
	e.visitClaimRules(ctx, c, claims, func(_, _ string, err error) bool {
		failed = err
		return err == nil
	})
	return failed
}

// visitClaimRules applies claimValidationRules in checkClaimRules' order
// and calls visit with each rule's field path, its requirement and nil or
// the error refusing the token, until visit returns false. When the CEL
// rules cannot be evaluated at all, visit is called once for the list.
func (e *entry) visitClaimRules(ctx context.Context, c oidc.Claims, claims traits.Mapper, visit func(path, requirement string, err error) bool) {
	for i, rule := range e.spec.ClaimValidationRules {
		if rule.Claim == "" {
			continue
		}
		path := fmt.Sprintf("%s.claimValidationRules[%d]", e.path, i)
		if !visit(path, fmt.Sprintf("claim %q is %q", rule.Claim, rule.RequiredValue), claimRule(c, path, rule.Claim, rule.RequiredValue)) {
			return
		}
	}
	if e.cel.ClaimValidationRules == nil {
		return
	}
	results, err := e.cel.ClaimValidationRules.EvalClaimMappings(ctx, claims)
	if err != nil {
		visit(e.path+".claimValidationRules", "", evalError(e.path+".claimValidationRules", err))
		return
	}
	visitRules(results, e.claimRulePaths, auth.ReasonInvalidClaim, "token", visit)
}

// claimRule applies one claim/requiredValue rule at path.
func claimRule(c oidc.Claims, path, claim, want string) error {
	raw, ok := c[claim]
	if !ok {
		return missing("token has no %q claim, which %s requires to be %q", claim, path, want)
	}
	var got string
	if err := json.Unmarshal(raw, &got); err != nil {
		return invalid("claim %q is not a string, but %s requires it to be %q", claim, path, want)
	}
	if got != want {
		return invalid("claim %q is %s, but %s requires %q", claim, auth.Quote(got), path, want)
	}
	return nil
}

// checkUserRules applies userValidationRules to the mapped user and returns
// the first failure.
func (e *entry) checkUserRules(ctx context.Context, info *user.DefaultInfo) error {
	var failed error
	e.visitUserRules(ctx, info, func(_, _ string, err error) bool {
		failed = err
		return err == nil
	})
	return failed
}

// visitUserRules applies userValidationRules as visitClaimRules applies
// claimValidationRules.
func (e *entry) visitUserRules(ctx context.Context, info *user.DefaultInfo, visit func(path, requirement string, err error) bool) {
	if e.cel.UserValidationRules == nil {
		return
	}
	results, err := e.cel.UserValidationRules.EvalUser(ctx, userValue(info))
	if err != nil {
		visit(e.path+".userValidationRules", "", &auth.Error{Reason: auth.ReasonInvalidIdentity, Message: fmt.Sprintf("%s.userValidationRules could not be evaluated: %s", e.path, auth.Truncate(err.Error(), 512)), Err: err})
		return
	}
	visitRules(results, e.userRulePaths, auth.ReasonInvalidIdentity, fmt.Sprintf("user %s", auth.Quote(info.Name)), visit)
}

// visitRules calls visit for each evaluated rule with its path, its
// expression and nil when it returned true, else the error refusing the
// token with the rule's message, until visit returns false.
func visitRules(results []authenticationcel.EvaluationResult, paths map[string]string, reason, subject string, visit func(path, requirement string, err error) bool) {
	for _, r := range results {
		expr := r.ExpressionAccessor.GetExpression()
		path := paths[expr]
		if !visit(path, expr, ruleError(r, path, reason, subject)) {
			return
		}
	}
}

// ruleError is nil when the rule's result is true, else the error refusing
// the token with the rule's message.
func ruleError(r authenticationcel.EvaluationResult, path, reason, subject string) error {
	if r.EvalResult.Type() != celgo.BoolType {
		return &auth.Error{Reason: reason, Message: fmt.Sprintf("%s must return a boolean, not %s", path, r.EvalResult.Type().TypeName())}
	}
	if r.EvalResult.Value().(bool) {
		return nil
	}
	var message string
	switch a := r.ExpressionAccessor.(type) {
	case *authenticationcel.ClaimValidationCondition:
		message = a.Message
	case *authenticationcel.UserValidationCondition:
		message = a.Message
	}
	if message == "" {
		message = fmt.Sprintf("expression %q is false", r.ExpressionAccessor.GetExpression())
	}
	return &auth.Error{Reason: reason, Message: fmt.Sprintf("%s fails %s: %s", subject, path, message)}
}

// ExplainClaims implements oidc.ClaimExplainer for `frontgate explain`:
// every claimValidationRule, each claim mapping and every
// userValidationRule, with their results, evaluated by the functions
// MapClaims uses. userValidationRules are skipped when the claims do not
// map to a user.
func (e *entry) ExplainClaims(ctx context.Context, t *oidc.Token) (string, []oidc.Check) {
	c := t.Claims
	var checks []oidc.Check
	add := func(rule, requirement string, err error, passed string) {
		check := oidc.Check{Rule: rule, Requirement: requirement, Outcome: oidc.CheckPassed, Message: passed}
		if err != nil {
			check.Outcome, check.Message = oidc.CheckFailed, err.Error()
		}
		checks = append(checks, check)
	}
	visit := func(path, requirement string, err error) bool {
		add(path, requirement, err, "")
		return true
	}
	m := e.spec.ClaimMappings
	if err := e.checkDistributedGroups(c); err != nil {
		add(e.path+".claimMappings.groups.claim", m.Groups.Claim+" is not a distributed claim", err, "")
	}
	var claims traits.Mapper
	if e.cel.Username != nil || e.cel.Groups != nil || e.cel.UID != nil || e.cel.Extra != nil || e.cel.ClaimValidationRules != nil {
		claims = claimsValue(c)
	}
	e.visitClaimRules(ctx, c, claims, visit)

	info := &user.DefaultInfo{}
	var mapErr error
	note := func(err error) {
		if mapErr == nil {
			mapErr = err
		}
	}
	var err error
	info.Name, err = e.username(ctx, c, claims)
	add(e.path+".claimMappings.username", mapping(m.Username.Claim, m.Username.Expression), err, "username "+auth.Quote(info.Name))
	note(err)
	info.Groups, err = e.groups(ctx, c, claims)
	if m.Groups.Claim != "" || m.Groups.Expression != "" {
		add(e.path+".claimMappings.groups", mapping(m.Groups.Claim, m.Groups.Expression), err, plural(len(info.Groups), "group"))
	}
	note(err)
	info.UID, err = e.uid(ctx, c, claims)
	if m.UID.Claim != "" || m.UID.Expression != "" {
		add(e.path+".claimMappings.uid", mapping(m.UID.Claim, m.UID.Expression), err, "")
	}
	note(err)
	info.Extra, err = e.extra(ctx, c, claims)
	if len(m.Extra) > 0 {
		add(e.path+".claimMappings.extra", plural(len(m.Extra), "key"), err, plural(len(info.Extra), "attribute"))
	}
	note(err)

	if mapErr != nil {
		for i, r := range e.spec.UserValidationRules {
			checks = append(checks, oidc.Check{Rule: fmt.Sprintf("%s.userValidationRules[%d]", e.path, i), Requirement: r.Expression, Outcome: oidc.CheckSkipped, Message: "not evaluated: the claims do not map to a user"})
		}
		return e.path, checks
	}
	e.visitUserRules(ctx, info, visit)
	return e.path, checks
}

// plural says "1 group", "2 groups".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// mapping describes a claim mapping by its claim or its expression.
func mapping(claim, expression string) string {
	if claim != "" {
		return "claim " + strconv.Quote(claim)
	}
	return expression
}

// username maps claimMappings.username.
func (e *entry) username(ctx context.Context, c oidc.Claims, claims traits.Mapper) (string, error) {
	m := e.spec.ClaimMappings.Username
	path := e.path + ".claimMappings.username"
	if e.cel.Username != nil {
		r, err := e.cel.Username.EvalClaimMapping(ctx, claims)
		if err != nil {
			return "", evalError(path+".expression", err)
		}
		if r.EvalResult.Type() != celgo.StringType {
			return "", invalid("%s.expression must return a string, not %s", path, r.EvalResult.Type().TypeName())
		}
		name := r.EvalResult.Value().(string)
		if name == "" {
			return "", invalid("%s.expression returned an empty username", path)
		}
		return name, nil
	}
	raw, ok := c[m.Claim]
	if !ok {
		return "", missing("token has no %q claim, which %s.claim names as the username", m.Claim, path)
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", invalid("claim %q (%s.claim) is not a string", m.Claim, path)
	}
	// kube-apiserver would accept an empty or null claim, and forward the
	// prefix alone (or an empty name); frontgate never forwards those.
	if name == "" {
		return "", invalid("claim %q (%s.claim) is empty", m.Claim, path)
	}
	if m.Claim == "email" {
		if raw, ok := c["email_verified"]; ok {
			var verified bool
			if err := json.Unmarshal(raw, &verified); err != nil {
				return "", invalid("claim \"email_verified\" is not a boolean")
			}
			if !verified {
				return "", invalid("email %s is not verified (email_verified is false)", auth.Quote(name))
			}
		}
	}
	if m.Prefix != nil {
		name = *m.Prefix + name
	}
	return name, nil
}

// groups maps claimMappings.groups.
func (e *entry) groups(ctx context.Context, c oidc.Claims, claims traits.Mapper) ([]string, error) {
	m := e.spec.ClaimMappings.Groups
	path := e.path + ".claimMappings.groups"
	if m.Claim != "" {
		raw, ok := c[m.Claim]
		if !ok {
			return nil, nil
		}
		groups, err := upstreamStringOrArray(raw)
		if err != nil {
			return nil, invalid("claim %q (%s.claim) is not a string or an array of strings", m.Claim, path)
		}
		if m.Prefix != nil && *m.Prefix != "" {
			for i, g := range groups {
				groups[i] = *m.Prefix + g
			}
		}
		return groups, nil
	}
	if e.cel.Groups == nil {
		return nil, nil
	}
	r, err := e.cel.Groups.EvalClaimMapping(ctx, claims)
	if err != nil {
		return nil, evalError(path+".expression", err)
	}
	groups, err := stringList(r.EvalResult)
	if err != nil {
		return nil, invalid("%s.expression: %s", path, describeNotStrings(r.EvalResult))
	}
	return groups, nil
}

// uid maps claimMappings.uid.
func (e *entry) uid(ctx context.Context, c oidc.Claims, claims traits.Mapper) (string, error) {
	m := e.spec.ClaimMappings.UID
	path := e.path + ".claimMappings.uid"
	if m.Claim != "" {
		raw, ok := c[m.Claim]
		if !ok {
			return "", missing("token has no %q claim, which %s.claim names as the UID", m.Claim, path)
		}
		var uid string
		if err := json.Unmarshal(raw, &uid); err != nil {
			return "", invalid("claim %q (%s.claim) is not a string", m.Claim, path)
		}
		return uid, nil
	}
	if e.cel.UID == nil {
		return "", nil
	}
	r, err := e.cel.UID.EvalClaimMapping(ctx, claims)
	if err != nil {
		return "", evalError(path+".expression", err)
	}
	if r.EvalResult.Type() != celgo.StringType {
		return "", invalid("%s.expression must return a string, not %s", path, r.EvalResult.Type().TypeName())
	}
	return r.EvalResult.Value().(string), nil
}

// extra maps claimMappings.extra and, as kube-apiserver does, the jti claim
// to authentication.kubernetes.io/credential-id. It returns nil when there
// is nothing.
func (e *entry) extra(ctx context.Context, c oidc.Claims, claims traits.Mapper) (map[string][]string, error) {
	extra := map[string][]string{}
	if raw, ok := c["jti"]; ok {
		var jti string
		if json.Unmarshal(raw, &jti) == nil && jti != "" {
			extra[credentialIDKey] = []string{"JTI=" + jti}
		}
	}
	if e.cel.Extra != nil {
		results, err := e.cel.Extra.EvalClaimMappings(ctx, claims)
		if err != nil {
			return nil, evalError(e.path+".claimMappings.extra", err)
		}
		for _, r := range results {
			m, ok := r.ExpressionAccessor.(*authenticationcel.ExtraMappingExpression)
			if !ok {
				return nil, invalid("%s.claimMappings.extra: unexpected expression type %T", e.path, r.ExpressionAccessor)
			}
			values, err := stringList(r.EvalResult)
			if err != nil {
				return nil, invalid("%s.valueExpression: %s", e.extraPaths[m.Expression], describeNotStrings(r.EvalResult))
			}
			if len(values) > 0 {
				extra[m.Key] = values
			}
		}
	}
	if len(extra) == 0 {
		return nil, nil
	}
	return extra, nil
}

// upstreamStringOrArray decodes a groups claim exactly as kube-apiserver
// does: an array of strings (null elements become ""), else a string; JSON
// null is no groups.
func upstreamStringOrArray(raw json.RawMessage) ([]string, error) {
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return []string{s}, nil
}

// checkDistributedGroups refuses a token whose groups claim is a distributed
// claim (OpenID Connect Core 5.6.2), such as Entra ID's group overage.
// kube-apiserver would fetch it from the claim source's endpoint; frontgate
// does not make requests on behalf of tokens, so the token is refused rather
// than accepted without its groups. What kube-apiserver itself refuses in
// _claim_names and _claim_sources is refused too.
func (e *entry) checkDistributedGroups(c oidc.Claims) error {
	claim := e.spec.ClaimMappings.Groups.Claim
	if claim == "" {
		return nil
	}
	if _, ok := c[claim]; ok {
		return nil
	}
	rawNames, ok := c["_claim_names"]
	if !ok {
		return nil
	}
	var names map[string]string
	if err := json.Unmarshal(rawNames, &names); err != nil {
		return invalid("claim \"_claim_names\" is not an object of strings")
	}
	rawSources, ok := c["_claim_sources"]
	if !ok {
		return missing("token has \"_claim_names\" but no \"_claim_sources\"")
	}
	var sources map[string]struct {
		Endpoint string `json:"endpoint"`
	}
	if err := json.Unmarshal(rawSources, &sources); err != nil {
		return invalid("claim \"_claim_sources\" is not an object of claim sources")
	}
	src, ok := names[claim]
	if !ok {
		return nil
	}
	ep, ok := sources[src]
	if !ok {
		return invalid("token's \"_claim_names\" names the source %s for %q, which \"_claim_sources\" lacks", auth.Quote(src), claim)
	}
	if ep.Endpoint == "" {
		return nil
	}
	return invalid("the groups claim %q (%s.claimMappings.groups.claim) is a distributed claim, which frontgate does not resolve; "+
		"configure the identity provider to put the groups in the token (for Entra ID group overage, see docs/identity-providers.md)", claim, e.path)
}
