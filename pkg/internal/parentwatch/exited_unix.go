//go:build !windows

package parentwatch

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// currentParent is this process's parent pid: an orphan is reparented on
// every Unix, so the pid changes when the parent exits.
func currentParent(int) int { return os.Getppid() }

// Exited reports whether process pid has ended. A zombie nobody reaped yet
// counts as ended (on Linux, where /proc tells).
func Exited(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return errors.Is(err, syscall.ESRCH)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name's closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
