package testbed

import "syscall"

// detached makes a child its own session leader, so it outlives the
// process that started it and ignores the terminal's signals.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
