package ike

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"net/netip"
	"strings"

	"github.com/petrel-vpn/petrel/wire"
)

// Identity is an IKE identity (RFC 7296 §3.5): an ID type and its data as
// carried in IDi/IDr. The zero Identity means "any" where a configuration
// expects a remote identity.
type Identity struct {
	Type wire.IDType
	Data []byte
}

// IDAddr is an ID_IPV4_ADDR or ID_IPV6_ADDR identity.
func IDAddr(a netip.Addr) Identity {
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		return Identity{Type: wire.ID_IPV4_ADDR, Data: b[:]}
	}
	b := a.As16()
	return Identity{Type: wire.ID_IPV6_ADDR, Data: b[:]}
}

// IDFQDN is an ID_FQDN identity, e.g. "vpn.example.com".
func IDFQDN(name string) Identity { return Identity{Type: wire.ID_FQDN, Data: []byte(name)} }

// IDEmail is an ID_RFC822_ADDR identity, e.g. "alice@example.com".
func IDEmail(addr string) Identity { return Identity{Type: wire.ID_RFC822_ADDR, Data: []byte(addr)} }

// IDKeyID is an ID_KEY_ID identity (opaque octets).
func IDKeyID(id []byte) Identity { return Identity{Type: wire.ID_KEY_ID, Data: bytes.Clone(id)} }

// IDDN is an ID_DER_ASN1_DN identity from a distinguished name.
func IDDN(name pkix.Name) (Identity, error) {
	der, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		return Identity{}, err
	}
	return Identity{Type: wire.ID_DER_ASN1_DN, Data: der}, nil
}

// IsAny reports whether the identity is the zero "match any" value.
func (id Identity) IsAny() bool { return id.Type == 0 && len(id.Data) == 0 }

// Equal reports whether two identities are the same type and octets.
func (id Identity) Equal(o Identity) bool {
	return id.Type == o.Type && bytes.Equal(id.Data, o.Data)
}

// Matches reports whether a received identity satisfies the configured
// pattern id: any, exact, or for FQDN and RFC 822 names a leading "*"
// wildcard ("*.example.com", "*@example.com"), compared case-insensitively
// as DNS names are (RFC 4343).
func (id Identity) Matches(peer Identity) bool {
	if id.IsAny() {
		return true
	}
	if id.Type != peer.Type {
		return false
	}
	switch id.Type {
	case wire.ID_FQDN, wire.ID_RFC822_ADDR:
		p, s := string(id.Data), string(peer.Data)
		if rest, ok := strings.CutPrefix(p, "*"); ok {
			return len(s) >= len(rest) && strings.EqualFold(s[len(s)-len(rest):], rest)
		}
		return strings.EqualFold(p, s)
	}
	return bytes.Equal(id.Data, peer.Data)
}

// specificity ranks patterns for connection selection: exact identities
// beat wildcards, which beat "any".
func (id Identity) specificity() int {
	switch {
	case id.IsAny():
		return 0
	case (id.Type == wire.ID_FQDN || id.Type == wire.ID_RFC822_ADDR) && bytes.HasPrefix(id.Data, []byte("*")):
		return 1
	}
	return 2
}

// String renders the identity for logs: addresses, names, a DN in RFC 4514
// form, KEY_ID in hex.
func (id Identity) String() string {
	switch id.Type {
	case 0:
		return "%any"
	case wire.ID_IPV4_ADDR, wire.ID_IPV6_ADDR:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	case wire.ID_FQDN, wire.ID_RFC822_ADDR:
		return string(id.Data)
	case wire.ID_DER_ASN1_DN:
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(id.Data, &rdn); err == nil && len(rest) == 0 {
			return rdn.String()
		}
	}
	return id.Type.String() + ":" + hex.EncodeToString(id.Data)
}
