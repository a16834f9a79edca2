package dataplane

import (
	"fmt"
	"strings"
)

// Kind names a backend. It is a flag.Value and an encoding.TextUnmarshaler,
// so `--dataplane=xfrm` and `dataplane: netstack` in the config both work.
type Kind uint8

const (
	// KindAuto picks XFRM when the kernel has ESP, else userspace on TUN.
	KindAuto Kind = iota
	// KindXFRM is the Linux kernel (XFRM via netlink).
	KindXFRM
	// KindTUN is userspace ESP on a TUN device.
	KindTUN
	// KindNetstack is userspace ESP on a gVisor netstack (no root).
	KindNetstack
)

var kindNames = [...]string{"auto", "xfrm", "tun", "netstack"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Set implements flag.Value.
func (k *Kind) Set(s string) error {
	for i, n := range kindNames {
		if strings.EqualFold(s, n) {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("dataplane: unknown backend %q (want one of %s)", s, strings.Join(kindNames[:], ", "))
}

// Type implements pflag.Value (cobra flags).
func (k *Kind) Type() string { return "dataplane" }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error { return k.Set(string(b)) }

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Choose resolves a requested backend. For KindAuto it probes the kernel
// (ProbeXFRM) and, when XFRM cannot do ESP here, returns KindTUN with the
// reason, which the daemon logs ("using userspace ESP: the kernel has XFRM
// but no in-kernel ESP (CONFIG_INET_ESP...)"). An explicit KindXFRM that
// the kernel cannot run is an error carrying the same reason.
func Choose(want Kind) (Kind, string, error) {
	return choose(want, ProbeXFRM)
}

func choose(want Kind, probe func() error) (Kind, string, error) {
	switch want {
	case KindAuto:
		if err := probe(); err != nil {
			return KindTUN, "using userspace ESP on TUN: " + err.Error(), nil
		}
		return KindXFRM, "kernel ESP available: using XFRM", nil
	case KindXFRM:
		if err := probe(); err != nil {
			return 0, "", err
		}
		return KindXFRM, "XFRM requested", nil
	case KindTUN, KindNetstack:
		return want, want.String() + " requested", nil
	}
	return 0, "", fmt.Errorf("dataplane: unknown backend %v", want)
}
