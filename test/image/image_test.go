// Package image checks the container image's build without a Docker
// engine: the binary built with exactly the Dockerfile's command is static
// and reports the version it was stamped with, and the final stage runs it
// as a non-root user from a shell-less base.
package image

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// dockerfile returns the Dockerfile's lines with continuations joined.
func dockerfile(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	var cur strings.Builder
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	return lines
}

// buildCommand is the Dockerfile's `RUN ... go build ...` line with its
// build arguments filled in and the output redirected to out.
func buildCommand(t *testing.T, version, commit, out string) string {
	t.Helper()
	for _, line := range dockerfile(t) {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			cmd := strings.TrimPrefix(line, "RUN ")
			cmd = strings.NewReplacer("${VERSION}", version, "${COMMIT}", commit, "/out/frontgate", out).Replace(cmd)
			return cmd
		}
	}
	t.Fatal("the Dockerfile has no RUN line with go build")
	return ""
}

func TestBinaryBuiltLikeTheImageIsStaticAndStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds frontgate")
	}
	out := filepath.Join(t.TempDir(), "frontgate")
	cmd := buildCommand(t, "v9.8.7-test", "abc1234", out)
	for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=", "-X main.commit="} {
		if !strings.Contains(cmd, flag) {
			t.Errorf("the Dockerfile's build lacks %q: %s", flag, cmd)
		}
	}
	build := exec.Command("sh", "-c", cmd)
	build.Dir = "../.."
	if output, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, output)
	}

	bin, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader (PT_INTERP): it is not static")
		}
	}
	if libs, _ := bin.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}

	version, err := exec.Command(out, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "frontgate v9.8.7-test (commit abc1234, " + runtime.Version()
	if !strings.HasPrefix(string(version), want) {
		t.Errorf("frontgate version printed %q, want it to start with %q", version, want)
	}
}

func TestMakefileBuildsWithTheDockerfilesFlags(t *testing.T) {
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var flags string
	for _, line := range strings.Split(string(makefile), "\n") {
		if strings.HasPrefix(line, "BUILDFLAGS") {
			flags = strings.TrimSpace(strings.SplitN(line, "=", 2)[1])
		}
	}
	flags = strings.NewReplacer("$(VERSION)", "${VERSION}", "$(COMMIT)", "${COMMIT}").Replace(flags)
	for _, line := range dockerfile(t) {
		if strings.Contains(line, "go build") && !strings.Contains(line, flags) {
			t.Errorf("Makefile BUILDFLAGS %q differ from the Dockerfile's build: %s", flags, line)
		}
	}
}

func TestFinalStageRunsAsNonRootWithoutAShell(t *testing.T) {
	var final []string
	for _, line := range dockerfile(t) {
		if strings.HasPrefix(line, "FROM ") {
			final = nil
		}
		final = append(final, line)
	}
	joined := strings.Join(final, "\n")
	for _, want := range []string{
		"FROM gcr.io/distroless/static-debian12:nonroot", // no shell, no package manager
		"USER 65532:65532",
		`ENTRYPOINT ["/frontgate"]`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("the final stage lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "RUN ") {
		t.Error("the final stage runs commands: it must only copy the binary")
	}
}
