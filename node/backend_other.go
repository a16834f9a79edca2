//go:build !linux

package node

import (
	"fmt"

	"github.com/petrel-vpn/petrel/dataplane"
)

func (n *Node) openXFRM() error {
	return fmt.Errorf("node: %w: XFRM is Linux only", dataplane.ErrNoBackend)
}

func (n *Node) addXFRMInterface(string, uint32) (func() error, error) {
	return nil, fmt.Errorf("node: %w: XFRM is Linux only", dataplane.ErrNoBackend)
}
