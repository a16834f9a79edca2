//go:build !linux

package dataplane

func newUDPTransport(_ familyAddrs, port uint16) (udpTransport, error) { return newStdTransport(port) }
