package monitor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrLocked is wrapped by the error of New when another monitor holds the
// state directory: two monitors writing one state would each trust what
// the other checked.
var ErrLocked = errors.New("the state directory is in use by another monitor")

// lockDir takes the exclusive lock of the state directory dir, which the
// kernel releases when the process ends, however it ends.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("state directory %s: lock: %w", dir, err)
	}
	return f, nil
}
