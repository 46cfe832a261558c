package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// watchSocketSignal makes SIGUSR1 shut down the worker's connected go-plugin unix sockets (its end
// of the parent's gRPC connection). Installed before worker.MainWith, so the signal never takes the
// default action (exit).
func watchSocketSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		for range ch {
			n, err := shutdownParentSockets()
			slog.Warn("fault point: parent connection shut down", "sockets", n, "error", err)
		}
	}()
}

// shutdownParentSockets calls shutdown(2) on every fd of this process that is a connected unix
// socket bound to a go-plugin socket path ("plugin*"): the gRPC server's side of the parent's
// connection. The fds stay open (the gRPC server closes them once it sees the connection end).
func shutdownParentSockets() (int, error) {
	inodes, err := pluginSocketInodes()
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue
		}
		ino, ok := strings.CutPrefix(link, "socket:[")
		if !ok || !inodes[strings.TrimSuffix(ino, "]")] {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if syscall.Shutdown(fd, syscall.SHUT_RDWR) == nil {
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("no connected go-plugin socket found")
	}
	return n, nil
}

// pluginSocketInodes lists the inodes of connected (not listening) unix sockets whose path's base
// name starts with "plugin", from /proc/net/unix.
func pluginSocketInodes() (map[string]bool, error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const (
		acceptCon   = 0x10000 // __SO_ACCEPTCON: a listening socket
		ssConnected = "03"
	)
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode [Path]
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		flags, err := strconv.ParseUint(fields[3], 16, 32)
		if err != nil || flags&acceptCon != 0 || fields[5] != ssConnected {
			continue
		}
		if strings.HasPrefix(filepath.Base(fields[7]), "plugin") {
			out[fields[6]] = true
		}
	}
	return out, sc.Err()
}
