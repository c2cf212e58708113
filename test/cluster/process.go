package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a process gets to exit after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// Process is a child process whose combined stdout and stderr are written to
// LogPath.
type Process struct {
	// Name identifies the process in messages and log dumps.
	Name string
	// LogPath is the file receiving the process's stdout and stderr.
	LogPath string

	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// startProcess starts bin with args and env (added to the current
// environment), in its own process group, logging to logPath (appended to,
// so a restarted process keeps its history).
func startProcess(name, logPath, bin string, args, env []string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "=== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: Stop signals the whole group, and a terminal's
		// Ctrl-C reaches only the parent, which then stops children in order.
		Setpgid: true,
		// Children die with the parent even when it cannot clean up
		// (go test -timeout panic, SIGKILL).
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitError returns how the process ended, or nil while it runs.
func (p *Process) ExitError() error {
	if p.Running() {
		return nil
	}
	if p.waitErr == nil {
		return errors.New("exited with status 0")
	}
	return p.waitErr
}

// ExitCode returns the exit status once the process has exited: -1 if a
// signal killed it (including the SIGKILL Stop sends after its grace period)
// or if it still runs.
func (p *Process) ExitCode() int {
	if p.Running() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM to the process group, waits up to 10 s and then sends
// SIGKILL. It returns once the process has exited. Calling it again is a no-op.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		if !p.Running() {
			return
		}
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
		// Anything the process forked into its group goes too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

// Signal sends sig to the process alone (not to its group).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL to the process group, as a crash would end it, and
// returns once the process has exited.
func (p *Process) Kill() error {
	if !p.Running() {
		return errors.New(p.Name + " is not running")
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return nil
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string { return tailFile(p.LogPath, n) }

// Log returns the process's whole log.
func (p *Process) Log() ([]byte, error) { return os.ReadFile(p.LogPath) }

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	// Logs are small enough here; keep only the last 1 MiB to bound memory.
	const maxRead = 1 << 20
	if st, err := f.Stat(); err == nil && st.Size() > maxRead {
		_, _ = f.Seek(st.Size()-maxRead, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	data = bytes.TrimRight(data, "\n")
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// waitFor calls check every interval until it reports done, ctx ends, or
// proc (if not nil) exits. An error from check is not fatal: it is the reason
// for not being done yet, shown if waiting times out. It is the harness's
// only way of waiting.
func waitFor(ctx context.Context, what string, proc *Process, interval time.Duration, check func(context.Context) (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var exited <-chan struct{}
	if proc != nil {
		exited = proc.Exited()
	}
	var lastErr error
	for {
		done, err := check(ctx)
		if done {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("waiting for %s: %w (last attempt: %v)", what, ctx.Err(), lastErr)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-exited:
			return &exitedError{proc: proc}
		case <-t.C:
		}
	}
}

// exitedError reports that a process exited while we waited for it.
type exitedError struct{ proc *Process }

func (e *exitedError) Error() string {
	return fmt.Sprintf("%s exited early (%v); last log lines:\n%s", e.proc.Name, e.proc.ExitError(), e.proc.Tail(30))
}

// addrInUse reports whether err is a process that exited because its port
// was taken (a race with another program after we probed the port).
func addrInUse(err error) bool {
	var ee *exitedError
	if !errors.As(err, &ee) {
		return false
	}
	tail := strings.ToLower(ee.proc.Tail(50))
	return strings.Contains(tail, "address already in use") || strings.Contains(tail, "bind:")
}
