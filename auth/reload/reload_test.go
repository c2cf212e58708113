package reload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/frontgate/frontgate/auth"
)

func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	// A mounted ConfigMap: the file is a symlink into a directory that is
	// swapped atomically.
	write := func(version, content string) {
		t.Helper()
		data := filepath.Join(dir, "..data-"+version)
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "config.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		_ = os.Remove(tmp)
		if err := os.Symlink(data, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	write("1", "v1")
	path := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), path); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var applied atomic.Value
	applied.Store("v1")
	apply := func() error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if string(data) == "invalid" {
			return errors.New("invalid configuration")
		}
		applied.Store(string(data))
		return nil
	}
	w, err := New(Options{Name: "test", Paths: []string{path}, Apply: apply, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	count := func(result string) float64 {
		return testutil.ToFloat64(m.reloads.WithLabelValues("test", result))
	}

	tests := []struct {
		name          string
		content       string
		wantApplied   string
		wantSuccesses float64
		wantFailures  float64
	}{
		{"unchanged content is not reloaded", "v1", "v1", 0, 0},
		{"a symlink swap to new content is reloaded", "v2", "v2", 1, 0},
		{"an invalid file keeps the current configuration", "invalid", "v2", 1, 1},
		{"the same invalid content is not retried", "invalid", "v2", 1, 1},
		{"a valid file after an invalid one is reloaded", "v3", "v3", 2, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			write(string(rune('a'+i)), tt.content)
			w.check()
			if got := applied.Load(); got != tt.wantApplied {
				t.Errorf("in use %q, want %q", got, tt.wantApplied)
			}
			if s, f := count("success"), count("failure"); s != tt.wantSuccesses || f != tt.wantFailures {
				t.Errorf("reloads success=%v failure=%v, want %v and %v", s, f, tt.wantSuccesses, tt.wantFailures)
			}
		})
	}
	t.Run("a missing file keeps the current configuration and counts one failure", func(t *testing.T) {
		os.Remove(path)
		w.check()
		w.check()
		if got := applied.Load(); got != "v3" {
			t.Errorf("in use %q, want v3", got)
		}
		if f := count("failure"); f != 2 {
			t.Errorf("failures %v, want 2 (one for the invalid file, one for the outage)", f)
		}
	})
	if testutil.ToFloat64(m.lastSuccess.WithLabelValues("test")) == 0 {
		t.Error("last success timestamp not set")
	}
}

func TestNewFailsOnAMissingFile(t *testing.T) {
	_, err := New(Options{Name: "x", Paths: []string{filepath.Join(t.TempDir(), "missing")}, Apply: func() error { return nil }, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err == nil {
		t.Fatal("New accepted a missing file")
	}
}

// source is a fake token source named by the identity it returns.
type source struct {
	name    string
	ready   atomic.Bool
	running atomic.Bool
}

func (s *source) AuthenticateToken(context.Context, string) (*auth.Identity, bool, error) {
	return &auth.Identity{Name: s.name}, true, nil
}

func (s *source) Run(ctx context.Context) {
	s.running.Store(true)
	<-ctx.Done()
	s.running.Store(false)
}

func (s *source) Ready() error {
	if !s.ready.Load() {
		return errors.New(s.name + " not ready")
	}
	return nil
}

func TestTokensReplace(t *testing.T) {
	first := &source{name: "first"}
	first.ready.Store(true)
	tokens := NewTokens(first)
	name := func() string {
		id, _, _ := tokens.AuthenticateToken(context.Background(), "t")
		return id.Name
	}
	if err := tokens.Replace(&source{name: "early"}, time.Second); err == nil {
		t.Fatal("Replace before Run succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tokens.Run(ctx)
	eventually(t, first.running.Load)

	never := &source{name: "never ready"}
	if err := tokens.Replace(never, 200*time.Millisecond); err == nil {
		t.Fatal("a source that never became ready replaced the current one")
	}
	if name() != "first" || tokens.Ready() != nil {
		t.Fatalf("in use %q, ready %v; want first, ready", name(), tokens.Ready())
	}
	eventually(t, func() bool { return !never.running.Load() })

	second := &source{name: "second"}
	second.ready.Store(true)
	if err := tokens.Replace(second, time.Second); err != nil {
		t.Fatal(err)
	}
	if name() != "second" {
		t.Fatalf("in use %q, want second", name())
	}
	eventually(t, func() bool { return !first.running.Load() && second.running.Load() })
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}
