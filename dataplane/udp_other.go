//go:build !linux

package dataplane

func newUDPTransport(port uint16) (udpTransport, error) { return newStdTransport(port) }
