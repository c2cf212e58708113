package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// applyConfigFile sets every flag named in the YAML file at path that was
// not given on the command line. Keys are flag names; lists are YAML
// sequences, key=value flags are YAML mappings. Unknown keys are errors.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var settings map[string]any
	if err := yaml.Unmarshal(data, &settings); err != nil {
		return fmt.Errorf("--config %s: not a YAML mapping of flag names to values: %w", path, err)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		f := fs.Lookup(key)
		if f == nil || key == "config" {
			return fmt.Errorf("--config %s: unknown setting %q; settings are the flag names of this command without dashes (see --help)", path, key)
		}
		if f.Changed {
			continue // the command line wins
		}
		values, err := configValues(settings[key])
		if err != nil {
			return fmt.Errorf("--config %s: setting %q: %w", path, key, err)
		}
		if len(values) == 0 {
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				if err := sv.Replace(nil); err != nil {
					return fmt.Errorf("--config %s: setting %q: %w", path, key, err)
				}
				continue
			}
		}
		for _, v := range values {
			if err := fs.Set(key, v); err != nil {
				return fmt.Errorf("--config %s: setting %q: %w", path, key, err)
			}
		}
	}
	return nil
}

// configValues turns one YAML value into the strings a flag accepts: one for
// a scalar, one per item for a sequence, "k=v" per entry for a mapping.
func configValues(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, item := range v {
			s, err := scalar(item)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out := make([]string, 0, len(v))
		for _, k := range keys {
			s, err := scalar(v[k])
			if err != nil {
				return nil, err
			}
			out = append(out, k+"="+s)
		}
		return out, nil
	default:
		s, err := scalar(v)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
}

func scalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	default:
		return "", fmt.Errorf("expected a string, number or boolean, got %T", v)
	}
}
