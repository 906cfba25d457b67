//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSlackFor(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
		want time.Duration
		err  bool
	}{
		{[]string{"watch", "peerscope://x"}, "", watchSlack, false},
		{[]string{"watch"}, "0", 0, false},
		{[]string{"watch"}, "5ms", 5 * time.Millisecond, false},
		{[]string{"watch"}, "soon", 0, true},
		{[]string{"watch"}, "2s", 0, true},
		{[]string{"broadcast", "--from", "sample"}, "", 0, false},
		{[]string{"bootstrap"}, "5ms", 0, false},
		{nil, "", 0, false},
	} {
		got, err := slackFor(c.args, func(k string) string {
			if k == slackEnv {
				return c.env
			}
			return ""
		})
		if got != c.want || (err != nil) != c.err {
			t.Errorf("slackFor(%q, %s=%q) = %v, %v; want %v, error %v", c.args, slackEnv, c.env, got, err, c.want, c.err)
		}
	}
}

// slackChild is set in the environment of TestTimerSlackExec's child.
const slackChild = "PEERSCOPE_TEST_SLACK_CHILD"

// TestTimerSlackExec runs this test binary as a child that calls
// setTimerSlack as 'watch' does: it must execute itself exactly once and
// come back with every thread at the slack asked for; with the slack
// turned off, or already as large, it must not execute itself at all.
func TestTimerSlackExec(t *testing.T) {
	if os.Getenv(slackChild) != "" {
		fmt.Printf("image pid=%d\n", os.Getpid())
		if err := setTimerSlack([]string{"watch"}); err != nil {
			fmt.Printf("error %v\n", err)
		}
		for range 4 { // threads the runtime starts for work, inheriting it
			go func() { time.Sleep(10 * time.Millisecond) }()
		}
		time.Sleep(50 * time.Millisecond)
		tasks, _ := filepath.Glob("/proc/self/task/*")
		for _, task := range tasks { // the file is /proc/TID's, not under task/
			b, err := os.ReadFile(filepath.Join("/proc", filepath.Base(task), "timerslack_ns"))
			fmt.Printf("slack %s %v\n", strings.TrimSpace(string(b)), err)
		}
		return
	}
	for _, c := range []struct {
		env    string
		images int
		want   time.Duration // every thread's slack; 0: the kernel's default
	}{
		{"", 2, watchSlack},
		{"3ms", 2, 3 * time.Millisecond},
		{"0", 1, 0},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTimerSlackExec$", "-test.v")
		cmd.Env = append(os.Environ(), slackChild+"=1", slackEnv+"="+c.env)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s=%q: child: %v\n%s", slackEnv, c.env, err, out)
		}
		var images, threads int
		var pids []string
		for line := range strings.Lines(string(out)) {
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "image":
				images++
				pids = append(pids, f[1])
			case len(f) >= 2 && f[0] == "error":
				t.Errorf("%s=%q: %s", slackEnv, c.env, line)
			case len(f) == 3 && f[0] == "slack":
				threads++
				ns, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					t.Fatalf("%s=%q: %q", slackEnv, c.env, line)
				}
				if c.want > 0 && time.Duration(ns) != c.want || c.want == 0 && time.Duration(ns) >= watchSlack {
					t.Errorf("%s=%q: a thread's slack is %v, want %v", slackEnv, c.env, time.Duration(ns), c.want)
				}
			}
		}
		if images != c.images || threads < 2 {
			t.Errorf("%s=%q: %d images (%v), %d threads; want %d images\n%s", slackEnv, c.env, images, pids, threads, c.images, out)
		}
		if images == 2 && pids[0] != pids[1] {
			t.Errorf("%s=%q: the execution changed pid: %v", slackEnv, c.env, pids)
		}
	}
}
