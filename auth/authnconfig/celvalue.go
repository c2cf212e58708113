package authnconfig

// The CEL values below follow k8s.io/apiserver's JWT authenticator
// (plugin/pkg/authenticator/token/oidc), which keeps them unexported, so that
// expressions see exactly what kube-apiserver shows them: claims decoded with
// encoding/json into any (numbers are doubles), lazily per claim, and map keys
// usable with the __dot__ escaping of Kubernetes CEL.

import (
	"encoding/json"
	"errors"

	celgo "github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"k8s.io/apiserver/pkg/authentication/user"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/lazy"

	"github.com/frontgate/frontgate/auth/oidc"
)

// claimsValue is the claims CEL variable: each claim is decoded on first use.
func claimsValue(c oidc.Claims) *lazy.MapValue {
	m := lazy.NewMapValue(types.NewObjectType("kubernetes.claims"))
	for name, raw := range c {
		m.Append(name, func(*lazy.MapValue) ref.Val {
			var value any
			if err := json.Unmarshal(raw, &value); err != nil {
				return types.NewErr("claim %q failed to unmarshal: %v", name, err)
			}
			return nativeToValue(value)
		})
	}
	return m
}

// userValue is the user CEL variable of userValidationRules.
func userValue(info user.Info) *lazy.MapValue {
	m := lazy.NewMapValue(types.NewObjectType("kubernetes.UserInfo"))
	field := func(name string, get func() any) {
		m.Append(name, func(*lazy.MapValue) ref.Val { return nativeToValue(get()) })
	}
	field("username", func() any { return info.GetName() })
	field("uid", func() any { return info.GetUID() })
	field("groups", func() any { return info.GetGroups() })
	field("extra", func() any { return info.GetExtra() })
	return m
}

func nativeToValue(value any) ref.Val {
	return unescapeWrapper(types.DefaultTypeAdapter.NativeToValue(value))
}

// unescapeMapper and unescapeLister let expressions reach map keys that are
// not CEL identifiers through their __dot__-escaped names, at every depth.
type unescapeMapper struct{ traits.Mapper }

func (m *unescapeMapper) Find(key ref.Val) (ref.Val, bool) {
	if name, ok := unescapedName(key); ok {
		key = name
	}
	value, ok := m.Mapper.Find(key)
	return unescapeWrapper(value), ok
}

type unescapeLister struct{ traits.Lister }

func (l *unescapeLister) Get(index ref.Val) ref.Val {
	return unescapeWrapper(l.Lister.Get(index))
}

func unescapeWrapper(value ref.Val) ref.Val {
	switch v := value.(type) {
	case traits.Mapper:
		return &unescapeMapper{Mapper: v}
	case traits.Lister:
		return &unescapeLister{Lister: v}
	default:
		return value
	}
}

func unescapedName(key ref.Val) (types.String, bool) {
	s, ok := key.(types.String)
	if !ok {
		return "", false
	}
	name, ok := apiservercel.Unescape(string(s))
	if !ok || name == string(s) {
		return "", false
	}
	return types.String(name), true
}

// errNotStrings is the error of stringList.
var errNotStrings = errors.New("expression must return a string or a list of strings")

// describeNotStrings says why stringList refused val.
func describeNotStrings(val ref.Val) string {
	if val.Type().TypeName() == celgo.ListType(nil).TypeName() {
		return errNotStrings.Error() + ", not a list with other elements"
	}
	return errNotStrings.Error() + ", not " + val.Type().TypeName()
}

// stringList converts the result of a groups or extra expression as
// kube-apiserver does: a string or a list of strings; null, "" and [] mean
// none, and empty strings in a list are dropped.
func stringList(val ref.Val) ([]string, error) {
	switch val.Type().TypeName() {
	case celgo.StringType.TypeName():
		s := val.Value().(string)
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	case celgo.ListType(nil).TypeName():
		var out []string
		add := func(v any) error {
			s, ok := v.(string)
			if !ok {
				return errNotStrings
			}
			if s != "" {
				out = append(out, s)
			}
			return nil
		}
		switch list := val.Value().(type) {
		case []any:
			for _, v := range list {
				if err := add(v); err != nil {
					return nil, err
				}
			}
		case []ref.Val:
			for _, v := range list {
				if err := add(v.Value()); err != nil {
					return nil, err
				}
			}
		default:
			return nil, errNotStrings
		}
		return out, nil
	case celgo.NullType.TypeName():
		return nil, nil
	default:
		return nil, errNotStrings
	}
}
