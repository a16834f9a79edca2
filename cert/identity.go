package cert

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"net/netip"
	"strings"

	"github.com/petrel-vpn/petrel/wire"
)

// ID is an IKE identity (RFC 7296 §3.5). It has the same fields as
// ike.Identity, so the core converts with cert.ID(identity).
type ID struct {
	Type wire.IDType
	Data []byte
}

func (id ID) String() string {
	switch id.Type {
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

// SubjectID is the ID_DER_ASN1_DN identity of a certificate's subject, the
// identity to claim when none is configured.
func SubjectID(c *x509.Certificate) ID {
	return ID{Type: wire.ID_DER_ASN1_DN, Data: bytes.Clone(c.RawSubject)}
}

// MatchIdentity checks that the certificate carries the identity (RFC 4945
// §3.1): ID_DER_ASN1_DN must equal the subject (§3.1.5; byte-exact, or
// equal after decoding so that string types do not matter), ID_FQDN a
// dNSName, ID_RFC822_ADDR an rfc822Name and ID_IPV4/IPV6_ADDR an iPAddress
// subjectAltName (§3.1.1–3.1.3). The subject's CN is never used as a name
// (§3.1.2). Other ID types never match a certificate.
func MatchIdentity(c *x509.Certificate, id ID) error {
	subj := c.Subject.String()
	switch id.Type {
	case wire.ID_DER_ASN1_DN:
		if bytes.Equal(id.Data, c.RawSubject) {
			return nil
		}
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(id.Data, &rdn); err == nil && len(rest) == 0 {
			var want pkix.Name
			want.FillFromRDNSequence(&rdn)
			if want.String() == subj {
				return nil
			}
		}
	case wire.ID_FQDN:
		name := strings.TrimSuffix(string(id.Data), ".")
		for _, d := range c.DNSNames {
			if strings.EqualFold(strings.TrimSuffix(d, "."), name) {
				return nil
			}
		}
	case wire.ID_RFC822_ADDR:
		for _, e := range c.EmailAddresses {
			if strings.EqualFold(e, string(id.Data)) {
				return nil
			}
		}
	case wire.ID_IPV4_ADDR, wire.ID_IPV6_ADDR:
		want, ok := netip.AddrFromSlice(id.Data)
		if ok {
			for _, ip := range c.IPAddresses {
				if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap() == want.Unmap() {
					return nil
				}
			}
		}
	}
	return refuse(ReasonIdentityMismatch, subj, "identity %v", id)
}
