package parentwatch

import "golang.org/x/sys/windows"

// stillActive is GetExitCodeProcess's code for a process that runs.
const stillActive = 259

// currentParent is parent while it runs and -1 once it has exited: Windows
// does not reparent an orphan, so its parent pid never changes.
func currentParent(parent int) int {
	if Exited(parent) {
		return -1
	}
	return parent
}

// Exited reports whether process pid has ended (or cannot be found).
func Exited(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return true
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return false
	}
	return code != stillActive
}
