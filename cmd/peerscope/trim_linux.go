//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A light node's memory is mostly pages of its own binary (docs/BENCHMARKS.md,
// "What a light node costs (issue 17)"): start-up runs the inits of every
// package linked and joins the tree once, and the kernel maps 64 KiB of the
// file around every page faulted (fault-around), so after start-up about
// 28 MiB of the binary's text and read-only data are mapped while the
// steady state touches about 7 MiB of them.
//
// So 'watch', in either build, trims them once it has started (trimDelay):
// it splits the binary's read-only mappings into one VMA per page
// (fault-around never maps past the VMA of the fault, so a fault maps
// that page only) and drops their pages (MADV_DONTNEED); what the node
// touches afterwards comes back a page at a time. The pages stay in the
// page cache (they are the file's), so the trim frees what no other
// process maps under memory pressure, and the kernel holds one VMA per page
// (192 bytes each, about 1.7 MB for this binary) in exchange.
//
// Neighbouring VMAs with the same flags would merge back, so every other
// one is marked MADV_DONTDUMP: a core dump leaves out file-backed mappings
// by default (coredump_filter) apart from the ELF header in the first page,
// which keeps its flags. Only read-only mappings are touched: MADV_DONTNEED
// on a written private page would lose the write. A debugger's breakpoints
// are such writes: PEERSCOPE_TRIM=0 turns the trim off, and so does
// PEERSCOPE_PPROF (a profile lists every executable mapping).
const (
	trimEnv   = "PEERSCOPE_TRIM"
	trimDelay = 20 * time.Second
)

// trimBinaryLater trims the binary's pages trimDelay from now when args
// run 'watch' and the environment allows it.
func trimBinaryLater(args []string) {
	if len(args) == 0 || args[0] != "watch" || os.Getenv(trimEnv) == "0" || os.Getenv(PprofEnv) != "" {
		return
	}
	time.AfterFunc(trimDelay, func() {
		if err := trimBinary(); err != nil {
			fmt.Fprintf(os.Stderr, "peerscope: trimming the binary's pages: %v (%s=0 turns it off)\n", err, trimEnv)
		}
	})
}

// trimBinary splits the read-only mappings of this process's binary into
// one VMA per page and drops their pages.
func trimBinary() error {
	rs, err := binaryReadOnly()
	if err != nil {
		return err
	}
	page := uintptr(os.Getpagesize())
	for _, r := range rs {
		for a := r[0] + page; a < r[1]; a += 2 * page {
			if err := madvise(a, page, unix.MADV_DONTDUMP); err != nil {
				return err // ENOMEM past vm.max_map_count: the mappings as they were
			}
		}
	}
	for _, r := range rs {
		if err := madvise(r[0], r[1]-r[0], unix.MADV_DONTNEED); err != nil {
			return err
		}
	}
	return nil
}

// binaryReadOnly returns the address ranges at which this process maps its
// binary's file read-only (text, read-only data), from /proc/self/maps.
func binaryReadOnly() ([][2]uintptr, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs [][2]uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-012a6000 r-xp 00000000 fe:00 9980956   /path/to/peerscope
		fs := strings.Fields(sc.Text())
		if len(fs) != 6 || fs[5] != exe || fs[1][1] == 'w' || fs[1][3] != 'p' {
			continue
		}
		lo, hi, _ := strings.Cut(fs[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("/proc/self/maps: %q", sc.Text())
		}
		rs = append(rs, [2]uintptr{uintptr(a), uintptr(b)})
	}
	return rs, sc.Err()
}

// madvise advises on an address range that is not Go's memory (the
// binary's mappings), so it takes addresses rather than a slice.
func madvise(addr, n uintptr, advice int) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, addr, n, uintptr(advice)); e != 0 {
		return e
	}
	return nil
}
