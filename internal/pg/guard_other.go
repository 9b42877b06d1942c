//go:build !linux

package pg

import "syscall"

// setUserTimeout is Linux-only; elsewhere keepalives alone notice a peer
// that vanished.
func setUserTimeout(string, string, syscall.RawConn) error { return nil }
