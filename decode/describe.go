package decode

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/petrel-vpn/petrel/wire"
)

// PayloadInfo is one payload with its main fields, for people (Summary) and
// machines (Fields).
type PayloadInfo struct {
	Type    string            `json:"type"`
	TypeNum uint8             `json:"type_num"` // RFC 7296 §3.2 payload type
	Summary string            `json:"summary,omitempty"`
	Fields  map[string]string `json:"fields,omitempty"`
}

func describeAll(ps []wire.Payload) []PayloadInfo {
	out := make([]PayloadInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, describe(p))
	}
	return out
}

// maxHex bounds how much of a long value is printed in a summary; Fields
// always hold the whole value.
const maxHex = 32

func short(b []byte) string {
	if len(b) <= maxHex {
		return hex.EncodeToString(b)
	}
	return hex.EncodeToString(b[:maxHex]) + fmt.Sprintf("…(%d octets)", len(b))
}

func describe(p wire.Payload) PayloadInfo {
	info := PayloadInfo{Type: p.Type().String(), TypeNum: uint8(p.Type()), Fields: map[string]string{}}
	f := info.Fields
	switch p := p.(type) {
	case *wire.SA:
		var props []string
		for _, pr := range p.Proposals {
			var ts []string
			for _, t := range pr.Transforms {
				ts = append(ts, t.Transform.String())
			}
			s := fmt.Sprintf("#%d %v", pr.Number, pr.Protocol)
			if len(pr.SPI) > 0 {
				s += " spi=" + hex.EncodeToString(pr.SPI)
			}
			props = append(props, s+" ["+strings.Join(ts, ", ")+"]")
			f[fmt.Sprintf("proposal%d", pr.Number)] = s + " [" + strings.Join(ts, ", ") + "]"
		}
		info.Summary = strings.Join(props, "; ")
	case *wire.KE:
		f["group"], f["data"] = p.Group.String(), hex.EncodeToString(p.Data)
		info.Summary = fmt.Sprintf("%v, %d octets", p.Group, len(p.Data))
	case *wire.ID:
		f["id_type"], f["data"] = p.IDType.String(), hex.EncodeToString(p.Data)
		f["id"] = idString(p.IDType, p.Data)
		info.Summary = fmt.Sprintf("%v %s", p.IDType, f["id"])
	case *wire.Cert:
		f["encoding"], f["data"] = p.Encoding.String(), hex.EncodeToString(p.Data)
		info.Summary = fmt.Sprintf("%v, %d octets", p.Encoding, len(p.Data))
	case *wire.CertReq:
		f["encoding"], f["data"] = p.Encoding.String(), hex.EncodeToString(p.Data)
		info.Summary = fmt.Sprintf("%v, %d octets", p.Encoding, len(p.Data))
	case *wire.Auth:
		f["method"], f["data"] = p.Method.String(), hex.EncodeToString(p.Data)
		info.Summary = fmt.Sprintf("%v %s", p.Method, short(p.Data))
	case *wire.Nonce:
		f["data"] = hex.EncodeToString(p.Data)
		info.Summary = fmt.Sprintf("%d octets %s", len(p.Data), short(p.Data))
	case *wire.Notify:
		info.Type = "N(" + p.NotifyType.String() + ")"
		f["notify_type"], f["protocol"] = p.NotifyType.String(), p.Protocol.String()
		if len(p.SPI) > 0 {
			f["spi"] = hex.EncodeToString(p.SPI)
		}
		if len(p.Data) > 0 {
			f["data"] = hex.EncodeToString(p.Data)
			info.Summary = short(p.Data)
		}
	case *wire.Delete:
		spis := make([]string, len(p.SPIs))
		for i, s := range p.SPIs {
			spis[i] = fmt.Sprintf("%08x", s)
		}
		f["protocol"], f["spis"] = p.Protocol.String(), strings.Join(spis, ",")
		info.Summary = fmt.Sprintf("%v %s", p.Protocol, f["spis"])
	case *wire.VendorID:
		f["data"] = hex.EncodeToString(p.Data)
		info.Summary = short(p.Data)
	case *wire.TS:
		var sel []string
		for _, s := range p.Selectors {
			sel = append(sel, tsString(s))
		}
		f["selectors"] = strings.Join(sel, " ")
		info.Summary = f["selectors"]
	case *wire.CP:
		var attrs []string
		for _, a := range p.Attrs {
			attrs = append(attrs, cpAttrString(a))
		}
		f["cfg_type"], f["attributes"] = p.CFGType.String(), strings.Join(attrs, " ")
		info.Summary = fmt.Sprintf("%v %s", p.CFGType, f["attributes"])
	case *wire.EAP:
		f["data"] = hex.EncodeToString(p.Message)
		info.Summary = fmt.Sprintf("%d octets", len(p.Message))
	case *wire.Encrypted:
		f["next_payload"] = p.NextPayload.String()
		info.Summary = fmt.Sprintf("first inner %v, %d octets", p.NextPayload, len(p.Body))
	case *wire.Fragment:
		f["number"], f["total"] = fmt.Sprint(p.Number), fmt.Sprint(p.Total)
		info.Summary = fmt.Sprintf("fragment %d/%d, %d octets", p.Number, p.Total, len(p.Body))
	case *wire.RawPayload:
		f["critical"], f["data"] = fmt.Sprint(p.Critical), hex.EncodeToString(p.Body)
		info.Summary = fmt.Sprintf("unknown, critical=%v, %d octets", p.Critical, len(p.Body))
	}
	return info
}

// idString renders identification data the way strongSwan and Cisco print
// identities (RFC 7296 §3.5).
func idString(t wire.IDType, data []byte) string {
	switch t {
	case wire.ID_IPV4_ADDR, wire.ID_IPV6_ADDR:
		if a, ok := netip.AddrFromSlice(data); ok {
			return a.String()
		}
	case wire.ID_FQDN, wire.ID_RFC822_ADDR:
		if utf8.Valid(data) {
			return string(data)
		}
	}
	return hex.EncodeToString(data)
}

func tsString(s wire.TrafficSelector) string {
	ports := fmt.Sprintf("%d-%d", s.StartPort, s.EndPort)
	if s.StartPort == 0 && s.EndPort == 65535 {
		ports = "any"
	}
	proto := "any"
	if s.IPProtocol != 0 {
		proto = fmt.Sprint(s.IPProtocol)
	}
	return fmt.Sprintf("%v-%v[proto %s port %s]", s.Start, s.End, proto, ports)
}

func cpAttrString(a wire.CPAttr) string {
	if (len(a.Value) == 4 || len(a.Value) == 16) && strings.Contains(a.Type.String(), "ADDRESS") {
		if ip, ok := netip.AddrFromSlice(a.Value); ok {
			return a.Type.String() + "=" + ip.String()
		}
	}
	if len(a.Value) == 0 {
		return a.Type.String()
	}
	return a.Type.String() + "=" + hex.EncodeToString(a.Value)
}
