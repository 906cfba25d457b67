package main

import "testing"

func TestRuntimeForWatchOnly(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for _, c := range []struct {
		args      []string
		env       map[string]string
		procs, gc int
	}{
		{[]string{"watch", "peerscope://x"}, nil, lightProcs, lightGCPercent},
		{[]string{"watch", "--replay", "peerscope://x"}, nil, lightProcs, lightGCPercent},
		{[]string{"watch"}, map[string]string{"GOMAXPROCS": "4"}, 0, lightGCPercent},
		{[]string{"watch"}, map[string]string{"GOGC": "200"}, lightProcs, 0},
		{[]string{"broadcast", "--from", "sample"}, nil, 0, 0},
		{[]string{"bootstrap"}, nil, 0, 0},
		{nil, nil, 0, 0},
	} {
		env = c.env
		if procs, gc := runtimeFor(c.args, getenv); procs != c.procs || gc != c.gc {
			t.Errorf("runtimeFor(%q, %v) = %d, %d; want %d, %d", c.args, c.env, procs, gc, c.procs, c.gc)
		}
	}
}
