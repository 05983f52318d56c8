package store

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestNotSent: only a failure to write the request is retried as not
// sent (the server was gone: seen as "write: broken pipe" right after a
// cluster's leader was killed); a failure to read the answer is not, as
// the request may have been committed.
func TestNotSent(t *testing.T) {
	opErr := func(op string, errno syscall.Errno) error {
		return &net.OpError{Op: op, Net: "unix", Err: os.NewSyscallError(op, errno)}
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"write: broken pipe", opErr("write", syscall.EPIPE), true},
		{"wrapped", fmt.Errorf("transact: %w", opErr("write", syscall.ECONNRESET)), true},
		{"read: connection reset", opErr("read", syscall.ECONNRESET), false},
		{"other", errors.New("ovsdb: constraint violation"), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, notSent(tc.err))
		})
	}
}
