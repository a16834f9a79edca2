package config

import (
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"

	"github.com/petrel-vpn/petrel/wire"
)

// Identity is an IKE identity (RFC 7296 §3.5) as written in the file: its
// ID type and the octets carried in IDi/IDr. The zero Identity is %any.
type Identity struct {
	Type wire.IDType
	Data []byte
	Text string // as written, for messages
}

// IsAny reports whether id is %any.
func (id Identity) IsAny() bool { return id.Type == 0 }

// Wildcard reports whether id is a "*.example.com" or "*@example.com"
// pattern (remote identities only).
func (id Identity) Wildcard() bool {
	return (id.Type == wire.ID_FQDN || id.Type == wire.ID_RFC822_ADDR) && strings.HasPrefix(string(id.Data), "*")
}

// Equal reports whether two identities have the same type and octets
// (FQDN and email case-insensitively, RFC 4343).
func (id Identity) Equal(o Identity) bool {
	if id.Type != o.Type {
		return false
	}
	if id.Type == wire.ID_FQDN || id.Type == wire.ID_RFC822_ADDR {
		return strings.EqualFold(string(id.Data), string(o.Data))
	}
	return string(id.Data) == string(o.Data)
}

// Matches reports whether the pattern id (a remote.id) admits the concrete
// identity peer: %any admits all, "*.example.com" and "*@example.com" the
// names ending so (case-insensitively), anything else only itself.
func (id Identity) Matches(peer Identity) bool {
	if id.IsAny() {
		return true
	}
	if id.Wildcard() && peer.Type == id.Type {
		suffix, name := string(id.Data[1:]), string(peer.Data)
		return len(name) > len(suffix) && strings.EqualFold(name[len(name)-len(suffix):], suffix)
	}
	return id.Equal(peer)
}

func (id Identity) String() string {
	if id.IsAny() {
		return "%any"
	}
	return id.Text
}

// idExpected is what an identity may look like, for error messages.
const idExpected = `expected %any, an IP address, fqdn:host.example.com, email:user@example.com, a DN like "C=CH, O=Example, CN=host" or keyid:hex`

// ParseIdentity parses strongSwan's identity syntax: %any; an IP address;
// a typed form fqdn:, email:, ipv4:, ipv6:, keyid: (hex), asn1dn:; @name
// (FQDN) and @#hex (key ID); a DN "C=CH, O=Example, CN=host"; a name with
// "@" (email); otherwise an FQDN. FQDN and email may start with "*" as a
// wildcard.
func ParseIdentity(s string) (Identity, error) {
	id, err := parseIdentity(strings.TrimSpace(s))
	if err != nil {
		return Identity{}, err
	}
	if !id.IsAny() {
		id.Text = s
	}
	return id, nil
}

func parseIdentity(s string) (Identity, error) {
	if s == "" {
		return Identity{}, errors.New("empty identity")
	}
	if s == "%any" || s == "%any6" {
		return Identity{}, nil
	}
	if typ, rest, ok := strings.Cut(s, ":"); ok && !strings.Contains(typ, "=") {
		switch strings.ToLower(typ) {
		case "fqdn":
			return fqdnID(rest)
		case "email", "rfc822":
			return emailID(rest)
		case "ipv4", "ipv6":
			a, err := netip.ParseAddr(rest)
			if err != nil || a.Is4() != (strings.ToLower(typ) == "ipv4") {
				return Identity{}, errors.New("not an " + typ + " address")
			}
			return addrID(a), nil
		case "keyid":
			return keyID(strings.TrimPrefix(rest, "#"))
		case "asn1dn", "dn":
			return dnID(rest)
		}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return addrID(a), nil
	}
	if strings.HasPrefix(s, "@#") {
		return keyID(s[2:])
	}
	if strings.HasPrefix(s, "@") {
		return fqdnID(s[1:])
	}
	if strings.Contains(s, "=") {
		return dnID(s)
	}
	if strings.Contains(s, "@") {
		return emailID(s)
	}
	return fqdnID(s)
}

