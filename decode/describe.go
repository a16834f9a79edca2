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

// maxHex bounds how much of a long value the summary shows; Fields always
// hold the whole value.
const maxHex = 32

func short(b []byte) string {
	if len(b) <= maxHex {
		return hex.EncodeToString(b)
	}
	return hex.EncodeToString(b[:maxHex]) + "…"
}

// describe builds on wire.Describe, the one-line form petrel's logs use,
// and adds what a debugging engineer wants from a capture: the values of
// AUTH, nonces and notify data, and every field for -o json.
func describe(p wire.Payload) PayloadInfo {
	info := PayloadInfo{Type: wire.PayloadName(p), TypeNum: uint8(p.Type()), Summary: wire.Describe(p), Fields: map[string]string{}}
	f := info.Fields
	withData := func(b []byte) {
		f["data"] = hex.EncodeToString(b)
		if len(b) > 0 {
			info.Summary += " " + short(b)
		}
	}
	switch p := p.(type) {
	case *wire.SA:
		for _, pr := range p.Proposals {
			var ts []string
			for _, t := range pr.Transforms {
				ts = append(ts, t.Transform.String())
			}
			f[fmt.Sprintf("proposal%d", pr.Number)] = fmt.Sprintf("%v spi=%x [%s]", pr.Protocol, pr.SPI, strings.Join(ts, ", "))
		}
	case *wire.KE:
		f["group"], f["data"] = p.Group.String(), hex.EncodeToString(p.Data)
	case *wire.ID:
		f["id_type"], f["data"], f["id"] = p.IDType.String(), hex.EncodeToString(p.Data), idString(p.IDType, p.Data)
	case *wire.Cert:
		f["encoding"], f["data"] = p.Encoding.String(), hex.EncodeToString(p.Data)
	case *wire.CertReq:
		f["encoding"], f["data"] = p.Encoding.String(), hex.EncodeToString(p.Data)
	case *wire.Auth:
		f["method"] = p.Method.String()
		withData(p.Data)
	case *wire.Nonce:
		withData(p.Data)
	case *wire.Notify:
		f["notify_type"], f["protocol"] = p.NotifyType.String(), p.Protocol.String()
		if len(p.SPI) > 0 {
			f["spi"] = hex.EncodeToString(p.SPI)
		}
		withData(p.Data)
	case *wire.Delete:
		spis := make([]string, len(p.SPIs))
		for i, s := range p.SPIs {
			spis[i] = fmt.Sprintf("%08x", s)
		}
		f["protocol"], f["spis"] = p.Protocol.String(), strings.Join(spis, ",")
	case *wire.VendorID:
		withData(p.Data)
	case *wire.TS:
		sel := make([]string, len(p.Selectors))
		for i, s := range p.Selectors {
			sel[i] = s.String()
		}
		f["selectors"] = strings.Join(sel, " ")
	case *wire.CP:
		f["cfg_type"] = p.CFGType.String()
		for _, a := range p.Attrs {
			f[a.Type.String()] = hex.EncodeToString(a.Value)
		}
	case *wire.EAP:
		f["data"] = hex.EncodeToString(p.Message)
	case *wire.Encrypted:
		f["next_payload"] = p.NextPayload.String()
	case *wire.Fragment:
		f["number"], f["total"], f["next_payload"] = fmt.Sprint(p.Number), fmt.Sprint(p.Total), p.NextPayload.String()
	case *wire.RawPayload:
		f["critical"], f["data"] = fmt.Sprint(p.Critical), hex.EncodeToString(p.Body)
	}
	return info
}

// idString renders identification data as text where it is text or an
// address (RFC 7296 §3.5), hex otherwise.
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
