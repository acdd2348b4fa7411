package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/kapacitystack/kapacity/localcluster"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const interruptChildEnv = "KAPACITY_CLUSTER_INTERRUPT_CHILD"

// TestInterruptLeavesNothingBehind runs a bed in a child process, interrupts that process with
// SIGINT as Ctrl-C would, and checks that no control-plane process and no directory survive.
func TestInterruptLeavesNothingBehind(t *testing.T) {
	if os.Getenv(interruptChildEnv) == "1" {
		runInterruptChild()
		return
	}
	binDir, err := localcluster.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestInterruptLeavesNothingBehind$", "-test.v")
	child.Env = append(os.Environ(), interruptChildEnv+"=1", localcluster.BinDirEnv+"="+binDir)
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var childErr strings.Builder
	child.Stderr = &childErr
	if err := child.Start(); err != nil {
		t.Fatalf("starting child: %v", err)
	}
	exited := make(chan error, 1)
	dir := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if rest, ok := strings.CutPrefix(scanner.Text(), "BED "); ok {
				dir <- rest
			}
		}
		exited <- child.Wait()
	}()

	var bedDir string
	select {
	case bedDir = <-dir:
	case err := <-exited:
		t.Fatalf("child exited before the bed was up: %v\n%s", err, childErr.String())
	case <-time.After(2 * time.Minute):
		_ = child.Process.Kill()
		t.Fatalf("bed not up within 2m; child stderr:\n%s", childErr.String())
	}
	pids := processesMentioning(bedDir)
	if len(pids) < 6 {
		t.Fatalf("expected the six control-plane processes of %s to run, found %v", bedDir, pids)
	}

	if err := child.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("interrupting child: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute):
		_ = child.Process.Kill()
		t.Fatalf("child still running a minute after SIGINT; stderr:\n%s", childErr.String())
	}
	if left := processesMentioning(bedDir); len(left) > 0 {
		t.Errorf("processes survived the interrupt: %v", left)
	}
	if _, err := os.Stat(bedDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bed directory %s survived the interrupt (stat: %v)", bedDir, err)
	}
}

func runInterruptChild() {
	bed, err := localcluster.Start(context.Background(), localcluster.Options{Nodes: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bed.StopOnInterrupt()
	fmt.Printf("BED %s\n", bed.Dir)
	time.Sleep(2 * time.Minute) // the parent interrupts long before this
	bed.Stop()
	os.Exit(3)
}

// processesMentioning lists the processes whose command line contains dir.
func processesMentioning(dir string) []string {
	entries, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var found []string
	for _, path := range entries {
		data, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(data), dir) {
			continue
		}
		found = append(found, fmt.Sprintf("%s: %s", filepath.Base(filepath.Dir(path)),
			strings.ReplaceAll(string(data), "\x00", " ")[:min(len(data), 80)]))
	}
	return found
}