func addrID(a netip.Addr) Identity {
	a = a.Unmap()
	if a.Is4() {
		return Identity{Type: wire.ID_IPV4_ADDR, Data: a.AsSlice(), Text: a.String()}
	}
	return Identity{Type: wire.ID_IPV6_ADDR, Data: a.AsSlice(), Text: a.String()}
}

func fqdnID(name string) (Identity, error) {
	if err := checkDNSName(name); err != nil {
		return Identity{}, err
	}
	return Identity{Type: wire.ID_FQDN, Data: []byte(name)}, nil
}

func emailID(addr string) (Identity, error) {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" || strings.ContainsAny(local, " \t@") {
		return Identity{}, errors.New("not an email address")
	}
	if err := checkDNSName(domain); err != nil || strings.HasPrefix(domain, "*") {
		return Identity{}, errors.New("bad domain in email address")
	}
	return Identity{Type: wire.ID_RFC822_ADDR, Data: []byte(addr)}, nil
}

// checkDNSName accepts a host name of letters, digits, '-' and '_', labels
// up to 63 octets, with an optional leading "*" wildcard label.
func checkDNSName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > 253 {
		return errors.New("name longer than 253 characters")
	}
	for i, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if i == 0 && label == "*" {
			continue
		}
		if label == "" || len(label) > 63 {
			return errors.New("empty or over-long label in " + `"` + name + `"`)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return errors.New("character " + `"` + string(c) + `"` + " not allowed in a host name")
			}
		}
	}
	return nil
}

func keyID(h string) (Identity, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(strings.ReplaceAll(h, ":", ""), "0x"))
	if err != nil || len(b) == 0 {
		return Identity{}, errors.New("key ID is not hex")
	}
	return Identity{Type: wire.ID_KEY_ID, Data: b}, nil
}

// dnAttrs maps RFC 4514 / strongSwan attribute names to OIDs; the value
// tag is PrintableString/UTF8String except where ia5 says IA5String.
var dnAttrs = map[string]struct {
	oid asn1.ObjectIdentifier
	ia5 bool
}{
	"C": {oid: asn1.ObjectIdentifier{2, 5, 4, 6}}, "ST": {oid: asn1.ObjectIdentifier{2, 5, 4, 8}},
	"L": {oid: asn1.ObjectIdentifier{2, 5, 4, 7}}, "O": {oid: asn1.ObjectIdentifier{2, 5, 4, 10}},
	"OU": {oid: asn1.ObjectIdentifier{2, 5, 4, 11}}, "CN": {oid: asn1.ObjectIdentifier{2, 5, 4, 3}},
	"SN": {oid: asn1.ObjectIdentifier{2, 5, 4, 5}}, "SERIALNUMBER": {oid: asn1.ObjectIdentifier{2, 5, 4, 5}},
	"DC": {oid: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, ia5: true},
	"E":  {oid: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, ia5: true},
}

// dnID encodes "C=CH, O=Example, CN=host" as a DER RDNSequence in the
// order written (ID_DER_ASN1_DN, RFC 7296 §3.5). Values may not contain
// commas.
func dnID(s string) (Identity, error) {
	var rdns []asn1.RawValue
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(v)
		attr, known := dnAttrs[k]
		if !ok || v == "" {
			return Identity{}, errors.New(`DN part "` + strings.TrimSpace(part) + `" is not ATTR=value`)
		}
		if !known {
			return Identity{}, errors.New(`unknown DN attribute "` + k + `" (known: C, ST, L, O, OU, CN, SN, DC, E)`)
		}
		var val any = v
		if attr.ia5 {
			val = asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(v)}
		}
		set, err := asn1.MarshalWithParams([]struct {
			Type  asn1.ObjectIdentifier
			Value any
		}{{attr.oid, val}}, "set")
		if err != nil {
			return Identity{}, errors.New("DN value " + `"` + v + `"` + " cannot be encoded")
		}
		rdns = append(rdns, asn1.RawValue{FullBytes: set})
	}
	der, err := asn1.Marshal(rdns)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Type: wire.ID_DER_ASN1_DN, Data: der}, nil
}
