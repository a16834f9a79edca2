package wire

import (
	"net/netip"
	"strconv"
	"strings"
)

// Describe prints one payload with its main fields, one line, for logs and
// `petrel decode`: "SA(#1 IKE: ENCR AES_CBC-256, PRF PRF_HMAC_SHA2_256, ...)",
// "KE(CURVE_25519, 32 octets)", "IDi(ID_FQDN moon.example)",
// "TSi(10.1.0.0/16)", "N(COOKIE, 20 octets)". Only octet counts are shown
// for opaque data (nonces, KE values, AUTH, certificates, ciphertext).
func Describe(p Payload) string {
	name := PayloadName(p)
	var inner string
	switch q := p.(type) {
	case *SA:
		var props []string
		for _, pr := range q.Proposals {
			s := "#" + strconv.Itoa(int(pr.Number)) + " " + pr.Protocol.String()
			if len(pr.SPI) > 0 {
				s += " spi=" + hexString(pr.SPI)
			}
			var ts []string
			for _, t := range pr.Transforms {
				ts = append(ts, t.Transform.String())
			}
			props = append(props, s+": "+strings.Join(ts, ", "))
		}
		inner = strings.Join(props, "; ")
	case *KE:
		inner = q.Group.String() + ", " + octets(len(q.Data))
	case *ID:
		inner = q.IDType.String() + " " + idString(q)
	case *Cert:
		inner = q.Encoding.String() + ", " + octets(len(q.Data))
	case *CertReq:
		inner = q.Encoding.String() + ", " + octets(len(q.Data))
	case *Auth:
		inner = q.Method.String() + ", " + octets(len(q.Data))
	case *Nonce:
		inner = octets(len(q.Data))
	case *Notify:
		name = "N"
		inner = q.NotifyType.String()
		if q.Protocol != ProtoNone || len(q.SPI) > 0 {
			inner += ", " + q.Protocol.String()
			if len(q.SPI) > 0 {
				inner += " spi=" + hexString(q.SPI)
			}
		}
		if len(q.Data) > 0 {
			inner += ", " + octets(len(q.Data))
		}
	case *Delete:
		inner = q.Protocol.String()
		for _, s := range q.SPIs {
			inner += " " + strconv.FormatUint(uint64(s), 16)
		}
	case *VendorID:
		inner = octets(len(q.Data))
	case *TS:
		var sel []string
		for _, s := range q.Selectors {
			sel = append(sel, s.String())
		}
		inner = strings.Join(sel, " ")
	case *CP:
		var attrs []string
		for _, a := range q.Attrs {
			attrs = append(attrs, a.Type.String()+cpValue(a))
		}
		inner = q.CFGType.String() + ": " + strings.Join(attrs, " ")
	case *EAP:
		inner = "code " + strconv.Itoa(int(q.Code())) + " id " + strconv.Itoa(int(q.Identifier()))
		if t := q.EAPType(); t != 0 {
			inner += " type " + strconv.Itoa(int(t))
		}
	case *Encrypted:
		inner = "next " + q.NextPayload.String() + ", " + octets(len(q.Body))
	case *Fragment:
		return name + "(next " + q.NextPayload.String() + ", " + octets(len(q.Body)) + ")"
	case *RawPayload:
		inner = octets(len(q.Body))
	}
	return name + "(" + inner + ")"
}

func octets(n int) string { return strconv.Itoa(n) + " octets" }

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

// idString prints the identity for the textual and address ID types and an
// octet count otherwise (RFC 7296 §3.5).
func idString(id *ID) string {
	switch id.IDType {
	case ID_FQDN, ID_RFC822_ADDR:
		return strconv.Quote(string(id.Data))
	case ID_IPV4_ADDR, ID_IPV6_ADDR:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	}
	return octets(len(id.Data))
}

// cpValue prints address-valued CP attributes (RFC 7296 §3.15.1).
func cpValue(a CPAttr) string {
	if len(a.Value) == 0 {
		return ""
	}
	switch a.Type {
	case INTERNAL_IP4_ADDRESS, INTERNAL_IP4_NETMASK, INTERNAL_IP4_DNS, INTERNAL_IP4_NBNS, INTERNAL_IP4_DHCP,
		INTERNAL_IP6_DNS, INTERNAL_IP6_DHCP:
		if ip, ok := netip.AddrFromSlice(a.Value); ok {
			return "=" + ip.String()
		}
	case INTERNAL_IP6_ADDRESS, INTERNAL_IP6_SUBNET:
		if len(a.Value) == 17 {
			ip := netip.AddrFrom16([16]byte(a.Value[:16]))
			if p, err := ip.Prefix(int(a.Value[16])); err == nil {
				return "=" + ip.String() + "/" + strconv.Itoa(p.Bits())
			}
		}
	}
	return "=" + octets(len(a.Value))
}
