package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// PprofEnv names the environment variable that, set to a loopback address
// ("127.0.0.1:6060"), serves Go's profiles (/debug/pprof/) of any command
// there: what measuring a node's memory and CPU needs (scripts/measure-relay.sh
// -p). It is for developers, hence not a flag; an address off this machine
// is refused, the profiles saying much about the process.
const PprofEnv = "PEERSCOPE_PPROF"

// startPprof serves the profiles on the address in PprofEnv, if set, for
// the rest of the process.
func startPprof() error {
	addr := os.Getenv(PprofEnv)
	if addr == "" {
		return nil
	}
	srv, err := servePprof(addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "peerscope: profiles at http://%s/debug/pprof/\n", srv.Addr)
	return nil
}

// servePprof serves the profiles on addr, a loopback address; srv.Addr is
// where it listens.
func servePprof(addr string) (srv *http.Server, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %v", PprofEnv, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s=%q: a loopback address only (127.0.0.1:PORT)", PprofEnv, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", PprofEnv, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv = &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
