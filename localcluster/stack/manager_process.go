package stack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ManagerProcess is `kapacity manager` running as a child process with the flags of the
// in-process Manager (same webhook port, certificate Secret and webhook configurations), so that
// a test can kill it outright: SIGKILL at any moment, no graceful shutdown, nothing flushed.
type ManagerProcess struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// StartProcess starts the manager as a child process of binary (a build of the kapacity command)
// in place of the in-process one, which must be stopped, and waits until its webhooks answer.
// Each process appends to manager-process.log in the manager's directory.
func (m *Manager) StartProcess(binary string) (*ManagerProcess, error) {
	if m.cancel != nil {
		return nil, errors.New("stop the in-process manager first: both would serve the same port and reconcile the same objects")
	}
	logPath := filepath.Join(m.dir, "manager-process.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the manager's log: %w", err)
	}
	fmt.Fprintf(logFile, "==== %s: starting %s manager\n", time.Now().Format(time.RFC3339Nano), binary)
	cmd := exec.Command(binary, append([]string{"manager"}, m.args()...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the test process dies, the manager dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s manager: %w", binary, err)
	}
	p := &ManagerProcess{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	if err := m.waitForWebhooks(p.Err); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *ManagerProcess) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop asks the process to terminate (SIGTERM) and kills it if it has not exited within 15 s.
func (p *ManagerProcess) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.Kill()
	}
}

// Err reports why the process exited, or nil while it runs.
func (p *ManagerProcess) Err() error {
	select {
	case <-p.exited:
		return fmt.Errorf("the manager process exited (%v); its log is %s", p.waitErr, p.logPath)
	default:
		return nil
	}
}

// LogPath is the file the process writes its log to.
func (p *ManagerProcess) LogPath() string { return p.logPath }
