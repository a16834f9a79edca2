//go:build !linux

package dataplane

import "fmt"

// ProbeXFRM reports that the XFRM backend exists only on Linux.
func ProbeXFRM() error { return fmt.Errorf("%w: XFRM is Linux only", ErrNoBackend) }
